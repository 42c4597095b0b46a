package core_test

import "testing"

// A caller on the actor's node calls it directly (two process hops, the
// results kept in the caller until they escape), with the semantics of the
// calls that go through the node agent: order, error types, results passed
// on as arguments and nested in values, ray.wait and ray.get timeouts over
// mixed refs, ray.cancel of a queued call, the process dying mid-call, and
// the state API listing the calls.
func TestDirectActorCalls(t *testing.T) {
	h := startHead(t, 4)
	out := runPython(t, append(append([]string{}, h.env...), "RAY_API_SERVER_ADDRESS="+h.dashURL), false, "direct.py")
	wantLines(t, out,
		"direct True",
		"ordered True",
		"error type True",
		"passed on (41, 41) 42",
		"chained 5",
		"wait mixed True",
		"wait timeout True",
		"cancelled True",
		"unblocked unblocked later",
		"get timeout True",
		"then unblocked",
		"async and threaded direct True True",
		"threaded True",
		"async 0.01 pong",
		"running async call cancelled",
		"freed True",
		"from a task (True, True)",
		"died mid-call RayActorError",
		"after death RayActorError",
		"state lists True",
		"state failed [('FAILED', 'TASK_EXECUTION_EXCEPTION')]",
	)
}

// An actor passes on the ref of its running direct call, so the node's
// store expects the result, and dies before the result arrives (killed by
// a signal, then by ray.kill): the driver's get and a task's get raise
// OwnerDiedError naming the object instead of waiting until the job ends,
// and the target actor and the cluster go on working.
func TestDirectCallOwnerDied(t *testing.T) {
	h := startHead(t, 4)
	out := runPython(t, h.env, false, "ownerdied.py")
	var want []string
	for _, how := range []string{"sigkill", "ray.kill"} {
		want = append(want,
			how+" direct and running True",
			how+" driver OwnerDiedError True True True",
			how+" task OwnerDiedError names it True",
			how+" passed on before delivered",
		)
	}
	wantLines(t, out, append(want, "target still answers 7", "tasks still run 2")...)
}
