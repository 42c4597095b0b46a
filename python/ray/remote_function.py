"""@ray.remote functions."""

import hashlib

import cloudpickle

from ray._private.object_ref import ObjectRef, new_id
from ray._private import wire
from ray._private.runtime_env import env_vars_of, pip_of
from ray._private.worker import current_task, dumps, global_worker, serialize
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

# Options Ray has that this runtime does not run yet: naming them is an error.
_UNIMPLEMENTED_TASK_OPTIONS = ("accelerator_type", "label_selector",
                               "_metadata", "concurrency_groups", "enable_task_events", "_labels", "max_calls")
_TASK_OPTIONS = ("num_cpus", "num_gpus", "memory", "resources", "num_returns", "max_retries",
                 "retry_exceptions", "name", "scheduling_strategy", "runtime_env", "placement_group",
                 "placement_group_bundle_index", "placement_group_capture_child_tasks")


def resources_of(opts, default_cpus):
    res = {}
    cpus = opts.get("num_cpus", default_cpus)
    for key, value in (("CPU", cpus), ("GPU", opts.get("num_gpus")), ("memory", opts.get("memory"))):
        if value is None:
            continue
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"The resource {key} must be a non-negative number, got {value!r}")
        if value:
            res[key] = float(value)
    for key, value in (opts.get("resources") or {}).items():
        if key in ("CPU", "GPU", "memory"):
            raise ValueError(f"Use the '{ {'CPU': 'num_cpus', 'GPU': 'num_gpus', 'memory': 'memory'}[key]}' option instead of resources['{key}']")
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"The resource {key} must be a non-negative number, got {value!r}")
        if value:
            res[key] = float(value)
    return res


def check_options(opts, allowed, unimplemented, what):
    for key, value in opts.items():
        if key in unimplemented:
            raise NotImplementedError(f"the {what} option {key!r} is not implemented by this Ray runtime")
        if key not in allowed:
            raise ValueError(f"Invalid option keyword {key} for {what}s.")
    strategy_of(opts)


def strategy_of(opts):
    """The scheduling strategy, with the older placement_group= options
    turned into a PlacementGroupSchedulingStrategy as Ray does."""
    strategy = opts.get("scheduling_strategy")
    pg = opts.get("placement_group")
    if opts.get("placement_group_capture_child_tasks"):
        raise NotImplementedError("placement_group_capture_child_tasks is not implemented by this Ray runtime")
    if pg not in (None, "default"):
        if strategy not in (None, "DEFAULT"):
            raise ValueError("Placement groups should be specified via the scheduling_strategy option. "
                             "The placement_group option is deprecated.")
        strategy = PlacementGroupSchedulingStrategy(pg, opts.get("placement_group_bundle_index", -1))
    elif opts.get("placement_group_bundle_index", -1) != -1:
        raise ValueError("placement_group_bundle_index is given without a placement_group")
    if strategy in (None, "DEFAULT", "SPREAD") or isinstance(
            strategy, (NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy)):
        return strategy
    raise ValueError(f"Invalid scheduling_strategy {strategy!r}: use 'DEFAULT', 'SPREAD', "
                     "NodeAffinitySchedulingStrategy or PlacementGroupSchedulingStrategy")


def affinity_of(opts):
    """The body fields of the scheduling strategy (none by default)."""
    strategy = strategy_of(opts)
    if isinstance(strategy, NodeAffinitySchedulingStrategy):
        return {"affinity_node_id": strategy.node_id, "affinity_soft": strategy.soft}
    if strategy == "SPREAD":
        return {"spread": True}
    if isinstance(strategy, PlacementGroupSchedulingStrategy):
        pg, index = strategy.placement_group, strategy.placement_group_bundle_index
        bundles = pg._bundles
        if bundles is not None and index >= len(bundles):
            raise ValueError(f"placement_group_bundle_index {index} is invalid: the placement group has "
                             f"{len(bundles)} bundles")
        return {"pg_id": pg._id, "pg_bundle_index": index}
    return {}


def retry_exceptions_of(opts):
    """retry_exceptions as (bool, pickled list of exception types or "")."""
    value = opts.get("retry_exceptions", False)
    if isinstance(value, bool):
        return value, ""
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(t, type) and issubclass(t, BaseException) for t in value):
        import base64
        return True, base64.b64encode(cloudpickle.dumps(tuple(value))).decode()
    raise TypeError(f"retry_exceptions must be a bool or a non-empty list of exception types, got {value!r}")


