"""ray.serve: Ray's import paths for the Serve SDK, and serve.run from a
driver against a real local head started from our `ray` binary."""

import os
import socket
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(PYTHON_DIR)
sys.path.insert(0, PYTHON_DIR)

import rayk8s.serve  # noqa: E402
from ray import serve  # noqa: E402
import importlib  # noqa: E402

_driver = importlib.import_module("ray.serve._driver")

PUBLIC = ["deployment", "Application", "run", "start", "status", "delete", "shutdown", "get_app_handle",
          "get_deployment_handle", "get_replica_context", "batch", "multiplexed", "get_multiplexed_model_id",
          "ingress"]


class ImportPathsTest(unittest.TestCase):
    def test_one_module(self):
        import ray
        import ray.serve
        self.assertIs(serve, rayk8s.serve)
        self.assertIs(ray.serve, rayk8s.serve)
        import ray.serve.exceptions
        self.assertIs(ray.serve.exceptions, rayk8s.serve.exceptions)

    def test_public_names(self):
        for name in PUBLIC:
            self.assertTrue(callable(getattr(serve, name)), name)
        from ray.serve.handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator
        self.assertIs(DeploymentHandle, rayk8s.serve.DeploymentHandle)
        self.assertIs(DeploymentResponse, rayk8s.serve.DeploymentResponse)
        self.assertIs(DeploymentResponseGenerator, rayk8s.serve.DeploymentResponseGenerator)
        from ray.serve.exceptions import BackPressureError
        self.assertTrue(issubclass(BackPressureError, rayk8s.serve.exceptions.RayServeException))

    def test_missing_names_say_so(self):
        for mod, name in ((serve, "build_app"), (serve.handle, "Nope"), (serve.config, "Nope"), (serve.schema, "Nope")):
            with self.assertRaisesRegex(AttributeError, "not implemented by the rayk8s Serve SDK"):
                getattr(mod, name)
        with self.assertRaisesRegex(NotImplementedError, "serve.ingress"):
            serve.ingress(object())
        with self.assertRaisesRegex(NotImplementedError, r"serve.start\(http_options=...\)"):
            serve.start(http_options={"port": 1})

    def test_config_classes(self):
        from ray.serve.config import AutoscalingConfig, HTTPOptions, gRPCOptions
        a = AutoscalingConfig(min_replicas=1, max_replicas=4)
        self.assertEqual(a, {"min_replicas": 1, "max_replicas": 4})
        self.assertEqual(a.target_ongoing_requests, 2)
        z = AutoscalingConfig(min_replicas=0, downscale_to_zero_delay_s=5, aggregation_function="max")
        self.assertEqual((z.downscale_to_zero_delay_s, z.aggregation_function), (5, "max"))
        self.assertIsNone(a.downscale_to_zero_delay_s)
        self.assertEqual(HTTPOptions(port=8001).port, 8001)
        self.assertEqual(gRPCOptions().port, 9000)
        with self.assertRaisesRegex(TypeError, "unexpected field 'max_replica'"):
            AutoscalingConfig(max_replica=3)
        # A deployment takes it as its autoscaling_config, JSON-ready.
        d = serve.deployment(autoscaling_config=a)(lambda: 1)
        self.assertEqual(d.config_options()["autoscaling_config"], {"min_replicas": 1, "max_replicas": 4})


class StarletteRequestTest(unittest.TestCase):
    META = {"method": "POST", "path": "/a/b", "query": "x=1", "headers": [["Host", "h"], ["X-K", "v"]], "client": "10.0.0.1:5"}

    def test_hinted_handler_gets_starlette_request(self):
        import asyncio

        from starlette.requests import Request
        from rayk8s.serve import _starlette

        def handler(request: Request):
            return request
        req = _starlette.request_for(handler, self.META, b'{"k": 2}')
        self.assertIsInstance(req, Request)
        self.assertEqual((req.method, req.url.path, req.query_params["x"], req.headers["x-k"], req.client.host),
                         ("POST", "/a/b", "1", "v", "10.0.0.1"))
        self.assertEqual(asyncio.run(req.json()), {"k": 2})

    def test_unhinted_handler_gets_sdk_request(self):
        from rayk8s.serve import _http, _starlette
        req = _starlette.request_for(lambda request: request, self.META, b"{}")
        self.assertIsInstance(req, _http.Request)
        self.assertEqual(req.query_params["x"], "1")


