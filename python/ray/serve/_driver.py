"""serve.run, serve.start, serve.status, serve.delete and serve.shutdown in
a driver process: they use the cluster's Serve REST API (the dashboard),
started locally with our `ray` binary when no cluster is named."""

import atexit
import os
import secrets
import sys
import threading
import time
import urllib.parse

import ray
from ray._private import worker
from ray.serve import _pickled, _relay
from ray.serve._client import ServeClient
from ray.serve._driver_handle import DriverRuntime
from ray.serve._local_head import LocalServeHead
from rayk8s.serve import _context
from rayk8s.serve._api import Application

DEFAULT_APP_NAME = "default"
DEFAULT_DASHBOARD_PORT = 8265
_RUNNING, _FAILED = "RUNNING", "DEPLOY_FAILED"
# Replicas get their args in one environment variable (128 KiB on Linux).
_MAX_PICKLE = 120_000


def dashboard_url_for(address):
    """The dashboard URL of a cluster named by a GCS address (host:port),
    unless RAY_DASHBOARD_ADDRESS names it."""
    explicit = os.environ.get("RAY_DASHBOARD_ADDRESS")
    if explicit:
        return explicit if "://" in explicit else "http://" + explicit
    if address in (None, "", "auto"):
        return f"http://127.0.0.1:{DEFAULT_DASHBOARD_PORT}"
    if "://" in address:
        return address
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return f"http://{host}:{DEFAULT_DASHBOARD_PORT}"


class Session:
    """This driver's connection to one cluster's Serve (one per process,
    like Ray's Serve client)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.client = None
        self.local_head = None
        self.token = None
        self.runtime = None

    def connect(self, address=None):
        with self.lock:
            if self.client is not None:
                return self.client
            if address is None:
                address = os.environ.get("RAY_ADDRESS") or None
            w = worker.global_worker
            if address is None and w.connected:
                if w.local_head is not None and not hasattr(w.local_head, "dashboard_url"):
                    raise RuntimeError("ray.init() started a local Ray head without the dashboard that Serve "
                                       "deploys through; call serve.run without ray.init() first, or ray.init(address=...)")
                address = w.gcs_address
            if address is None:
                head = LocalServeHead()
                worker._connect(w, head.socket, "driver")
                w.local_head = head
                atexit.register(ray.shutdown)
                self.local_head = head
                client = ServeClient(head.dashboard_url)
                client.wait_ready()
            else:
                client = ServeClient(dashboard_url_for(address))
                client.details()  # fails now, naming the address, if it is unreachable
            self.client = client
            return client

    def http_options(self):
        if self.local_head is not None:
            return {"host": "127.0.0.1", "port": self.local_head.http_port}
        return None

    def proxy_url(self, details):
        opts = details.get("http_options") or {}
        port = opts.get("port") or 8000
        host = urllib.parse.urlparse(self.client.url).hostname or "127.0.0.1"
        return f"http://{host}:{port}{opts.get('root_path') or ''}"

    def install_runtime(self, details):
        """Makes DeploymentHandles work in this process, through the relay."""
        if self.runtime is None:
            self.runtime = DriverRuntime(self.proxy_url(details) + _relay.ROUTE_PREFIX, self.token)
        _context._set_runtime(self.runtime)


_session = Session()


def _wait(client, names, timeout_s=None):
    """Waits until every application of names is RUNNING; raises the
    deploy error of the first that fails."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        details = client.details()
        apps = details.get("applications") or {}
        pending = []
        for name in names:
            app = apps.get(name)
            status = (app or {}).get("status")
            if status == _FAILED:
                parts = [(app.get("message") or "").strip()]
                for dname, d in sorted((app.get("deployments") or {}).items()):
                    if (d.get("message") or "").strip():
                        parts.append(f"Deployment {dname}: {d['message'].strip()}")
                raise RuntimeError(f"Deploying application {name} failed: " + "\n".join(p for p in parts if p))
            if status != _RUNNING:
                pending.append(name)
        if not pending:
            return details
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"Application(s) {', '.join(pending)} did not become RUNNING within {timeout_s}s")
        time.sleep(0.1)


