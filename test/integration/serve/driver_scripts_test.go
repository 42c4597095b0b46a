package serve_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/testsupport/freeport"
)

// driverPython is the interpreter of Ray-style driver scripts: it needs
// cloudpickle, starlette and requests, which Debian's packages install for
// /usr/bin/python3 (hack/install-deps.sh), unlike a python3 earlier on PATH.
func driverPython(t *testing.T) string {
	t.Helper()
	p := os.Getenv("RAYK8S_SERVE_PYTHON")
	if p == "" {
		p = "/usr/bin/python3"
	}
	if out, err := exec.Command(p, "-c", "import cloudpickle, starlette, requests").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import cloudpickle, starlette and requests (run hack/install-deps.sh): %v\n%s", p, err, out)
	}
	return p
}

// runDriver runs a script of python/examples/ray_serve unchanged, as a user
// runs it: no RAY_ADDRESS, so serve.run starts a local head from our ray
// binary and stops it when the script exits.
func runDriver(t *testing.T, script string, env ...string) []string {
	t.Helper()
	python := driverPython(t)
	pythonDir, err := filepath.Abs("../../../python")
	if err != nil {
		t.Fatal(err)
	}
	// Bounds a hung script; the test asserts output, not duration.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join(pythonDir, "examples", "ray_serve", script))
	cmd.Env = append(os.Environ(),
		"RAYK8S_RAY_BIN="+rayBin,
		"RAYK8S_SERVE_PYTHON="+python,
		"RAYK8S_SERVE_HTTP_PORT="+strconv.Itoa(freeport.For(t)),
		"RAYK8S_SERVE_NUM_CPUS=8",
		"PYTHONPATH="+pythonDir,
		"PYTHONUNBUFFERED=1",
		"RAY_ADDRESS=",
		"RAY_DASHBOARD_ADDRESS=",
	)
	cmd.Env = append(cmd.Env, env...)
	// Interrupt rather than kill on timeout, so atexit stops the local head.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s failed: %v\nstdout:\n%s\nstderr:\n%s", script, err, out, stderr)
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}

func assertLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Model composition through handles, a streaming handle call, HTTP with a
// starlette Request, serve.status and serve.delete, from one driver.
func TestDriverScriptComposition(t *testing.T) {
	assertLines(t, runDriver(t, "composition.py"), []string{
		"handle: 12", "stream: [1, 2, 3]", "http: 8", "status: RUNNING", "after delete: []",
	})
}

// A constructor that raises fails serve.run with the deploy error naming
// the deployment and the cause; a Deployment that is not bound is refused.
func TestDriverScriptDeployFailure(t *testing.T) {
	assertLines(t, runDriver(t, "failing.py"), []string{
		"deploy error: Deploying application broken failed: Failed to update the deployments ['Broken'].",
		"mentions cause: True",
		"type error: serve.run expects an Application returned by Deployment.bind(), got Deployment",
	})
}

// starlette Requests (type-hinted) and Responses (JSON with status and
// headers, plain text, streaming), @serve.batch, user_config/reconfigure,
// two applications from one driver and serve.shutdown.
func TestDriverScriptStarlette(t *testing.T) {
	assertLines(t, runDriver(t, "starlette_app.py"), []string{
		"plain: hello ray",
		"json: 201 yes {'kind': 'starlette.requests', 'echo': {'a': 1}}",
		"stream: ['0', '1', '2']",
		"batch: x:True",
		"apps: ['batched', 'greeter']",
		"after shutdown: []",
	})
}

// A FastAPI app behind @serve.ingress: routes on the class using self, path
// and query parameters, a pydantic body, FastAPI's 404 and 422 answers, a
// plain-text and a streamed response, /docs and /openapi.json under the
// route prefix, a route calling another deployment's handle, and a handle
// call to a plain method of the ingress class.
func TestDriverScriptFastAPI(t *testing.T) {
	if out, err := exec.Command(driverPython(t), "-c", "import fastapi").CombinedOutput(); err != nil {
		t.Fatalf("fastapi is not installed (run hack/install-deps.sh): %v\n%s", err, out)
	}
	assertLines(t, runDriver(t, "fastapi_app.py"), []string{
		"root: hello from the shop",
		"item: {'item_id': 7, 'verbose': True}",
		"missing: 404 item 101 not found",
		"invalid: 422 ['path', 'item_id']",
		"order: 201 {'item': 'pear', 'total': 3.0, 'tags': ['ripe'], 'orders': 1}",
		"bad order: 422 ['body', 'item']",
		"text: plain",
		"stream: ['0', '1', '2']",
		"openapi: ['/', '/count/{n}', '/items/{item_id}', '/orders', '/text']",
		"docs: True",
		"handle: ['pear']",
		"after delete: []",
	})
}

// Ray's gRPC guide: serve.start(grpc_options=gRPCOptions(...)) starts the
// gRPC proxy, Ray's generated RayServeAPIService stub lists the
// applications and checks health through it, the user's service answers
// with grpc_context's trailing metadata and status, and serve.start with
// other options once Serve runs is refused naming the field. The generated
// greeter modules are on PYTHONPATH, as the guide has them in the working
// directory.
func TestDriverScriptGRPC(t *testing.T) {
	if out, err := exec.Command(driverPython(t), "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
		t.Fatalf("grpcio and protobuf are not installed (run hack/install-deps.sh): %v\n%s", err, out)
	}
	pythonDir, err := filepath.Abs("../../../python")
	if err != nil {
		t.Fatal(err)
	}
	port := freeport.For(t)
	assertLines(t, runDriver(t, "grpc_app.py",
		"PYTHONPATH="+pythonDir+string(os.PathListSeparator)+filepath.Join(pythonDir, "examples"),
		"RAYK8S_SERVE_GRPC_PORT="+strconv.Itoa(port)), []string{
		"applications: ['greeter', 'rayk8s-driver-relay']",
		"health: success",
		"hello: Hello ray! ray",
		"error: INVALID_ARGUMENT name is required",
		"restart: serve.start(grpc_options=...): Serve already runs on this cluster with port=" + strconv.Itoa(port) + ", not " + strconv.Itoa(port+1),
	})
}
