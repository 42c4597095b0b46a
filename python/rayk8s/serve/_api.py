"""@serve.deployment, Deployment and Application (bound graphs)."""

import inspect
import json

# Every option of @serve.deployment that the deploy config also has, with
# the config's field name.
_CONFIG_OPTIONS = (
    "num_replicas",
    "max_ongoing_requests",
    "max_queued_requests",
    "user_config",
    "autoscaling_config",
    "graceful_shutdown_wait_loop_s",
    "graceful_shutdown_timeout_s",
    "health_check_period_s",
    "health_check_timeout_s",
    "ray_actor_options",
    "placement_group_bundles",
    "placement_group_strategy",
    "max_replicas_per_node",
    "logging_config",
    "request_router_config",
)
# Accepted for compatibility; they do not change how replicas run.
_IGNORED_OPTIONS = ("version", "route_prefix", "_internal", "max_concurrent_queries")

_UNSET = object()


class Deployment:
    """A class or function made into a deployment by @serve.deployment."""

    def __init__(self, func_or_class, name, options):
        self.func_or_class = func_or_class
        self.name = name
        self._options = dict(options)

    @property
    def is_function(self):
        return not inspect.isclass(self.func_or_class)

    def options(self, **kwargs):
        """A copy with some options changed (name= renames it)."""
        name = kwargs.pop("name", self.name)
        opts = dict(self._options)
        for key, value in kwargs.items():
            _check_option(key, value)
            if key in _IGNORED_OPTIONS:
                continue
            opts[key] = value
        return Deployment(self.func_or_class, name, opts)

    def bind(self, *args, **kwargs):
        """An Application: this deployment with its constructor arguments.
        Bound applications among the arguments become DeploymentHandles in
        the replica."""
        return Application(self, args, kwargs)

    def config_options(self):
        """The options the code sets, as deploy-config fields."""
        out = {"name": self.name}
        for key in _CONFIG_OPTIONS:
            if key in self._options:
                out[key] = self._options[key]
        return out

    def __call__(self, *args, **kwargs):
        raise RuntimeError("Deployments cannot be constructed directly; use .bind() and deploy the application.")

    def __repr__(self):
        return f"Deployment(name={self.name!r})"


def _check_option(key, value):
    if key not in _CONFIG_OPTIONS and key not in _IGNORED_OPTIONS:
        raise TypeError(f"deployment() got an unexpected keyword argument '{key}'")
    if key == "num_replicas" and value is not None and value != "auto":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError("num_replicas must be a non-negative integer or 'auto'")
    if key == "max_ongoing_requests" and (not isinstance(value, int) or value <= 0):
        raise ValueError("max_ongoing_requests must be an integer greater than 0")
    if key == "max_queued_requests" and (not isinstance(value, int) or (value != -1 and value < 1)):
        raise ValueError("max_queued_requests must be -1 or an integer greater than 0")
    if key == "user_config" and value is not None:
        try:
            json.dumps(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"user_config must be JSON-serializable: {e}") from e


def deployment(_func_or_class=None, *, name=None, **options):
    """Make a class or function a Serve deployment, as ray.serve.deployment:
    usable bare (@serve.deployment) or with options
    (@serve.deployment(num_replicas=2, user_config={...}))."""
    for key, value in options.items():
        _check_option(key, value)
    options = {k: v for k, v in options.items() if k not in _IGNORED_OPTIONS}

    def decorate(func_or_class):
        return Deployment(func_or_class, name or func_or_class.__name__, options)

    if _func_or_class is not None:
        return decorate(_func_or_class)
    return decorate


class Application:
    """A deployment bound to constructor arguments: the root of a graph."""

    def __init__(self, deployment, args, kwargs):
        self.deployment = deployment
        self.args = args
        self.kwargs = kwargs

    def walk(self):
        """Every Application of the graph, this one first, each once."""
        seen = []
        stack = [self]
        while stack:
            app = stack.pop()
            if any(app is s for s in seen):
                continue
            seen.append(app)
            for child in reversed(_children((app.args, app.kwargs))):
                stack.append(child)
        return seen

    def deployments(self):
        """name → Deployment of the graph; a name used by two different
        deployments is an error, as in Ray."""
        out = {}
        for app in self.walk():
            d = app.deployment
            if d.name in out and out[d.name] is not d:
                other = out[d.name]
                if other.func_or_class is not d.func_or_class or other._options != d._options:
                    raise ValueError(f"Two different deployments in the application are named '{d.name}'; rename one with .options(name=...)")
            out[d.name] = d
        return out

    def find(self, name):
        """The bound application of deployment name."""
        for app in self.walk():
            if app.deployment.name == name:
                return app
        return None

    def __repr__(self):
        return f"Application({self.deployment.name})"


def _children(value):
    out = []
    if isinstance(value, Application):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            out.extend(_children(v))
    elif isinstance(value, dict):
        for v in value.values():
            out.extend(_children(v))
    return out


def replace_apps(value, fn):
    """value with every Application replaced by fn(app)."""
    if isinstance(value, Application):
        return fn(value)
    if isinstance(value, list):
        return [replace_apps(v, fn) for v in value]
    if isinstance(value, tuple):
        return tuple(replace_apps(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: replace_apps(v, fn) for k, v in value.items()}
    return value


class ImportPathError(ValueError):
    """An import path that names no application: one line naming it."""


def load_application(import_path, args=None):
    """Resolve an import path (module:attr or module.attr) to an Application:
    a bound application, a deployment (bound without arguments) or a builder
    function called with the config's args. An import path naming nothing
    raises ImportPathError; errors of the user's module propagate as they are."""
    import importlib

    if ":" in import_path:
        module_name, attr = import_path.split(":", 1)
    else:
        module_name, _, attr = import_path.rpartition(".")
    if not module_name or not attr:
        raise ImportPathError(f"import_path {import_path!r} must be of the form 'module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only the module the path names; a dependency it lacks is its own error.
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ImportPathError(f"import_path {import_path!r}: no module named {e.name!r}") from None
        raise
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ImportPathError(f"import_path {import_path!r} names nothing: {module_name!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    if isinstance(obj, Application):
        return obj
    if isinstance(obj, Deployment):
        return obj.bind()
    if callable(obj):
        built = obj(args or {})
        if isinstance(built, Deployment):
            built = built.bind()
        if not isinstance(built, Application):
            raise ImportPathError(f"The builder {import_path} returned {type(built).__name__}, not an application (.bind() result)")
        return built
    raise ImportPathError(f"import_path {import_path!r} is a {type(obj).__name__}, not an application, a deployment or a builder function")
