"""The build step of a Python application: `python3 -m rayk8s.serve._build`
imports the application, like Ray's build task, and prints the deployments
its graph declares (with the options the code sets) for the controller."""

import json
import os
import sys
import traceback

from rayk8s.serve import _api
from rayk8s.serve._replica import ENV_APP_ARGS, ENV_IMPORT_PATH, setup_path

RESULT_TAG = "RAYK8S_SERVE_BUILD_RESULT "


def build(import_path, args):
    app = _api.load_application(import_path, args)
    deployments = app.deployments()
    return {"ingress": app.deployment.name, "deployments": [d.config_options() for d in deployments.values()]}


def main():
    setup_path(os.environ)
    try:
        result = build(os.environ[ENV_IMPORT_PATH], json.loads(os.environ.get(ENV_APP_ARGS) or "null"))
        line = json.dumps(result, separators=(",", ":"))
    except _api.ImportPathError as e:
        # The path names nothing: one line says so, no traceback of ours.
        print(e, file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:  # noqa: BLE001 - any import error fails the build
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)
    print(RESULT_TAG + line, flush=True)


if __name__ == "__main__":
    main()