def run(target, blocking=False, name=DEFAULT_APP_NAME, route_prefix="/", logging_config=None,
        _local_testing_mode=False, external_scaler_enabled=False):
    """Deploys an application from this driver and returns a handle to its
    ingress deployment, as ray.serve.run does."""
    if not isinstance(target, Application):
        raise TypeError(f"serve.run expects an Application returned by Deployment.bind(), got {type(target).__name__}")
    if _local_testing_mode:
        raise NotImplementedError("serve.run(_local_testing_mode=True) is not implemented by the rayk8s Serve SDK")
    if external_scaler_enabled:
        raise NotImplementedError("serve.run(external_scaler_enabled=True) is not implemented by the rayk8s Serve SDK")
    if not isinstance(name, str) or not name:
        raise ValueError("serve.run(name=...) must be a non-empty string")
    s = _session
    with s.lock:
        client = s.connect()
        _register_by_value(target)
        pickled = _pickled.encode(target)
        if len(pickled) > _MAX_PICKLE:
            raise ValueError(f"serve.run: the pickled application {name!r} is {len(pickled)} bytes, over the "
                             f"{_MAX_PICKLE} bytes a replica's environment carries; load large state in the constructor")
        app_cfg = {"name": name, "import_path": "ray.serve._pickled:build", "args": {_pickled.ARG: pickled}}
        if route_prefix is not None:
            app_cfg["route_prefix"] = route_prefix
        if logging_config is not None:
            app_cfg["logging_config"] = dict(logging_config)
        if s.token is None:
            s.token = secrets.token_urlsafe(24)
        relay_cfg = {"name": _relay.APP_NAME, "route_prefix": _relay.ROUTE_PREFIX,
                     "import_path": "ray.serve._relay:build", "args": {"token": s.token}}
        config, details = client.current_config()
        apps = [a for a in config["applications"] if a.get("name") not in (name, _relay.APP_NAME)]
        config["applications"] = apps + [app_cfg, relay_cfg]
        if s.http_options() and details.get("proxy_location") is None:
            # Serve starts with this deploy: the local head's proxy port.
            config["http_options"] = {**(config.get("http_options") or {}), **s.http_options()}
        client.deploy(config)
        details = _wait(client, [name, _relay.APP_NAME])
        s.install_runtime(details)
    handle = _context.DeploymentHandle("", name)
    if blocking:
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return handle


