package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// backendFlag makes the bench binary a bare Go net/http no-op server (the
// floor, and nginx's upstream): a process of its own, as the replicas are.
const backendFlag = "-backend"

// serveBackend answers every request with an empty 200 on a free port and
// prints the address on stdout.
func serveBackend() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
}

// startBackend runs serveBackend in a child process (with GOMAXPROCS=procs
// when procs > 0) and returns its address and the process.
func startBackend(procs int) (string, *exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, backendFlag)
	if procs > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting the Go backend: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return "", nil, fmt.Errorf("reading the Go backend's address: %w", err)
	}
	return strings.TrimSpace(line), cmd, nil
}

// nginxPaths are where Debian's nginx packages put the binary.
var nginxPaths = []string{"/usr/sbin/nginx"}

func findNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range nginxPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errNoNginx
}

// startNginx runs nginx with one worker as a keep-alive reverse proxy in
// front of backend, the way one fronts a Go service, and returns its URL.
func startNginx(bin, dir, backend string) (string, func(), error) {
	port := freePort()
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/nginx-body;
  proxy_temp_path %[1]s/nginx-proxy;
  fastcgi_temp_path %[1]s/nginx-fastcgi;
  uwsgi_temp_path %[1]s/nginx-uwsgi;
  scgi_temp_path %[1]s/nginx-scgi;
  keepalive_requests 1000000;
  upstream backend {
    server %[2]s;
    keepalive 128;
  }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, dir, backend, port)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting nginx: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, stop, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	log, _ := os.ReadFile(filepath.Join(dir, "nginx-error.log"))
	return "", nil, errors.Join(errors.New("nginx did not answer within 10s"), errors.New(string(log)))
}