class BadInputTest(unittest.TestCase):
    def test_run_refuses_non_application(self):
        @serve.deployment
        class D:
            pass
        with self.assertRaisesRegex(TypeError, "got Deployment"):
            serve.run(D)
        with self.assertRaisesRegex(TypeError, "got str"):
            serve.run("module:app")

    def test_unreachable_address(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        client = _driver.ServeClient(f"127.0.0.1:{port}")
        with self.assertRaisesRegex(ConnectionError, f"Could not reach the Ray dashboard at http://127.0.0.1:{port}"):
            client.details()

    def test_dashboard_url(self):
        env = dict(os.environ)
        os.environ.pop("RAY_DASHBOARD_ADDRESS", None)
        try:
            self.assertEqual(_driver.dashboard_url_for("10.0.0.5:6379"), "http://10.0.0.5:8265")
            self.assertEqual(_driver.dashboard_url_for(None), "http://127.0.0.1:8265")
            os.environ["RAY_DASHBOARD_ADDRESS"] = "head:9999"
            self.assertEqual(_driver.dashboard_url_for("10.0.0.5:6379"), "http://head:9999")
        finally:
            os.environ.clear()
            os.environ.update(env)


def _ray_bin():
    for p in (os.environ.get("RAYK8S_RAY_BIN"), os.path.join(REPO, "bin", "ray")):
        if p and os.access(p, os.X_OK):
            return p
    raise RuntimeError("no ray binary: build it (make build) or set RAYK8S_RAY_BIN")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DriverScriptTest(unittest.TestCase):
    """The examples in python/examples/ray_serve run as scripts: each starts
    its own local head and stops it at exit."""

    def run_script(self, name):
        env = dict(os.environ, RAYK8S_RAY_BIN=_ray_bin(), RAYK8S_SERVE_PYTHON=sys.executable,
                   RAYK8S_SERVE_HTTP_PORT=str(_free_port()), RAYK8S_SERVE_NUM_CPUS="8",
                   PYTHONPATH=PYTHON_DIR, PYTHONUNBUFFERED="1")
        for k in ("RAY_ADDRESS", "RAY_DASHBOARD_ADDRESS"):
            env.pop(k, None)
        p = subprocess.run([sys.executable, os.path.join(PYTHON_DIR, "examples", "ray_serve", name)], env=env,
                           capture_output=True, text=True, timeout=240)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout.splitlines()

    def test_composition(self):
        self.assertEqual(self.run_script("composition.py"), [
            "handle: 12", "stream: [1, 2, 3]", "http: 8", "status: RUNNING", "after delete: []"])

    def test_starlette(self):
        self.assertEqual(self.run_script("starlette_app.py"), ["plain: hello ray", "json: 201 yes {'kind': 'starlette.requests', 'echo': {'a': 1}}", "stream: ['0', '1', '2']", "batch: x:True", "apps: ['batched', 'greeter']", "after shutdown: []"])

    def test_failing_deploy(self):
        out = self.run_script("failing.py")
        self.assertEqual(out[0], "deploy error: Deploying application broken failed: Failed to update the deployments ['Broken'].")
        self.assertEqual(out[1:], ["mentions cause: True",
                                   "type error: serve.run expects an Application returned by Deployment.bind(), got Deployment"])


class ServeCLITest(unittest.TestCase):
    """python/bin/serve against a local head started for the class."""

    @classmethod
    def setUpClass(cls):
        from ray.serve._local_head import LocalServeHead
        env = dict(os.environ)
        os.environ.update(RAYK8S_RAY_BIN=_ray_bin(), RAYK8S_SERVE_PYTHON=sys.executable, RAYK8S_SERVE_NUM_CPUS="8")
        try:
            cls.head = LocalServeHead()
        finally:
            os.environ.clear()
            os.environ.update(env)
        cls.address = cls.head.dashboard_url
        _driver.ServeClient(cls.address).wait_ready()

    @classmethod
    def tearDownClass(cls):
        cls.head.stop()

    def serve(self, *args, cwd=None):
        env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
        env.pop("RAY_DASHBOARD_ADDRESS", None)
        return subprocess.run([sys.executable, os.path.join(PYTHON_DIR, "bin", "serve"), *args], env=env,
                              capture_output=True, text=True, timeout=120, cwd=cwd or HERE)

    def test_deploy_status_config_shutdown(self):
        import tempfile

        import yaml
        examples = os.path.join(PYTHON_DIR, "examples", "ray_serve")
        p = self.serve("build", "composition:app", "-o", os.path.join(tempfile.mkdtemp(), "unused.yaml"), cwd=examples)
        self.assertEqual(p.returncode, 0, p.stderr)
        built = yaml.safe_load(self.serve("build", "composition:app", cwd=examples).stdout)
        self.assertEqual(built["applications"][0]["import_path"], "composition:app")
        self.assertEqual(sorted(d["name"] for d in built["applications"][0]["deployments"]), ["Adder", "Ingress", "Multiplier"])
        built["http_options"] = {"port": _free_port()}
        built["applications"][0].update(name="math", route_prefix="/math", runtime_env={"working_dir": examples})
        cfg = os.path.join(tempfile.mkdtemp(), "config.yaml")
        with open(cfg, "w") as f:
            yaml.safe_dump(built, f)
        p = self.serve("deploy", cfg, "-a", self.address)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Sent deploy request successfully", p.stdout)
        client = _driver.ServeClient(self.address)
        _driver._wait(client, ["math"], timeout_s=120)
        status = yaml.safe_load(self.serve("status", "-a", self.address).stdout)
        self.assertEqual(status["applications"]["math"]["status"], "RUNNING")
        self.assertEqual(status["applications"]["math"]["deployments"]["Adder"]["replica_states"], {"RUNNING": 1})
        config = yaml.safe_load(self.serve("config", "-a", self.address).stdout)
        self.assertEqual(config["import_path"], "composition:app")
        p = self.serve("shutdown", "-y", "-a", self.address)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(client.details().get("applications") or {}, {})

    def test_bad_input(self):
        p = self.serve("build", "no_such_module_xyz:app")
        self.assertEqual((p.returncode, p.stderr.strip()), (1, "Error: importing no_such_module_xyz:app: no module named 'no_such_module_xyz'"))
        p = self.serve("build", "test_serve_compat:nothing_here")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Error: import path 'test_serve_compat:nothing_here' names nothing", p.stderr)
        p = self.serve("deploy", "/nonexistent/config.yaml", "-a", self.address)
        self.assertEqual((p.returncode, p.stderr.strip()), (1, "Error: cannot read config file /nonexistent/config.yaml: No such file or directory"))
        port = _free_port()
        p = self.serve("status", "-a", f"127.0.0.1:{port}")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.strip(), f"Error: Could not reach the Ray dashboard at http://127.0.0.1:{port}: [Errno 111] Connection refused")


if __name__ == "__main__":
    unittest.main()