def split_args(args, kwargs):
    """The top-level ObjectRefs among the arguments, resolved before the
    call: [{"id", "owner"}]."""
    refs = [a for a in args if isinstance(a, ObjectRef)] + [v for v in kwargs.values() if isinstance(v, ObjectRef)]
    return [{"id": r.hex(), "owner": r._owner} for r in refs]


def serialize_args(args, kwargs, what):
    if not args and not kwargs:
        return _NO_ARGS
    try:
        return dumps((args, kwargs))
    except Exception:  # noqa: BLE001 - find the argument to name in the error
        pass
    for a in list(args) + list(kwargs.values()):
        try:
            cloudpickle.dumps(a)
        except Exception as e:  # noqa: BLE001 - any pickling failure is the user's input
            raise TypeError(f"Could not serialize the argument {a!r} for a task or actor {what}: "
                            f"{type(e).__name__}: {e}") from None
    return serialize((args, kwargs), f"arguments for {what}")


# The pickle of a call without arguments, the commonest case (bytes, so
# sharing it is safe).
_NO_ARGS = dumps(((), {}))


def _plain(blob):
    """A blob as bytes, joining out-of-band pieces (a function closing over
    an array), since a function's blob is hashed and cached."""
    return b"".join(blob.pieces) if isinstance(blob, wire.Frames) else blob


def make_refs(task_id, n, actor_call=""):
    owner = global_worker.node_id
    return [ObjectRef(task_id[:-8] + f"{i:08x}", owner, actor_call) for i in range(n)]


class RemoteFunction:
    def __init__(self, function, options):
        check_options(options, _TASK_OPTIONS, _UNIMPLEMENTED_TASK_OPTIONS, "remote function")
        self._function = function
        self._options = options
        self._pickled = None
        self._fn_id = None
        self.__name__ = getattr(function, "__name__", "function")
        self.__doc__ = getattr(function, "__doc__", None)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Remote functions cannot be called directly. Instead of running "
                        f"'{self._function.__module__}.{self.__name__}()', try "
                        f"'{self._function.__module__}.{self.__name__}.remote()'.")

    def options(self, **options):
        merged = dict(self._options)
        merged.update(options)
        rf = RemoteFunction(self._function, merged)
        rf._pickled, rf._fn_id = self._pickled, self._fn_id
        return rf

    def _blob(self):
        if self._pickled is None:
            self._pickled = _plain(serialize(self._function, f"remote function {self.__name__}"))
            self._fn_id = hashlib.sha1(self._pickled).hexdigest()
        return self._pickled

    def remote(self, *args, **kwargs):
        w = global_worker
        w.check_connected()
        opts = self._options
        num_returns = opts.get("num_returns", 1)
        if num_returns == "dynamic" or num_returns == "streaming" or not isinstance(num_returns, int) or num_returns < 0:
            raise NotImplementedError(f"num_returns={num_returns!r} is not implemented by this Ray runtime; use a non-negative int")
        max_retries = opts.get("max_retries", 3)
        if not isinstance(max_retries, int) or max_retries < -1:
            raise ValueError(f"max_retries must be an int >= -1, got {max_retries!r}")
        retry_exceptions, retry_types = retry_exceptions_of(opts)
        name = opts.get("name") or self.__name__
        env_vars = env_vars_of(opts.get("runtime_env"), f"task {name}")
        pip = pip_of(opts.get("runtime_env"), f"task {name}")
        fn = self._blob()
        task_id = new_id()
        refs = make_refs(task_id, max(num_returns, 1))
        body = {
            "task_id": task_id, "job": w.job(), "name": name, "fn_id": self._fn_id,
            "returns": [r.hex() for r in refs], "resources": resources_of(opts, 1), "max_retries": max_retries,
            **affinity_of(opts),
        }
        # Fields at their defaults stay out: less JSON on both ends.
        deps = split_args(args, kwargs)
        parent = current_task.get()
        for key, value in (("deps", deps), ("retry_exceptions", retry_exceptions),
                           ("retry_exception_types", retry_types), ("parent_task_id", parent),
                           ("env_vars", env_vars), ("pip", pip)):
            if value:
                body[key] = value
        w.notify("submit_task", body, [fn, serialize_args(args, kwargs, name)])
        if num_returns == 0:
            return None
        return refs[0] if num_returns == 1 else refs
