"""A local Ray head for serve.run / `serve run` when no cluster is named:
our `ray` binary with the dashboard (which serves the Serve REST API) and
the Serve HTTP proxy on free ports, stopped when the driver exits."""

import os
import shutil
import subprocess
import tempfile
import time

from ray._private import worker


class LocalServeHead:
    def __init__(self, timeout_s=60):
        ray_bin = os.environ.get("RAYK8S_RAY_BIN") or shutil.which("ray")
        if not ray_bin:
            raise ConnectionError("serve.run found no Ray cluster to connect to (RAY_ADDRESS is unset) and no `ray` "
                                  "executable on PATH to start a local one")
        self.tmp = tempfile.mkdtemp(prefix="ray-serve-local-")
        gcs_port, self.dashboard_port, agent_port, metrics_port = (worker._free_port() for _ in range(4))
        # Serve's HTTP port is 8000, as in Ray, so scripts that call
        # localhost:8000 work; RAYK8S_SERVE_HTTP_PORT moves it.
        port = os.environ.get("RAYK8S_SERVE_HTTP_PORT", "8000")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"RAYK8S_SERVE_HTTP_PORT must be a port number, got {port!r}")
        self.http_port = int(port)
        args = [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
                f"--dashboard-port={self.dashboard_port}", f"--dashboard-agent-listen-port={agent_port}",
                f"--metrics-export-port={metrics_port}"]
        # Each replica reserves a CPU by default, as in Ray; a small machine
        # can claim more for a local head.
        cpus = os.environ.get("RAYK8S_SERVE_NUM_CPUS")
        if cpus is not None:
            if not cpus.isdigit():
                raise ValueError(f"RAYK8S_SERVE_NUM_CPUS must be a whole number, got {cpus!r}")
            args.append(f"--num-cpus={cpus}")
        env = dict(os.environ, RAY_TMPDIR=self.tmp)
        env.pop("RAY_ADDRESS", None)
        # Replicas import ray.serve and rayk8s.serve from where this driver does.
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        self.log = open(os.path.join(self.tmp, "ray-start.log"), "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        root = os.path.join(self.tmp, "ray")
        while True:
            nodes = worker._local_nodes(root)
            if nodes:
                self.socket, self.gcs_address = nodes[0]["socket"], nodes[0]["gcs_address"]
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ConnectionError(f"starting a local Ray head with {ray_bin} failed; see {self.log.name}")
            time.sleep(0.05)
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
