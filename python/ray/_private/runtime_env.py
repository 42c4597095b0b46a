"""Checks a task's or actor's runtime_env: env_vars run; every other field
Ray knows is refused by name (nothing is accepted and ignored)."""

import json
import os

# Fields of Ray's runtime_env this runtime does not set up per task or actor.
_KNOWN_UNSUPPORTED = ("working_dir", "py_modules", "py_executable", "pip", "uv", "conda", "container",
                      "image_uri", "nsight", "config", "java_jars", "excludes", "worker_process_setup_hook",
                      "mpi", "rocprof_sys", "_ray_commit", "_inject_current_ray")


def env_vars_of(runtime_env, what):
    """The env_vars of a task's or actor's runtime_env ({} when none),
    merged over the ones the calling worker runs with, as Ray's child tasks
    inherit their parent's runtime_env."""
    inherited = json.loads(os.environ.get("RAYK8S_CORE_RUNTIME_ENV_VARS") or "{}")
    if runtime_env is None:
        return inherited
    if not isinstance(runtime_env, dict):
        raise TypeError(f"runtime_env of {what} must be a dict, got {type(runtime_env).__name__}")
    for key in runtime_env:
        if key == "env_vars":
            continue
        if key in _KNOWN_UNSUPPORTED:
            raise NotImplementedError(f"runtime_env field {key!r} of {what} is not supported by this Ray runtime for "
                                      "tasks and actors; only 'env_vars' is")
        raise ValueError(f"runtime_env of {what} has the unknown field {key!r}")
    env = runtime_env.get("env_vars") or {}
    if not isinstance(env, dict):
        raise TypeError(f"runtime_env['env_vars'] of {what} must be a dict of strings, got {type(env).__name__}")
    for k, v in env.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"runtime_env['env_vars'] of {what} must be a dict of strings; {k!r}: {v!r} is not")
    merged = dict(inherited)
    merged.update(env)
    return merged
