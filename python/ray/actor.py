"""@ray.remote classes (actors) and their handles."""

import collections
import inspect
import os
import threading

from ray._private.object_ref import new_id
from ray._private.runtime_env import env_vars_of, pip_of
from ray._private.worker import global_worker, serialize
from ray.remote_function import affinity_of, check_options, make_refs, resources_of, serialize_args, split_args

_ACTOR_OPTIONS = ("num_cpus", "num_gpus", "memory", "resources", "name", "namespace", "lifetime",
                  "get_if_exists", "max_concurrency", "max_restarts", "max_task_retries",
                  "scheduling_strategy", "max_pending_calls", "runtime_env", "placement_group",
                  "placement_group_bundle_index", "placement_group_capture_child_tasks")
_UNIMPLEMENTED_ACTOR_OPTIONS = ("concurrency_groups",
                                "accelerator_type", "label_selector", "_metadata", "enable_task_events")


# The built-in method that ends an actor once the calls sent before it are
# done (Ray's name); Ray calls it when every handle of an actor is gone.
TERMINATE = "__ray_terminate__"
# Why an actor ended, for the callers that come after: its handles were all
# gone (Ray's wording), or the user called __ray_terminate__.
OUT_OF_SCOPE = "The actor is dead because all references to the actor were removed."
TERMINATED = "The actor was terminated by __ray_terminate__."


class _Owned:
    """An actor this process created: its handles here, and whether one left
    the process (pickled: passed to a task or an actor, put, returned), after
    which this process no longer knows of every handle."""
    __slots__ = ("handles", "escaped", "conn")

    def __init__(self, conn):
        self.handles = 0
        self.escaped = False
        self.conn = conn


# Actors this process owns, by id. As in Ray, one ends when its handles here
# are all gone; one whose handle left the process, a named and a detached one
# live until ray.kill or the end of the job.
_owned = {}
_owned_lock = threading.Lock()
# Ids of handles the garbage collector finalized. __del__ only appends here
# and writes a byte to wake the reaper thread, which does the rest: __del__
# can run inside any code of this process, including code that holds a
# lock, so it takes none.
_dropped = collections.deque()
_reaper = []


def _own(actor_id):
    with _owned_lock:
        _owned[actor_id] = _Owned(global_worker.conn)
        if not _reaper:
            r, w = os.pipe()
            os.set_blocking(w, False)
            t = threading.Thread(target=_reap_forever, args=(r,), name="ray-actor-reaper", daemon=True)
            _reaper.append(w)
            t.start()


def _wake_reaper():
    if _reaper:
        try:
            os.write(_reaper[0], b"x")
        except OSError:
            pass  # full: the reaper is being woken anyway


def _reap_forever(r):
    while True:
        try:
            if not os.read(r, 4096):
                return
        except OSError:
            return
        _reap()


def _reap():
    """Ends the owned actors whose last handle here is gone: each gets
    __ray_terminate__ the way its calls went, so it runs after them."""
    gone = []
    with _owned_lock:
        # Only a finalized handle can end an actor: one just created has no
        # handle yet for a moment.
        while _dropped:
            actor_id = _dropped.popleft()
            o = _owned.get(actor_id)
            if o is None:
                continue
            o.handles -= 1
            if o.handles <= 0:
                del _owned[actor_id]
                if not o.escaped:
                    gone.append((actor_id, o))
    for actor_id, o in gone:
        if global_worker.conn is not o.conn or not global_worker.connected:
            continue  # a session that ended: its job's actors ended with it
        try:
            _submit(actor_id, TERMINATE, 0, (), {}, reason=OUT_OF_SCOPE)
        except Exception:  # noqa: BLE001 - an actor that is already gone needs no ending
            pass


def method(*args, **kwargs):
    """@ray.method(num_returns=N) on an actor method."""
    if args or set(kwargs) - {"num_returns"}:
        raise NotImplementedError("ray.method supports only num_returns in this Ray runtime")

    def wrap(fn):
        fn.__ray_num_returns__ = kwargs.get("num_returns", 1)
        return fn
    return wrap


