"""The import path of applications that serve.run ships from a driver.

serve.run cloudpickles the bound application (deployments defined in the
driver's __main__ by value, as Ray does) and deploys it through the Serve
REST API with import_path "ray.serve._pickled:build" and the pickle,
base64-encoded, in the application's args. The build step and every
replica call build(args) to get the application back; see docs/serve.md."""

import base64

import cloudpickle

ARG = "rayk8s_pickled_application"


def encode(app):
    return base64.b64encode(cloudpickle.dumps(app)).decode("ascii")


def build(args):
    data = (args or {}).get(ARG)
    if not data:
        raise ValueError(f"ray.serve._pickled:build needs the pickled application in args['{ARG}']; "
                         "it is the import path of applications deployed with serve.run")
    return cloudpickle.loads(base64.b64decode(data))
