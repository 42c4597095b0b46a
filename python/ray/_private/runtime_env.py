"""Checks a task's or actor's runtime_env: env_vars and pip run; every other
field Ray knows is refused by name (nothing is accepted and ignored)."""

import json
import os

# Fields of Ray's runtime_env this runtime does not set up per task or actor.
_KNOWN_UNSUPPORTED = ("working_dir", "py_modules", "py_executable", "uv", "conda", "container",
                      "image_uri", "nsight", "config", "java_jars", "excludes", "worker_process_setup_hook",
                      "mpi", "rocprof_sys", "_ray_commit", "_inject_current_ray")

# The pip spec (JSON) a worker's venv was built from; its child tasks inherit it.
_PIP_ENV = "RAYK8S_CORE_RUNTIME_ENV_PIP"


def _check_fields(runtime_env, what):
    if not isinstance(runtime_env, dict):
        raise TypeError(f"runtime_env of {what} must be a dict, got {type(runtime_env).__name__}")
    for key in runtime_env:
        if key in ("env_vars", "pip"):
            continue
        if key in _KNOWN_UNSUPPORTED:
            raise NotImplementedError(f"runtime_env field {key!r} of {what} is not supported by this Ray runtime for "
                                      "tasks and actors; only 'env_vars' and 'pip' are")
        raise ValueError(f"runtime_env of {what} has the unknown field {key!r}")


def env_vars_of(runtime_env, what):
    """The env_vars of a task's or actor's runtime_env ({} when none),
    merged over the ones the calling worker runs with, as Ray's child tasks
    inherit their parent's runtime_env."""
    inherited = json.loads(os.environ.get("RAYK8S_CORE_RUNTIME_ENV_VARS") or "{}")
    if runtime_env is None:
        return inherited
    _check_fields(runtime_env, what)
    env = runtime_env.get("env_vars") or {}
    if not isinstance(env, dict):
        raise TypeError(f"runtime_env['env_vars'] of {what} must be a dict of strings, got {type(env).__name__}")
    for k, v in env.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"runtime_env['env_vars'] of {what} must be a dict of strings; {k!r}: {v!r} is not")
    merged = dict(inherited)
    merged.update(env)
    return merged


def pip_spec(value, what):
    """Normalises a runtime_env 'pip' value to {"packages": [...], "pip_check": bool}
    (None when it installs nothing). Ray's forms: a list of requirements, or a
    dict with packages, pip_check and pip_version."""
    if value is None:
        return None
    if isinstance(value, str):
        raise NotImplementedError(f"runtime_env['pip'] of {what} as a requirements file ({value!r}) is not supported "
                                  "by this Ray runtime; give the list of packages")
    pip_check = False
    if isinstance(value, dict):
        for key in value:
            if key not in ("packages", "pip_check", "pip_version"):
                raise ValueError(f"runtime_env['pip'] of {what} has the unknown field {key!r}; "
                                 "expected packages, pip_check or pip_version")
        if value.get("pip_version"):
            raise NotImplementedError(f"runtime_env['pip']['pip_version'] of {what} ({value['pip_version']!r}) is not "
                                      "supported by this Ray runtime: venvs use the pip the system ships")
        if "packages" not in value:
            raise ValueError(f"runtime_env['pip'] of {what} must name its packages ('packages': [...])")
        pip_check = value.get("pip_check", False)
        if not isinstance(pip_check, bool):
            raise TypeError(f"runtime_env['pip']['pip_check'] of {what} must be a bool, got {type(pip_check).__name__}")
        value = value["packages"]
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) and p.strip() for p in value):
        raise TypeError(f"runtime_env['pip'] of {what} must be a list of package names, got {value!r}")
    if not value:
        return None
    spec = {"packages": list(value)}
    if pip_check:
        spec["pip_check"] = True
    return spec


def pip_of(runtime_env, what):
    """The pip spec of a task's or actor's runtime_env; without one, the spec
    the calling worker's venv was built from, as Ray's child tasks inherit
    their parent's runtime_env."""
    if runtime_env is not None:
        _check_fields(runtime_env, what)
        if "pip" in runtime_env:
            return pip_spec(runtime_env["pip"], what)
    raw = os.environ.get(_PIP_ENV)
    return json.loads(raw) if raw else None