def _register_by_value(app):
    """Modules beside the driver script (not installed on the cluster) are
    pickled by value, like __main__."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if not main_file:
        return
    register_by_value(app, os.path.dirname(os.path.abspath(main_file)))


def register_by_value(app, base):
    """The modules of app's deployments that live under the directory base
    are pickled by value."""
    import cloudpickle
    main = sys.modules.get("__main__")
    base = base.rstrip(os.sep) + os.sep
    for dep in app.deployments().values():
        mod = sys.modules.get(getattr(dep.func_or_class, "__module__", ""))
        path = getattr(mod, "__file__", None)
        if mod is not None and mod is not main and path and os.path.abspath(path).startswith(base):
            cloudpickle.register_pickle_by_value(mod)


def start(http_options=None, grpc_options=None, proxy_location=None, logging_config=None, **kwargs):
    """Connects to (or starts) the cluster's Serve, as ray.serve.start.
    Serve runs as part of every rayk8s head; its options apply when Serve
    starts (its first deploy), as in Ray. Each option is honoured field by
    field or refused: a field rayk8s does not act on, or one that differs
    from what an already running Serve uses, raises an error naming it."""
    from ray.serve.config import HTTPOptions, ProxyLocation, gRPCOptions

    for key in kwargs:
        raise TypeError(f"serve.start() got an unexpected keyword argument '{key}'")
    if logging_config:
        raise NotImplementedError("serve.start(logging_config=...) is not implemented by the rayk8s Serve SDK; "
                                  "set logging_config per application or deployment")
    wanted = {}
    http = _start_options("http_options", HTTPOptions, http_options)
    grpc = _start_options("grpc_options", gRPCOptions, grpc_options)
    if http:
        wanted["http_options"] = http
    if grpc:
        wanted["grpc_options"] = grpc
    if proxy_location is not None:
        loc = proxy_location.value if isinstance(proxy_location, ProxyLocation) else proxy_location
        if loc not in [p.value for p in ProxyLocation]:
            raise ValueError(f"serve.start(proxy_location=...) must be one of "
                             f"{', '.join(p.value for p in ProxyLocation)}, got {proxy_location!r}")
        wanted["proxy_location"] = loc
    s = _session
    with s.lock:
        client = s.connect()
        details = client.details()
        if details.get("proxy_location") is None:
            # Serve has not started: an empty deploy starts it with these options.
            config = {"applications": [], **wanted}
            if s.http_options():
                config["http_options"] = {**s.http_options(), **http}
            if len(config) > 1:
                client.deploy(config)
            return
        _check_running(details, wanted)


def _start_options(kind, cls, value):
    """The fields of value that serve.start passes on; refuses the ones
    rayk8s does not act on."""
    if value is None:
        return {}
    if isinstance(value, cls):
        opts = dict(value)
    elif isinstance(value, dict):
        try:
            opts = dict(cls(**value))
        except TypeError as e:
            raise TypeError(f"serve.start({kind}=...): {e}") from None
    else:
        raise TypeError(f"serve.start({kind}=...) expects a {cls.__name__} or a dict, got {type(value).__name__}")
    for key, v in opts.items():
        if key not in cls.HONOURED and v != cls.FIELDS[key]:
            raise NotImplementedError(f"serve.start({kind}=...): the field '{key}' is not implemented by rayk8s Serve")
    return {k: opts[k] for k in cls.HONOURED if k in opts}


def _check_running(details, wanted):
    """Options asked of a Serve that already runs must be the ones it runs
    with: they only apply when Serve starts."""
    from ray.serve.config import HTTPOptions, gRPCOptions

    defaults = {"http_options": HTTPOptions.FIELDS, "grpc_options": gRPCOptions.FIELDS}
    for kind, opts in wanted.items():
        if kind == "proxy_location":
            current = details.get("proxy_location")
            if current != opts:
                raise RuntimeError(f"serve.start(proxy_location={opts!r}): Serve already runs on this cluster with "
                                   f"proxy_location={current!r}; it applies only when Serve starts (serve.shutdown() stops it)")
            continue
        running = details.get(kind) or {}
        for key, value in opts.items():
            current = running.get(key, defaults[kind][key])
            if key == "grpc_servicer_functions":
                current = current or []
            if current != value:
                raise RuntimeError(f"serve.start({kind}=...): Serve already runs on this cluster with {key}={current!r}, "
                                   f"not {value!r}; {kind} apply only when Serve starts (serve.shutdown() stops it)")


def deploy_config(config, app_dir="."):
    """`serve run config.yaml`: deploys a whole Serve config (it replaces
    what runs, as `serve deploy` does) and waits until its applications are
    RUNNING; returns their names. On a local head, applications without a
    runtime_env working_dir get app_dir, where their import paths are."""
    apps = config.get("applications")
    if not isinstance(apps, list) or not apps:
        raise ValueError("the Serve config has no 'applications' list")
    s = _session
    with s.lock:
        client = s.connect()
        _, details = client.current_config()
        config = dict(config)
        if s.local_head is not None:
            config["applications"] = [_with_working_dir(a, app_dir) for a in apps]
            if details.get("proxy_location") is None:
                config["http_options"] = {**s.http_options(), **(config.get("http_options") or {})}
        names = [a.get("name", DEFAULT_APP_NAME) if isinstance(a, dict) else "" for a in apps]
        client.deploy(config)
        _wait(client, names)
    return names


def _with_working_dir(app, app_dir):
    if not isinstance(app, dict):
        return app
    env = dict(app.get("runtime_env") or {})
    if env.get("working_dir"):
        return app
    env["working_dir"] = os.path.abspath(app_dir)
    return {**app, "runtime_env": env}


class ApplicationStatusOverview:
    def __init__(self, status, message, last_deployed_time_s, deployments):
        self.status = status
        self.message = message
        self.last_deployed_time_s = last_deployed_time_s
        self.deployments = deployments

    def __repr__(self):
        return f"ApplicationStatusOverview(status={self.status!r}, message={self.message!r})"


class DeploymentStatusOverview:
    def __init__(self, status, status_trigger, replica_states, message):
        self.status = status
        self.status_trigger = status_trigger
        self.replica_states = replica_states
        self.message = message

    def __repr__(self):
        return f"DeploymentStatusOverview(status={self.status!r})"


class ServeStatus:
    def __init__(self, proxies, applications, target_capacity=None):
        self.proxies = proxies
        self.applications = applications
        self.target_capacity = target_capacity

    def __repr__(self):
        return f"ServeStatus(applications={self.applications!r})"


def status_from_details(d):
    apps = {}
    for name, a in (d.get("applications") or {}).items():
        if name == _relay.APP_NAME:
            continue
        deps = {}
        for dname, dd in (a.get("deployments") or {}).items():
            states = {}
            for r in dd.get("replicas") or []:
                states[r.get("state")] = states.get(r.get("state"), 0) + 1
            deps[dname] = DeploymentStatusOverview(dd.get("status"), dd.get("status_trigger"), states, dd.get("message", ""))
        apps[name] = ApplicationStatusOverview(a.get("status"), a.get("message", ""), a.get("last_deployed_time_s", 0), deps)
    proxies = {k: v.get("status") for k, v in (d.get("proxies") or {}).items()}
    return ServeStatus(proxies, apps, d.get("target_capacity"))


def status():
    """The status of every application, as ray.serve.status reports it."""
    return status_from_details(_session.connect().details())


def delete(name, _blocking=True):
    """Deletes one application; the others keep running."""
    s = _session
    with s.lock:
        client = s.connect()
        config, _ = client.current_config()
        config["applications"] = [a for a in config["applications"] if a.get("name") != name]
        client.deploy(config)
        if not _blocking:
            return
        while name in (client.details().get("applications") or {}):
            time.sleep(0.1)


def shutdown():
    """Deletes every application (Serve itself stays part of the head)."""
    s = _session
    with s.lock:
        if s.client is None and not worker.global_worker.connected and not os.environ.get("RAY_ADDRESS"):
            return
        s.connect().shutdown()