def _methods(cls):
    out = {}
    for name, fn in inspect.getmembers(cls, predicate=lambda f: inspect.isfunction(f) or inspect.ismethod(f)):
        if name.startswith("__") and name != "__call__":
            continue
        out[name] = getattr(fn, "__ray_num_returns__", 1)
    return out


def _is_async(cls):
    return any(inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f)
               for _, f in inspect.getmembers(cls, predicate=inspect.isfunction))


class ActorClass:
    def __init__(self, cls, options):
        check_options(options, _ACTOR_OPTIONS, _UNIMPLEMENTED_ACTOR_OPTIONS, "actor")
        self._cls = cls
        self._options = options
        self.__name__ = cls.__name__

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actors cannot be instantiated directly. Instead of '{self.__name__}()', "
                        f"use '{self.__name__}.remote()'.")

    def options(self, **options):
        merged = dict(self._options)
        merged.update(options)
        return ActorClass(self._cls, merged)

    def remote(self, *args, **kwargs):
        w = global_worker
        w.check_connected()
        opts = self._options
        if opts.get("max_pending_calls", -1) not in (-1, None):
            raise NotImplementedError("the actor option max_pending_calls is not implemented by this Ray runtime yet")
        max_task_retries = opts.get("max_task_retries") or 0
        if not isinstance(max_task_retries, int) or max_task_retries < -1:
            raise ValueError(f"max_task_retries must be an int >= -1, got {max_task_retries!r}")
        max_restarts = opts.get("max_restarts") or 0
        if not isinstance(max_restarts, int) or max_restarts < -1:
            raise ValueError(f"max_restarts must be an int >= -1, got {max_restarts!r}")
        lifetime = opts.get("lifetime")
        if lifetime not in (None, "detached", "non_detached"):
            raise ValueError(f"actor lifetime must be 'detached' or 'non_detached', got {lifetime!r}")
        name = opts.get("name") or ""
        if not isinstance(name, str):
            raise TypeError(f"actor name must be a string, got {name!r}")
        if opts.get("get_if_exists") and not name:
            raise ValueError("The actor name must be specified to use `get_if_exists`.")
        is_async = _is_async(self._cls)
        max_concurrency = opts.get("max_concurrency") or (1000 if is_async else 1)
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError("max_concurrency must be an int >= 1")
        methods = _methods(self._cls)
        actor_id = new_id()[:32]
        body = {
            "actor_id": actor_id, "class_name": self.__name__, "methods": list(methods),
            "method_returns": methods, "is_async": is_async, "name": name,
            "namespace": opts.get("namespace") or "", "detached": lifetime == "detached",
            "max_concurrency": max_concurrency, "max_restarts": max_restarts, "max_task_retries": max_task_retries,
            "env_vars": env_vars_of(opts.get("runtime_env"), f"actor {self.__name__}"),
            "pip": pip_of(opts.get("runtime_env"), f"actor {self.__name__}"),
            "job": w.job(), "deps": split_args(args, kwargs),
            "resources": resources_of(opts, None), "get_if_exists": bool(opts.get("get_if_exists")),
            **affinity_of(opts),
        }
        cls_blob = serialize(self._cls, f"actor class {self.__name__}")
        reply, _ = w.call("create_actor", body, [cls_blob, serialize_args(args, kwargs, self.__name__)])
        if reply.get("existing"):
            return ActorHandle(reply["existing"])
        if not name and lifetime != "detached":
            _own(actor_id)
        return ActorHandle(body)


