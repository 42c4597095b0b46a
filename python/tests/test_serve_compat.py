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
        for mod, name in ((serve.grpc_util, "Nope"),):
            with self.assertRaisesRegex(AttributeError, "not implemented by the rayk8s Serve SDK"):
                getattr(mod, name)

    def test_grpc_names(self):
        from ray.serve.generated import serve_pb2, serve_pb2_grpc
        from ray.serve.grpc_util import RayServegRPCContext
        self.assertIs(RayServegRPCContext, rayk8s.serve._grpc.RayServegRPCContext)
        self.assertEqual(serve_pb2.DESCRIPTOR.services_by_name["RayServeAPIService"].full_name, "ray.serve.RayServeAPIService")
        self.assertEqual(serve_pb2.ListApplicationsResponse.FromString(
            serve_pb2.ListApplicationsResponse(application_names=["a", "b"]).SerializeToString()).application_names, ["a", "b"])
        self.assertEqual(serve_pb2.HealthzResponse(message="success").message, "success")
        for cls in (serve_pb2_grpc.RayServeAPIServiceStub, serve_pb2_grpc.RayServeAPIServiceServicer):
            self.assertTrue(hasattr(cls, "__init__"))
        ctx = RayServegRPCContext([("application", "a"), (":authority", "x")])
        self.assertEqual(ctx.invocation_metadata(), (("application", "a"),))

    def test_start_refuses_what_it_does_not_act_on(self):
        from ray.serve.config import HTTPOptions, gRPCOptions
        # Refused before anything is contacted: no cluster is needed.
        with self.assertRaisesRegex(NotImplementedError, r"serve.start\(http_options=...\): the field 'middlewares'"):
            serve.start(http_options={"middlewares": ["m"]})
        with self.assertRaisesRegex(NotImplementedError, r"the field 'ssl_keyfile'"):
            serve.start(http_options=HTTPOptions(ssl_keyfile="k.pem"))
        with self.assertRaisesRegex(TypeError, r"serve.start\(grpc_options=...\): gRPCOptions got an unexpected field 'prt'"):
            serve.start(grpc_options={"prt": 9000})
        with self.assertRaisesRegex(TypeError, "expects a gRPCOptions or a dict, got int"):
            serve.start(grpc_options=9000)
        with self.assertRaisesRegex(ValueError, "proxy_location.*got 'Nowhere'"):
            serve.start(proxy_location="Nowhere")
        with self.assertRaisesRegex(NotImplementedError, r"serve.start\(logging_config=...\)"):
            serve.start(logging_config={"log_level": "DEBUG"})
        self.assertEqual(_driver._start_options("http_options", HTTPOptions, HTTPOptions(port=1, middlewares=[])), {"port": 1})
        self.assertEqual(_driver._start_options("grpc_options", gRPCOptions, {"grpc_servicer_functions": ["m.f"]}),
                         {"grpc_servicer_functions": ["m.f"]})

    def test_start_against_running_serve(self):
        details = {"proxy_location": "EveryNode", "http_options": {"host": "0.0.0.0", "port": 8000},
                   "grpc_options": {"port": 9000, "grpc_servicer_functions": ["m.f"]}}
        _driver._check_running(details, {"http_options": {"port": 8000, "root_path": ""},
                                         "grpc_options": {"grpc_servicer_functions": ["m.f"]}})
        with self.assertRaisesRegex(RuntimeError, "already runs on this cluster with port=8000, not 8001"):
            _driver._check_running(details, {"http_options": {"port": 8001}})
        with self.assertRaisesRegex(RuntimeError, "request_timeout_s=None, not 5"):
            _driver._check_running(details, {"grpc_options": {"request_timeout_s": 5}})
        with self.assertRaisesRegex(RuntimeError, "proxy_location='EveryNode'"):
            _driver._check_running(details, {"proxy_location": "HeadOnly"})

    def test_config_classes(self):
        from ray.serve.config import AutoscalingConfig, HTTPOptions, ProxyLocation, gRPCOptions
        self.assertEqual(ProxyLocation.EveryNode.value, "EveryNode")
        self.assertEqual(gRPCOptions(grpc_servicer_functions=["m.f"]).grpc_servicer_functions, ["m.f"])
        self.assertEqual(HTTPOptions().root_path, "")
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

    def test_handle_options_refuses_what_it_does_not_do(self):
        from ray.serve.handle import DeploymentHandle
        h = DeploymentHandle("Model", "app")
        with self.assertRaisesRegex(TypeError, r"does not support _prefer_local_routing, not_an_option on rayk8s"):
            h.options(not_an_option=1, _prefer_local_routing=True)
        with self.assertRaisesRegex(ValueError, r"use_new_handle_api=False\): only True is accepted.*removed in Ray 2.10"):
            h.options(use_new_handle_api=False)
        with self.assertRaisesRegex(ValueError, r"use_new_handle_api='yes'\): only True"):
            h.options(use_new_handle_api="yes")
        # The handle API it does have, and the options it honours.
        o = h.options(use_new_handle_api=True, method_name="predict", multiplexed_model_id="m1", stream=True)
        self.assertEqual((o.method_name, o.multiplexed_model_id, o.stream), ("predict", "m1", True))
        self.assertEqual((h.method_name, h.multiplexed_model_id, h.stream), ("__call__", "", False))

    def test_unreachable_address(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        client = _driver.ServeClient(f"127.0.0.1:{port}")
        with self.assertRaisesRegex(ConnectionError, f"Could not reach the Ray dashboard at http://127.0.0.1:{port}"):
            client.details()

    def test_driver_that_cannot_reach_its_address(self):
        @serve.deployment
        class D:
            pass
        port = _free_port()
        env = dict(os.environ)
        os.environ["RAY_ADDRESS"] = f"127.0.0.1:{port}"
        os.environ["RAY_DASHBOARD_ADDRESS"] = f"127.0.0.1:{port}"
        try:
            with self.assertRaises(ConnectionError) as cm:
                serve.run(D.bind())
        finally:
            os.environ.clear()
            os.environ.update(env)
        self.assertEqual(str(cm.exception), f"Could not reach the Ray dashboard at http://127.0.0.1:{port}: [Errno 111] Connection refused")
        self.assertIsNone(_driver._session.client)

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

    def run_script(self, name, **extra_env):
        env = dict(os.environ, RAYK8S_RAY_BIN=_ray_bin(), RAYK8S_SERVE_PYTHON=sys.executable,
                   RAYK8S_SERVE_HTTP_PORT=str(_free_port()), RAYK8S_SERVE_NUM_CPUS="8",
                   PYTHONPATH=PYTHON_DIR, PYTHONUNBUFFERED="1")
        env.update(extra_env)
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

    def test_fastapi(self):
        self.assertEqual(self.run_script("fastapi_app.py"), [
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
            "after delete: []"])

    def test_grpc_guide(self):
        port = _free_port()
        out = self.run_script("grpc_app.py", RAYK8S_SERVE_GRPC_PORT=str(port),
                              PYTHONPATH=os.pathsep.join([PYTHON_DIR, os.path.join(PYTHON_DIR, "examples")]))
        self.assertEqual(out, [
            "applications: ['greeter', 'rayk8s-driver-relay']",
            "health: success",
            "hello: Hello ray! ray",
            "error: INVALID_ARGUMENT name is required",
            f"restart: serve.start(grpc_options=...): Serve already runs on this cluster with port={port}, not {port + 1}"])

    def test_failing_deploy(self):
        out = self.run_script("failing.py")
        self.assertEqual(out[0], "deploy error: Deploying application broken failed: Failed to update the deployments ['Broken'].")
        self.assertEqual(out[1:], ["mentions cause: True",
                                   "type error: serve.run expects an Application returned by Deployment.bind(), got Deployment"])


class PublicAPITest(unittest.TestCase):
    """tests/drivers/public_api.py: every public name of ray.serve a driver
    uses, against a local head it starts."""

    def test_public_api(self):
        port = _free_port()
        env = dict(os.environ, RAYK8S_RAY_BIN=_ray_bin(), RAYK8S_SERVE_PYTHON=sys.executable,
                   RAYK8S_SERVE_HTTP_PORT=str(_free_port()), SERVE_START_PORT=str(port), RAYK8S_SERVE_NUM_CPUS="8",
                   PYTHONPATH=PYTHON_DIR, PYTHONUNBUFFERED="1")
        for k in ("RAY_ADDRESS", "RAY_DASHBOARD_ADDRESS"):
            env.pop(k, None)
        p = subprocess.run([sys.executable, os.path.join(HERE, "drivers", "public_api.py")], env=env,
                           capture_output=True, text=True, timeout=240)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.splitlines(), [
            "ray initialized: True",
            "response: True model:b:6",
            "multiplexed: model:a:1",
            "replica context: api/Models",
            "generator: True [0, 1, 2]",
            "error: ValueError True",
            "exceptions: True",
            "app handle: model:b:10",
            # Served on serve.start's port; the driver's relay is rayk8s's own application.
            "http: {'/api': 'api', '/rayk8s-driver-relay': 'rayk8s-driver-relay'}",
            "status: RUNNING ['Front', 'Models']",
            "after delete: []",
            "ray initialized: False",
        ])


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

    def setUp(self):
        import tempfile
        self.tmp = tempfile.mkdtemp()

    def serve(self, *args, cwd=None, env=None):
        base = dict(os.environ, PYTHONPATH=PYTHON_DIR)
        for k in ("RAY_DASHBOARD_ADDRESS", "RAY_ADDRESS"):
            base.pop(k, None)
        env = dict(base, **(env or {}))
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

    def test_run_config_file_on_a_local_head(self):
        """`serve run config.yaml` with no address: a local head, the
        config's args and deployment overrides, blocking until Ctrl-C."""
        import signal
        import tempfile
        import urllib.request

        import yaml
        examples = os.path.join(PYTHON_DIR, "examples", "ray_serve")
        cfg = os.path.join(tempfile.mkdtemp(), "config.yaml")
        with open(cfg, "w") as f:
            yaml.safe_dump({"applications": [{
                "name": "calc", "route_prefix": "/calc", "import_path": "composition:build_app",
                "args": {"increment": 10, "multiple": 3},
                "deployments": [{"name": "Adder", "num_replicas": 2}]}]}, f)
        port = _free_port()
        env = dict(os.environ, PYTHONPATH=PYTHON_DIR, RAYK8S_SERVE_HTTP_PORT=str(port), PYTHONUNBUFFERED="1",
                   RAYK8S_RAY_BIN=_ray_bin(), RAYK8S_SERVE_PYTHON=sys.executable, RAYK8S_SERVE_NUM_CPUS="8")
        for k in ("RAY_ADDRESS", "RAY_DASHBOARD_ADDRESS"):
            env.pop(k, None)
        p = subprocess.Popen([sys.executable, os.path.join(PYTHON_DIR, "bin", "serve"), "run", cfg, "--app-dir", examples],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            self.assertEqual(line.strip(), "Deployed app(s) 'calc' successfully.", p.stderr.read() if not line else "")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/calc?val=1", timeout=30) as r:
                self.assertEqual(r.read(), b'{"result": 33}')
        finally:
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=120)
        self.assertEqual((p.returncode, out.strip()), (0, "Got KeyboardInterrupt, exiting..."), err)

    def test_run_config_file_against_a_cluster(self):
        """`serve run config.yaml -a <GCS address>`: the whole config is
        deployed with its args and deployment overrides."""
        import yaml
        examples = os.path.join(PYTHON_DIR, "examples", "ray_serve")
        cfg = os.path.join(self.tmp, "config.yaml")
        with open(cfg, "w") as f:
            yaml.safe_dump({"applications": [{
                "name": "calc2", "route_prefix": "/calc2", "import_path": "composition:build_app",
                "runtime_env": {"working_dir": examples}, "args": {"increment": 1, "multiple": 5},
                "deployments": [{"name": "Adder", "num_replicas": 2}, {"name": "Multiplier", "user_config": {"k": 1}}]}]}, f)
        p = self.serve("run", cfg, "--non-blocking", "-a", self.head.gcs_address, env={"RAY_DASHBOARD_ADDRESS": self.address})
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "Deployed app(s) 'calc2' successfully."), p.stderr)
        st = _driver.status_from_details(_driver.ServeClient(self.address).details())
        self.assertEqual(st.applications["calc2"].status, "RUNNING")
        self.assertEqual(st.applications["calc2"].deployments["Adder"].replica_states, {"RUNNING": 2})
        self.assertEqual(st.applications["calc2"].deployments["Multiplier"].replica_states, {"RUNNING": 1})
        # A config's import path that names nothing fails its application with one line saying so.
        with open(cfg, "w") as f:
            yaml.safe_dump({"applications": [{"name": "bad", "route_prefix": "/bad", "import_path": "composition:nothing",
                                              "runtime_env": {"working_dir": examples}}]}, f)
        p = self.serve("run", cfg, "--non-blocking", "-a", self.head.gcs_address, env={"RAY_DASHBOARD_ADDRESS": self.address})
        self.assertEqual((p.returncode, p.stderr.strip()), (1, "Error: Deploying application bad failed: Deploying app 'bad' failed "
                         "with exception:\nimport_path 'composition:nothing' names nothing: 'composition' has no attribute 'nothing'"))
        p = self.serve("run", os.path.join(self.tmp, "missing.yaml"), "--non-blocking")
        self.assertEqual((p.returncode, p.stderr.strip()),
                         (1, f"Error: cannot read config file {self.tmp}/missing.yaml: No such file or directory"))

    def test_run_import_path_and_bad_input_leave_running_apps_alone(self):
        """`serve run module:app` against a cluster; then every bad input of
        the issue is one line naming the thing, and the app stays as it was."""
        examples = os.path.join(PYTHON_DIR, "examples", "ray_serve")
        env = {"RAY_DASHBOARD_ADDRESS": self.address}
        p = self.serve("run", "composition:app", "--name", "keep", "--route-prefix", "/keep", "--non-blocking",
                       "-a", self.head.gcs_address, cwd=examples, env=env)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "Deployed app 'keep' successfully."), p.stderr)
        client = _driver.ServeClient(self.address)
        before = client.details()["applications"]["keep"]
        self.assertEqual(before["status"], "RUNNING")

        with open(os.path.join(self.tmp, "broken_module.py"), "w") as f:
            f.write("raise ValueError('no model file')\n")
        with open(os.path.join(self.tmp, "not_app.py"), "w") as f:
            f.write("answer = 42\n")
        port = _free_port()
        cases = [
            (["run", "broken_module:app"], "Error: importing broken_module:app failed: ValueError: no model file"),
            (["run", "not_app:nothing"], "Error: import_path 'not_app:nothing' names nothing: 'not_app' has no attribute 'nothing'"),
            (["run", "not_app:answer"], "Error: import_path 'not_app:answer' is a int, not an application, a deployment or a builder function"),
            (["run", "composition:app", "-a", f"127.0.0.1:{port}"], f"Error: Could not reach the Ray dashboard at http://127.0.0.1:{port}: [Errno 111] Connection refused"),
        ]
        for args, want in cases:
            p = self.serve(*args, "--non-blocking", cwd=self.tmp if args[1] != "composition:app" else examples,
                           env=env if "-a" not in args else {"RAY_DASHBOARD_ADDRESS": f"127.0.0.1:{port}"})
            self.assertEqual((p.returncode, p.stderr.strip()), (1, want), args)
        after = client.details()["applications"]
        self.assertEqual(sorted(after), sorted(client.details()["applications"]))
        self.assertEqual((after["keep"]["status"], after["keep"]["last_deployed_time_s"], after["keep"]["deployed_app_config"]),
                         ("RUNNING", before["last_deployed_time_s"], before["deployed_app_config"]))

    def test_bad_input(self):
        p = self.serve("build", "no_such_module_xyz:app")
        self.assertEqual((p.returncode, p.stderr.strip()), (1, "Error: import_path 'no_such_module_xyz:app': no module named 'no_such_module_xyz'"))
        p = self.serve("build", "test_serve_compat:nothing_here")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.strip(), "Error: import_path 'test_serve_compat:nothing_here' names nothing: 'test_serve_compat' has no attribute 'nothing_here'")
        p = self.serve("deploy", "/nonexistent/config.yaml", "-a", self.address)
        self.assertEqual((p.returncode, p.stderr.strip()), (1, "Error: cannot read config file /nonexistent/config.yaml: No such file or directory"))
        port = _free_port()
        p = self.serve("status", "-a", f"127.0.0.1:{port}")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.strip(), f"Error: Could not reach the Ray dashboard at http://127.0.0.1:{port}: [Errno 111] Connection refused")


if __name__ == "__main__":
    unittest.main()
