"""The `serve` command line, with Ray's subcommands and flags:
deploy, status, config, shutdown, run and build. It talks to the Serve REST
API of the dashboard at --address (default RAY_DASHBOARD_ADDRESS, else
http://localhost:8265), as Ray's does."""

import argparse
import importlib
import json
import os
import sys
import time

from ray.serve import _relay
from ray.serve._client import ServeAPIError, ServeClient

DEFAULT_ADDRESS = "http://localhost:8265"


def _yaml():
    try:
        import yaml
    except ImportError:
        raise SystemExit("Error: the serve CLI needs PyYAML (Debian: python3-yaml)") from None
    return yaml


def _client(args):
    return ServeClient(args.address or os.environ.get("RAY_DASHBOARD_ADDRESS") or DEFAULT_ADDRESS)


def _user_apps(details):
    return {k: v for k, v in (details.get("applications") or {}).items() if k != _relay.APP_NAME}


def _read_config(path):
    yaml = _yaml()
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except OSError as e:
        raise SystemExit(f"Error: cannot read config file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise SystemExit(f"Error: {path} is not valid YAML: {e}") from None
    if not isinstance(config, dict):
        raise SystemExit(f"Error: {path} must hold a Serve config (a mapping with 'applications')")
    return config


def cmd_deploy(args):
    config = _read_config(args.config_file_name)
    _client(args).deploy(config)
    print(f"Sent deploy request successfully.\n * Use `serve status` to check applications' statuses.\n"
          f" * Use `serve config` to see the current application config(s).")


def cmd_status(args):
    d = _client(args).details()
    out = {"proxies": {k: v.get("status") for k, v in (d.get("proxies") or {}).items()}, "applications": {},
           "target_capacity": d.get("target_capacity")}
    for name, a in _user_apps(d).items():
        deps = {}
        for dn, dd in (a.get("deployments") or {}).items():
            states = {}
            for r in dd.get("replicas") or []:
                states[r.get("state")] = states.get(r.get("state"), 0) + 1
            deps[dn] = {"status": dd.get("status"), "status_trigger": dd.get("status_trigger"),
                        "replica_states": states, "message": dd.get("message", "")}
        out["applications"][name] = {"status": a.get("status"), "message": a.get("message", ""),
                                     "last_deployed_time_s": a.get("last_deployed_time_s"), "deployments": deps}
    print(_yaml().safe_dump(out, sort_keys=False, default_flow_style=False), end="")


def cmd_config(args):
    apps = _user_apps(_client(args).details())
    configs = [a["deployed_app_config"] for n, a in apps.items()
               if a.get("deployed_app_config") and (args.name is None or n == args.name)]
    yaml = _yaml()
    print("\n---\n\n".join(yaml.safe_dump(c, sort_keys=False) for c in configs), end="")


def cmd_shutdown(args):
    if not args.yes:
        answer = input("This will shut down Serve on the cluster at "
                       f"{_client(args).url} and delete all applications. Do you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise SystemExit(1)
    _client(args).shutdown()
    print("Sent shutdown request; applications will be deleted asynchronously.")


def _import_app(import_path, app_dir="."):
    from rayk8s.serve._api import ImportPathError, load_application
    sys.path.insert(0, os.path.abspath(app_dir))
    try:
        return load_application(import_path)
    except ImportPathError as e:
        raise SystemExit(f"Error: {e}") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed to import
        raise SystemExit(f"Error: importing {import_path} failed: {type(e).__name__}: {e}") from None


def cmd_run(args):
    _driver = importlib.import_module("ray.serve._driver")
    target = args.config_or_import_path
    if args.address:
        os.environ["RAY_ADDRESS"] = args.address
    if target.endswith((".yaml", ".yml")):
        config = _read_config(target)
        names = _driver.deploy_config(config, app_dir=args.app_dir)
        print(f"Deployed app(s) {', '.join(repr(n) for n in names)} successfully.", flush=True)
    else:
        app = _import_app(target, args.app_dir)
        # The application's own modules (under --app-dir) travel with it.
        _driver.register_by_value(app, os.path.abspath(args.app_dir))
        _driver.run(app, name=args.name, route_prefix=args.route_prefix)
        print(f"Deployed app '{args.name}' successfully.", flush=True)
    if args.non_blocking:
        return
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("Got KeyboardInterrupt, exiting...")


def cmd_build(args):
    yaml = _yaml()
    apps = []
    for path in args.import_paths:
        app = _import_app(path)
        name = app.deployment.name if len(args.import_paths) > 1 else "app1"
        apps.append({"name": name, "route_prefix": "/" if len(args.import_paths) == 1 else f"/{name}",
                     "import_path": path, "runtime_env": {},
                     "deployments": [d.config_options() for d in app.deployments().values()]})
    config = {"proxy_location": "EveryNode", "http_options": {"host": "0.0.0.0", "port": 8000},
              "applications": apps}
    text = yaml.safe_dump(config, sort_keys=False)
    if args.output_path:
        with open(args.output_path, "w") as f:
            f.write(text)
    else:
        print(text, end="")


def parser():
    p = argparse.ArgumentParser(prog="serve", description="CLI for managing Serve applications on a Ray cluster.")
    sub = p.add_subparsers(dest="command", required=True)

    def with_address(sp):
        sp.add_argument("-a", "--address", default=None,
                        help="Address of the Ray dashboard (default RAY_DASHBOARD_ADDRESS or http://localhost:8265)")
        return sp

    d = with_address(sub.add_parser("deploy", help="Deploy a Serve config file."))
    d.add_argument("config_file_name")
    d.set_defaults(fn=cmd_deploy)
    s = with_address(sub.add_parser("status", help="Get the current status of all Serve applications."))
    s.add_argument("-n", "--name", default=None)
    s.set_defaults(fn=cmd_status)
    c = with_address(sub.add_parser("config", help="Get the current config of Serve applications."))
    c.add_argument("-n", "--name", default=None)
    c.set_defaults(fn=cmd_config)
    sh = with_address(sub.add_parser("shutdown", help="Delete all applications."))
    sh.add_argument("-y", "--yes", action="store_true")
    sh.set_defaults(fn=cmd_shutdown)
    r = sub.add_parser("run", help="Run an application (module:app) or a Serve config file (config.yaml).")
    r.add_argument("config_or_import_path")
    r.add_argument("-d", "--app-dir", default=".",
                   help="Local directory to look for the import path in (and, on a local head, the working_dir of "
                        "a config's applications that set none)")
    r.add_argument("-a", "--address", default=None, help="GCS address of the cluster (default RAY_ADDRESS, else a local head)")
    r.add_argument("--name", default="default")
    r.add_argument("--route-prefix", default="/")
    r.add_argument("--non-blocking", action="store_true")
    r.set_defaults(fn=cmd_run)
    b = sub.add_parser("build", help="Write the Serve config of one or more applications.")
    b.add_argument("import_paths", nargs="+")
    b.add_argument("-o", "--output-path", default=None)
    b.set_defaults(fn=cmd_build)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except (ConnectionError, ServeAPIError, RuntimeError, TypeError, ValueError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
