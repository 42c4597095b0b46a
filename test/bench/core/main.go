// Command core runs the Ray core microbenchmark (bench.py beside this file)
// with Debian's python3 against a head and a worker agent started from the
// `ray` binary, and prints its figures. `make bench-core` runs it.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	rayBin := flag.String("ray", "bin/ray", "the ray binary to start the nodes with")
	python := flag.String("python", "/usr/bin/python3", "the interpreter of the driver and the workers")
	flag.Parse()
	if err := run(*rayBin, *python); err != nil {
		fmt.Fprintln(os.Stderr, "bench-core:", err)
		os.Exit(1)
	}
}

func run(rayBin, python string) error {
	rayBin, err := filepath.Abs(rayBin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bench-core-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	_, thisFile, _, _ := runtime.Caller(0)
	here := filepath.Dir(thisFile)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RAY_") && !strings.HasPrefix(kv, "PYTHONPATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "RAY_TMPDIR="+tmp, "PYTHONPATH="+filepath.Join(here, "..", "..", "..", "python"), "RAYK8S_SERVE_PYTHON="+python)

	gcsPort := freePort()
	gcs := "127.0.0.1:" + strconv.Itoa(gcsPort)
	head, err := start(rayBin, env, filepath.Join(tmp, "head.log"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
		"--port="+strconv.Itoa(gcsPort), "--include-dashboard=false", "--num-cpus=2",
		"--dashboard-agent-listen-port="+strconv.Itoa(freePort()), "--metrics-export-port="+strconv.Itoa(freePort()))
	if err != nil {
		return err
	}
	defer stop(head)
	worker, err := start(rayBin, env, filepath.Join(tmp, "worker.log"), "start", "--block", "--address="+gcs,
		"--node-ip-address=127.0.0.2", "--num-cpus=2", `--resources={"remote": 1000}`,
		"--dashboard-agent-listen-port="+strconv.Itoa(freePort()), "--metrics-export-port="+strconv.Itoa(freePort()))
	if err != nil {
		return err
	}
	defer stop(worker)
	if err := waitNodes(filepath.Join(tmp, "ray", "rayk8s-core-nodes"), 2); err != nil {
		return err
	}
	fmt.Printf("Ray core microbenchmark: head (2 CPUs) + worker agent (2 CPUs) on %d cores\n", runtime.NumCPU())
	cmd := exec.Command(python, filepath.Join(here, "bench.py"))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

func start(bin string, env []string, logPath string, args ...string) (*exec.Cmd, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ray %s: %w", strings.Join(args, " "), err)
	}
	return cmd, nil
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

// waitNodes waits until n nodes recorded themselves for local drivers.
func waitNodes(dir string, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) >= n {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%d nodes did not come up within a minute", n)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
