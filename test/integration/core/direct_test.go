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
