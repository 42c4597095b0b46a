package operator

import "runtime/debug"

// Version is what this build stamps in the ray.io/kuberay-version annotation of head pods and in
// Ray's usage-stats tags: "rayk8s-" and the module version the Go toolchain recorded at build
// time (a tag or pseudo-version), or "rayk8s-devel" when it recorded none. A change of version
// makes Recreate clusters re-stamp their spec hash instead of restarting (KubeRay does the same).
func Version() string {
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return "rayk8s-" + v
}