class ActorHandle:
    def __init__(self, info):
        self._info = {k: info.get(k) for k in ("actor_id", "class_name", "methods", "method_returns", "is_async",
                                               "name", "namespace")}
        self._ray_actor_id = info["actor_id"]
        self._ray_owned = False
        with _owned_lock:
            o = _owned.get(self._ray_actor_id)
            if o is not None:
                o.handles += 1
                self._ray_owned = True

    def __del__(self):
        try:
            if self.__dict__.get("_ray_owned"):
                _dropped.append(self.__dict__["_ray_actor_id"])
                _wake_reaper()
        except Exception:  # noqa: BLE001 - at interpreter exit the module may be half torn down
            pass

    def __getattr__(self, name):
        info = self.__dict__.get("_info")
        if name == TERMINATE and info is not None:
            return ActorMethod(self, name, {"num_returns": 1})
        if info is None or name not in (info.get("methods") or ()):
            raise AttributeError(f"'ActorHandle' object has no attribute '{name}'")
        returns = (info.get("method_returns") or {}).get(name, 1)
        return ActorMethod(self, name, {"num_returns": returns})

    def __repr__(self):
        return f"Actor({self._info['class_name']}, {self._ray_actor_id})"

    def __reduce__(self):
        o = _owned.get(self._ray_actor_id)
        if o is not None:
            # This process no longer sees every handle: the actor lives
            # until ray.kill or the end of the job.
            o.escaped = True
        return (ActorHandle, (self._info,))

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._ray_actor_id == self._ray_actor_id

    def __hash__(self):
        return hash(self._ray_actor_id)


class ActorMethod:
    def __init__(self, handle, name, options):
        self._handle = handle
        self._name = name
        self._options = options

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of running 'object.{self._name}()', "
                        f"try 'object.{self._name}.remote()'.")

    def options(self, **options):
        for key in options:
            if key != "num_returns":
                raise NotImplementedError(f"the actor method option {key!r} is not implemented by this Ray runtime")
        merged = dict(self._options)
        merged.update(options)
        return ActorMethod(self._handle, self._name, merged)

    def remote(self, *args, **kwargs):
        global_worker.check_connected()
        num_returns = self._options.get("num_returns", 1)
        if not isinstance(num_returns, int) or num_returns < 0:
            raise NotImplementedError(f"num_returns={num_returns!r} is not implemented by this Ray runtime; use a non-negative int")
        if self._name == TERMINATE and (args or kwargs):
            raise TypeError(f"{TERMINATE}() takes no arguments")
        return _submit(self._handle._ray_actor_id, self._name, num_returns, args, kwargs)


def _submit(actor_id, method_name, num_returns, args, kwargs, reason=""):
    """Sends one call, straight to the actor's process when this process has
    a route there, through the agent otherwise; calls of one caller keep
    their order either way. reason says why a __ray_terminate__ was sent;
    the actor's later callers get it (empty: called by the user)."""
    w = global_worker
    task_id = new_id()
    n = max(num_returns, 1)
    blob = serialize_args(args, kwargs, method_name)
    dc = w.direct
    with dc.route_lock:
        conn = dc.route(actor_id)
        if conn is not None:
            # Straight to the actor's process (ray._private.direct).
            body = {"kind": "actor_call", "task_id": task_id, "job": w.job(), "method": method_name,
                    "num_returns": n}
            if reason:
                body["reason"] = reason
            ids = [task_id[:-8] + f"{i:08x}" for i in range(n)]
            refs = dc.submit(conn, body, [blob], ids, w.job(), actor_id)
        else:
            refs = make_refs(task_id, n, actor_call=actor_id)
            body = {"actor_id": actor_id, "task_id": task_id, "method": method_name,
                    "returns": [r.hex() for r in refs], "job": w.job()}
            if reason:
                body["reason"] = reason
            deps = split_args(args, kwargs)
            if deps:
                body["deps"] = deps
            w.notify("actor_call", body, [blob])
    if num_returns == 0:
        return None
    return refs[0] if num_returns == 1 else refs


def get_actor(name, namespace=None):
    w = global_worker
    w.check_connected()
    if not name:
        raise ValueError("Please supply a non-empty value to get_actor")
    info, _ = w.call("get_actor", {"name": name, "namespace": namespace or w.namespace})
    return ActorHandle(info)


def kill(actor, *, no_restart=True):
    if not isinstance(actor, ActorHandle):
        raise ValueError(f"ray.kill() only supported for actors. For tasks, try ray.cancel(). Got: {type(actor)}.")
    global_worker.call("kill_actor", {"actor_id": actor._ray_actor_id, "no_restart": bool(no_restart)})
