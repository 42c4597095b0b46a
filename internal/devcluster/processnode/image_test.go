package processnode

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rayk8s/rayk8s/internal/devcluster/podinit"
	"github.com/rayk8s/rayk8s/internal/testsupport/freeport"
)

func TestImageName(t *testing.T) {
	for ref, want := range map[string]string{
		"redis":                                "redis",
		"redis:7.4.0":                          "redis",
		"library/redis:7.4.0":                  "redis",
		"docker.io/library/redis:7.4.0":        "redis",
		"docker.io/redis@sha256:0123":          "redis",
		"localhost:5000/redis:7":               "redis",
		"localhost/redis":                      "redis",
		"bitnami/redis:7.2":                    "bitnami/redis",
		"quay.io/bitnami/redis:7.2@sha256:abc": "bitnami/redis",
		"rayproject/ray:2.52.0":                "rayproject/ray",
		"rayk8s/rayk8s:latest":                 "rayk8s/rayk8s",
	} {
		if got := ImageName(ref); got != want {
			t.Errorf("ImageName(%q) = %q, want %q", ref, got, want)
		}
	}
}

// prepared runs prepare for the pod's first container and returns the spec it would hand the
// podinit helper: nothing is started.
func prepared(t *testing.T, cfg Config, c corev1.Container) (podinit.Spec, error) {
	t.Helper()
	p, err := NewProvider(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "uid-1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
	cmd, err := newPodRunner(p, pod).ctrs[0].prepare()
	if err != nil {
		return podinit.Spec{}, err
	}
	return spec(t, cmd), nil
}

// TestImageStandIn: a container of an image with a stand-in gets that image's executables,
// fresh writable volumes, working directory and default command, and none of the default
// image's files or env; other images get the default's.
func TestImageStandIn(t *testing.T) {
	tmp := t.TempDir()
	hostBin := filepath.Join(tmp, "bin")
	if err := os.Mkdir(hostBin, 0o755); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(hostBin, "redis-server")
	if err := os.WriteFile(host, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pythonDir := filepath.Join(tmp, "python")
	if err := os.Mkdir(pythonDir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(tmp, "image", "data")
	cfg := Config{
		NodeName: "n", StateDir: filepath.Join(tmp, "state"), Helper: "/proc/self/exe",
		Image: Image{Files: []ImageFile{{Source: pythonDir, Target: filepath.Join(tmp, "image", "python")}}, Env: map[string]string{"PYTHONPATH": "/py"}},
		Images: map[string]Image{"redis": {
			Binaries: map[string]string{"/usr/local/bin/redis-server": host},
			Package:  "redis-server", Volumes: []string{data}, WorkingDir: data, Cmd: []string{"redis-server", "--port", "7000"},
		}},
	}

	spec, err := prepared(t, cfg, corev1.Container{Name: "redis", Image: "docker.io/library/redis:7.4.0",
		Command: []string{"/usr/local/bin/redis-server"}, Args: []string{"/etc/redis.conf"}})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Path != host || !slices.Equal(spec.Args, []string{"/usr/local/bin/redis-server", "/etc/redis.conf"}) {
		t.Errorf("path %q args %q, want the host's executable for the image's path, args as given", spec.Path, spec.Args)
	}
	if spec.Dir != data {
		t.Errorf("working dir %q, want the image's %q", spec.Dir, data)
	}
	var volume *podinit.Mount
	for i, m := range spec.Mounts {
		if m.Target == data {
			volume = &spec.Mounts[i]
		}
		if strings.HasSuffix(m.Target, "python") {
			t.Errorf("the redis container got the default image's file %s", m.Target)
		}
	}
	if volume == nil || volume.ReadOnly {
		t.Fatalf("mounts %+v, want a writable volume at %s", spec.Mounts, data)
	}
	if fi, err := os.Stat(volume.Source); err != nil || !fi.IsDir() {
		t.Errorf("volume source %s: %v, want a directory", volume.Source, err)
	}
	if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
		t.Errorf("mount point %s: %v, want it created", data, err)
	}
	for _, kv := range spec.Env {
		if strings.HasPrefix(kv, "PYTHONPATH=") {
			t.Errorf("the redis container got the default image's env %s", kv)
		}
	}

	// Neither command nor args: the image's default command, resolved on PATH.
	spec, err = prepared(t, cfg, corev1.Container{Name: "redis", Image: "redis", Env: []corev1.EnvVar{{Name: "PATH", Value: hostBin}}})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Path != host || !slices.Equal(spec.Args, []string{"redis-server", "--port", "7000"}) {
		t.Errorf("path %q args %q, want the image's default command found on PATH", spec.Path, spec.Args)
	}

	// Another image gets the default stand-in.
	spec, err = prepared(t, cfg, corev1.Container{Name: "ray", Image: "rayproject/ray:2.52.0", Command: []string{"/bin/sh", "-c", "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Dir == data || !slices.ContainsFunc(spec.Mounts, func(m podinit.Mount) bool { return m.Source == pythonDir }) ||
		!slices.Contains(spec.Env, "PYTHONPATH=/py") {
		t.Errorf("the ray container's spec %+v, want the default image's files and env and not redis's working dir", spec)
	}
	if _, err := prepared(t, cfg, corev1.Container{Name: "nothing", Image: "rayproject/ray:2.52.0"}); err == nil || !strings.Contains(err.Error(), "has no command") {
		t.Errorf("a container without command of an image without a stand-in command: %v, want a refusal", err)
	}

	// A stand-in whose host executable is missing names the package to install.
	if err := os.Remove(host); err != nil {
		t.Fatal(err)
	}
	_, err = prepared(t, cfg, corev1.Container{Name: "redis", Image: "redis:7", Command: []string{"redis-server"}})
	if err == nil || !strings.Contains(err.Error(), "Debian package redis-server") {
		t.Errorf("redis container without the host's redis-server: %v, want an error naming the package", err)
	}
}

// TestRedisStandInRuns starts a container of the redis image, as the node would, under the
// podinit helper: the host's redis-server runs for the image's /usr/local/bin/redis-server, in
// the image's working directory on a fresh volume, where its append-only file lands.
func TestRedisStandInRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the podinit helper needs root (mount and PID namespaces)")
	}
	const redisServer = "/usr/bin/redis-server"
	if _, err := os.Stat(redisServer); err != nil {
		t.Skip("needs Debian's redis-server (hack/install-deps.sh installs it)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	data := filepath.Join(tmp, "image", "data")
	cfg := Config{
		NodeName: "n", StateDir: filepath.Join(tmp, "state"), Helper: self,
		Images: map[string]Image{"redis": {
			Binaries: map[string]string{"/usr/local/bin/redis-server": redisServer},
			Package:  "redis-server", Volumes: []string{data}, WorkingDir: data,
		}},
	}
	p, err := NewProvider(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: "default", UID: "uid-redis"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "redis", Image: "redis:7.4.0",
		Command: []string{"/usr/local/bin/redis-server", "--port", strconv.Itoa(freeport.For(t)), "--bind", "127.0.0.1",
			"--appendonly", "yes", "--save", "", "--protected-mode", "no"},
	}}}}
	r := newPodRunner(p, pod)
	// The pod's files the node writes at pod setup.
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"hosts", "resolv.conf"} {
		if err := os.WriteFile(filepath.Join(r.dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := r.ctrs[0]
	cmd, err := c.prepare()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	addr := "127.0.0.1:" + c.spec.Command[2]
	gomega.NewWithT(t).Eventually(func() (string, error) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte("PING\r\n")); err != nil {
			return "", err
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		return line, err
	}).WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).Should(gomega.HavePrefix("+PONG"), "redis-server answering; its output:\n%s", &out)

	// The append-only file is in the working directory, which is the volume: on the host it is
	// in the container's own directory, and the mount point stays empty.
	var volume string
	for _, m := range spec(t, cmd).Mounts {
		if m.Target == data {
			volume = m.Source
		}
	}
	if _, err := os.Stat(filepath.Join(volume, "appendonlydir")); err != nil {
		t.Errorf("redis-server's append-only directory in the volume %s: %v; output:\n%s", volume, err, &out)
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("the host's mount point %s holds %d entries: the volume was not mounted", data, len(entries))
	}
}

// spec decodes the podinit spec of a prepared command.
func spec(t *testing.T, cmd *exec.Cmd) podinit.Spec {
	t.Helper()
	raw, ok := strings.CutPrefix(cmd.Env[0], podinit.EnvVar+"=")
	if !ok {
		t.Fatalf("helper env %q lacks %s", cmd.Env, podinit.EnvVar)
	}
	var s podinit.Spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
