"""Ray's core API on the rayk8s runtime.

`import ray` gives Ray's entry points — ray.init, @ray.remote tasks and
actors, ray.get/put/wait — run by the node agents of a rayk8s cluster (see
docs/ray-core.md). What this runtime does not implement raises an error
saying so instead of doing nothing. ``ray._private.gcs_utils.cleanup_redis_storage``
is what the operator's Redis clean-up Job calls when a RayCluster with GCS fault
tolerance is deleted.
"""

from ray import exceptions
from ray._private.object_ref import ObjectRef
from ray._private.worker import (
    available_resources,
    cancel,
    get_gpu_ids,
    cluster_resources,
    get,
    init,
    is_initialized,
    put,
    shutdown,
    wait,
)
from ray._private.worker import public_nodes as nodes
from ray.actor import ActorClass, ActorHandle, get_actor, kill, method
from ray.remote_function import RemoteFunction
from ray.runtime_context import get_runtime_context

__version__ = "2.52.0"


def remote(*args, **kwargs):
    """@ray.remote or @ray.remote(**options) on a function or a class."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make_remote(args[0], {})
    if args:
        raise TypeError("The @ray.remote decorator must be applied either with no arguments and no "
                        "parentheses, for example '@ray.remote', or it must be applied using some of "
                        "the arguments in the list ['num_cpus', 'num_gpus', 'memory', 'resources', ...]")

    def decorator(fn_or_class):
        return _make_remote(fn_or_class, kwargs)
    return decorator


def _make_remote(fn_or_class, options):
    import inspect
    if inspect.isclass(fn_or_class):
        return ActorClass(fn_or_class, options)
    if inspect.isfunction(fn_or_class) or inspect.isbuiltin(fn_or_class) or callable(fn_or_class):
        return RemoteFunction(fn_or_class, options)
    raise TypeError("The @ray.remote decorator must be applied to either a function or a class.")


def _not_implemented(name):
    def fn(*args, **kwargs):
        raise NotImplementedError(f"ray.{name}() is not implemented by this Ray runtime yet")
    fn.__name__ = name
    return fn


timeline = _not_implemented("timeline")


def __getattr__(name):
    raise AttributeError(f"module 'ray' has no attribute '{name}' (this Ray runtime does not implement it)")


__all__ = [
    "ActorClass", "ActorHandle", "ObjectRef", "RemoteFunction", "available_resources", "cancel",
    "cluster_resources", "exceptions", "get", "get_actor", "get_gpu_ids", "get_runtime_context", "init",
    "is_initialized", "kill", "method", "nodes", "put", "remote", "shutdown", "timeline", "wait",
]
