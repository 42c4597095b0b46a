"""The import path of applications that serve.run ships from a driver.

serve.run cloudpickles the bound application (deployments defined in the
driver's __main__ by value, as Ray does) and deploys it through the Serve
REST API with import_path "ray.serve._pickled:build" and the pickle,
base64-encoded, in the application's args. The build step and every
replica call build(args) to get the application back; see docs/serve.md."""

import base64
import io

import cloudpickle

ARG = "rayk8s_pickled_application"


class _Pickler(cloudpickle.CloudPickler):
    """cloudpickle, plus starlette's State (a FastAPI app's app.state), whose
    attribute lookup recurses while pickle rebuilds it field by field."""

    def reducer_override(self, obj):
        state_cls = _starlette_state()
        if state_cls is not None and type(obj) is state_cls:
            return state_cls, (dict(object.__getattribute__(obj, "_state")),)
        return super().reducer_override(obj)


def _starlette_state():
    try:
        from starlette.datastructures import State
    except ImportError:
        return None
    return State


def encode(app):
    buf = io.BytesIO()
    _Pickler(buf, protocol=cloudpickle.DEFAULT_PROTOCOL).dump(app)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def build(args):
    data = (args or {}).get(ARG)
    if not data:
        raise ValueError(f"ray.serve._pickled:build needs the pickled application in args['{ARG}']; "
                         "it is the import path of applications deployed with serve.run")
    return cloudpickle.loads(base64.b64decode(data))
