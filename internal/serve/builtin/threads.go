package builtin

import "math"

// threadBudget is how many OS threads running Go code a replica that
// reserved numCPUs logical CPUs gets: the reservation rounded up, at least
// one, as Ray gives a task or actor OMP_NUM_THREADS from its num_cpus (a
// Serve replica reserves one CPU unless ray_actor_options say otherwise).
// current is the Go runtime's own choice (the machine's or the container's
// CPU limit), which the budget never raises. set is false when GOMAXPROCS
// is in the environment (the pod's or the runtime_env's env_vars): an
// explicit setting wins, as OMP_NUM_THREADS does in Ray.
func threadBudget(numCPUs *float64, current int, getenv func(string) string) (n int, set bool) {
	if getenv("GOMAXPROCS") != "" {
		return current, false
	}
	n = 1
	if numCPUs != nil && *numCPUs > 1 {
		// ray_actor_options validation bounds num_cpus, so the cast holds.
		n = int(math.Ceil(*numCPUs))
	}
	if n >= current {
		return current, false
	}
	return n, true
}
