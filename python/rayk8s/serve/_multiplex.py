"""@serve.multiplexed and serve.get_multiplexed_model_id (see
https://docs.ray.io/en/latest/serve/model-multiplexing.html): a replica
loads models on demand with the decorated loader and keeps at most
max_num_models_per_replica of them, evicting the least recently used (its
__del__ runs, awaited when it is a coroutine). The replica reports the IDs
it holds so routers send each model's requests where it is loaded."""

import asyncio
import collections
import contextvars
import functools
import inspect
import logging

_log = logging.getLogger("rayk8s.serve")

# The model ID of the request being handled (the serve_multiplexed_model_id
# header, or handle.options(multiplexed_model_id=...)).
_model_id = contextvars.ContextVar("rayk8s_serve_multiplexed_model_id", default="")


def get_multiplexed_model_id():
    """The multiplexed model ID of the current request ("" when none)."""
    return _model_id.get()


def set_request_model_id(model_id):
    return _model_id.set(model_id or "")


class ModelCache:
    """One loader's models, least recently used first."""

    def __init__(self, load, capacity, on_change=None):
        self.load = load
        self.capacity = capacity
        self.models = collections.OrderedDict()
        self.loading = {}
        self.on_change = on_change

    def ids(self):
        return list(self.models)

    async def get(self, model_id):
        if not isinstance(model_id, str) or not model_id:
            raise ValueError(f"The multiplexed model ID must be a non-empty string, got {model_id!r}")
        if model_id in self.models:
            self.models.move_to_end(model_id)
            return self.models[model_id]
        pending = self.loading.get(model_id)
        if pending is not None:
            # Concurrent requests for a model being loaded share the load.
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self.loading[model_id] = fut
        try:
            while len(self.models) >= self.capacity:
                await self._evict()
            model = await self.load(model_id)
        except BaseException as e:
            self.loading.pop(model_id, None)
            if not fut.done():
                fut.set_exception(e)
                fut.exception()  # retrieved: only the waiters care
            raise
        self.loading.pop(model_id, None)
        self.models[model_id] = model
        fut.set_result(model)
        self._changed()
        return model

    async def _evict(self):
        model_id, model = self.models.popitem(last=False)
        self._changed()
        _log.info("Unloading model %s (max_num_models_per_replica=%d)", model_id, self.capacity)
        destructor = getattr(type(model), "__del__", None)
        if destructor is None:
            return
        try:
            result = destructor(model)
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001 - a failing unload must not fail the request
            _log.exception("Unloading model %s failed", model_id)

    def _changed(self):
        if self.on_change is not None:
            self.on_change()


def multiplexed(func=None, *, max_num_models_per_replica=3):
    """Make an async loader `(self, model_id) -> model` (or a function of
    model_id) cache its models per replica."""
    if isinstance(max_num_models_per_replica, bool) or not isinstance(max_num_models_per_replica, int) or (
        max_num_models_per_replica < 1 and max_num_models_per_replica != -1
    ):
        raise ValueError(f"max_num_models_per_replica must be a positive integer or -1 (no limit), got {max_num_models_per_replica!r}")
    capacity = float("inf") if max_num_models_per_replica == -1 else max_num_models_per_replica

    def decorate(fn):
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@serve.multiplexed needs an async def loader; {fn.__qualname__} is not a coroutine function")
        params = list(inspect.signature(fn).parameters)
        is_method = bool(params) and params[0] == "self"
        caches = {}

        def cache_for(owner):
            key = id(owner) if owner is not None else None
            c = caches.get(key)
            if c is None:
                load = functools.partial(fn, owner) if is_method else fn
                c = ModelCache(load, capacity)
                caches[key] = c
                _register(c)
            return c

        @functools.wraps(fn)
        async def wrapper(*args):
            if is_method:
                if len(args) != 2:
                    raise TypeError(f"{fn.__qualname__} takes the model ID as its only argument")
                return await cache_for(args[0]).get(args[1])
            if len(args) != 1:
                raise TypeError(f"{fn.__qualname__} takes the model ID as its only argument")
            return await cache_for(None).get(args[0])

        wrapper._multiplexed = True
        return wrapper

    if func is not None:
        return decorate(func)
    return decorate


def _register(cache):
    """Make the replica this runs in report cache's models."""
    from rayk8s.serve import _context

    caches = getattr(_context._runtime, "model_caches", None)
    if caches is not None:
        caches.append(cache)


def loaded_model_ids(caches):
    """The model IDs held by caches, or None when there are none (the
    replica multiplexes no models)."""
    if not caches:
        return None
    out = []
    for c in caches:
        out.extend(c.ids())
    return out
