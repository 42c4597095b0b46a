// Command ray is rayk8s's Go-native Ray runtime: the head and worker node
// (`ray start`) and the CLI KubeRay's pods and users run.
package main

import (
	"os"

	"github.com/rayk8s/rayk8s/internal/runtime/raycli"
)

func main() {
	os.Exit(raycli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
