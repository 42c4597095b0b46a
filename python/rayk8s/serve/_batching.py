"""@serve.batch: callers pass one item each; the decorated function gets a
list of them and returns (or, as a generator, yields) one result per caller.

Semantics follow https://docs.ray.io/en/latest/serve/advanced-guides/dyn-req-batch.html:
a batch runs when it holds max_batch_size items (or batch_size_fn says it
is that big) or batch_wait_timeout_s after its first item arrived; at most
max_concurrent_batches run at once; an exception the function raises fails
every caller of that batch, an exception it returns in a caller's place
fails only that caller."""

import asyncio
import functools
import inspect
import logging
import time

_log = logging.getLogger("rayk8s.serve")


class MonotonicClock:
    """The real clock; tests inject one they advance by hand."""

    def now(self):
        return time.monotonic()

    async def sleep(self, seconds):
        await asyncio.sleep(seconds)


def _check_settings(max_batch_size, batch_wait_timeout_s, max_concurrent_batches, batch_size_fn):
    if not isinstance(max_batch_size, int) or isinstance(max_batch_size, bool) or max_batch_size < 1:
        raise ValueError(f"max_batch_size must be an integer >= 1, got {max_batch_size!r}")
    if isinstance(batch_wait_timeout_s, bool) or not isinstance(batch_wait_timeout_s, (int, float)) or batch_wait_timeout_s < 0:
        raise ValueError(f"batch_wait_timeout_s must be a number >= 0, got {batch_wait_timeout_s!r}")
    if not isinstance(max_concurrent_batches, int) or isinstance(max_concurrent_batches, bool) or max_concurrent_batches < 1:
        raise ValueError(f"max_concurrent_batches must be an integer >= 1, got {max_concurrent_batches!r}")
    if batch_size_fn is not None and not callable(batch_size_fn):
        raise ValueError(f"batch_size_fn must be callable, got {batch_size_fn!r}")


class _Settings:
    def __init__(self, max_batch_size, batch_wait_timeout_s, max_concurrent_batches, batch_size_fn):
        self.max_batch_size = max_batch_size
        self.batch_wait_timeout_s = batch_wait_timeout_s
        self.max_concurrent_batches = max_concurrent_batches
        self.batch_size_fn = batch_size_fn


class _Request:
    """One caller's item; results come back through future (plain
    functions) or queue (generators)."""

    __slots__ = ("args", "kwargs", "future", "queue")

    def __init__(self, args, kwargs, streaming):
        self.args = args
        self.kwargs = kwargs
        loop = asyncio.get_running_loop()
        self.future = None if streaming else loop.create_future()
        self.queue = asyncio.Queue() if streaming else None


_END = object()


class BatchQueue:
    """The queue of one batched function (per instance for methods)."""

    def __init__(self, func, settings, clock, streaming):
        self.func = func
        self.settings = settings
        self.clock = clock
        self.streaming = streaming
        self.pending = []
        self.arrived = asyncio.Event()
        self.running = 0
        self.slot_free = asyncio.Event()
        self.slot_free.set()
        self.tasks = set()
        self.loop_task = asyncio.ensure_future(self._loop())

    def size(self, requests):
        fn = self.settings.batch_size_fn
        if fn is None:
            return len(requests)
        return fn([_single(r) for r in requests])

    def put(self, args, kwargs):
        req = _Request(args, kwargs, self.streaming)
        self.pending.append(req)
        self.arrived.set()
        return req

    async def _wait_item(self, timeout):
        """Wait until an item arrives or timeout (None: forever) passes;
        True when one arrived."""
        self.arrived.clear()
        if timeout is None:
            await self.arrived.wait()
            return True
        if timeout <= 0:
            return False
        waiter = asyncio.ensure_future(self.arrived.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
        return waiter.done() and not waiter.cancelled()

    async def _loop(self):
        while True:
            # A slot first: requests keep queueing while the batches in
            # flight run, so the next batch starts out full.
            while self.running >= self.settings.max_concurrent_batches:
                self.slot_free.clear()
                await self.slot_free.wait()
            while not self.pending:
                await self._wait_item(None)
            batch = self._take_batch_ready()
            if batch is None:
                start = self.clock.now()
                while True:
                    batch = self._take_batch_ready()
                    if batch is not None:
                        break
                    remaining = self.settings.batch_wait_timeout_s - (self.clock.now() - start)
                    if remaining <= 0 or not await self._wait_item(remaining):
                        batch = self._take_batch(force=True)
                        break
            if not batch:
                continue
            self.running += 1
            task = asyncio.ensure_future(self._run(batch))
            self.tasks.add(task)
            task.add_done_callback(self._batch_done)

    def _batch_done(self, task):
        self.tasks.discard(task)
        self.running -= 1
        self.slot_free.set()

    def _take_batch_ready(self):
        """A full batch if the queue holds one, else None."""
        return self._take_batch(force=False)

    def _take_batch(self, force):
        """The longest prefix of the queue that fits max_batch_size. Not
        forced, it is returned only when it is full (the next item would not
        fit, or it reached the limit). An item too big on its own fails."""
        limit = self.settings.max_batch_size
        batch = []
        while self.pending:
            head = self.pending[0]
            if self.settings.batch_size_fn is not None and not batch:
                alone = self.size([head])
                if alone > limit:
                    self.pending.pop(0)
                    _fail(head, RuntimeError(f"Size of item ({alone}) exceeds max_batch_size ({limit})."))
                    continue
            if self.size(batch + [head]) > limit:
                return batch
            batch.append(self.pending.pop(0))
            if self.size(batch) >= limit:
                return batch
        if force:
            return batch
        # Not full yet: put the items back in order.
        self.pending[0:0] = batch
        return None

    async def _run(self, batch):
        args, kwargs = _flatten(batch)
        try:
            if self.streaming:
                await self._run_generator(batch, args, kwargs)
                return
            if inspect.iscoroutinefunction(self.func):
                results = await self.func(*args, **kwargs)
            else:
                results = await asyncio.get_running_loop().run_in_executor(None, functools.partial(self.func, *args, **kwargs))
            _check_results(results, len(batch))
        except Exception as e:  # noqa: BLE001 - the function's failure is every caller's
            for req in batch:
                _fail(req, e)
            return
        for req, result in zip(batch, results):
            if isinstance(result, BaseException):
                _fail(req, result)
            elif not req.future.done():
                req.future.set_result(result)

    async def _run_generator(self, batch, args, kwargs):
        gen = self.func(*args, **kwargs)
        live = [True] * len(batch)
        try:
            async for results in _aiter(gen):
                _check_results(results, len(batch))
                for i, (req, result) in enumerate(zip(batch, results)):
                    if not live[i]:
                        continue
                    if result is StopIteration or isinstance(result, StopIteration):
                        live[i] = False
                        req.queue.put_nowait(_END)
                    elif isinstance(result, BaseException):
                        live[i] = False
                        _fail(req, result)
                    else:
                        req.queue.put_nowait(result)
        except Exception as e:  # noqa: BLE001
            for i, req in enumerate(batch):
                if live[i]:
                    live[i] = False
                    _fail(req, e)
        for i, req in enumerate(batch):
            if live[i]:
                req.queue.put_nowait(_END)


def _single(req):
    """What batch_size_fn sees of one request: its item."""
    if len(req.args) == 1 and not req.kwargs:
        return req.args[0]
    return (req.args, req.kwargs)


def _flatten(batch):
    """One list per argument: a single positional argument becomes one
    list of items, as in Ray; more arguments become a list each."""
    n = len(batch[0].args)
    keys = sorted(batch[0].kwargs)
    for req in batch:
        if len(req.args) != n or sorted(req.kwargs) != keys:
            raise TypeError("Every call to a batched function must pass the same arguments")
    args = [[req.args[i] for req in batch] for i in range(n)]
    kwargs = {k: [req.kwargs[k] for req in batch] for k in keys}
    return args, kwargs


def _check_results(results, n):
    if not isinstance(results, (list, tuple)):
        raise TypeError(f"A batched function must return a list of {n} results, got {type(results).__name__}")
    if len(results) != n:
        raise ValueError(f"The batched function returned {len(results)} results for a batch of {n}; it must return one per item")


def _fail(req, exc):
    if req.future is not None:
        if not req.future.done():
            req.future.set_exception(exc)
    else:
        req.queue.put_nowait(_Failure(exc))


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


async def _aiter(gen):
    if inspect.isasyncgen(gen):
        async for x in gen:
            yield x
        return
    loop = asyncio.get_running_loop()
    done = object()
    while True:
        x = await loop.run_in_executor(None, next, gen, done)
        if x is done:
            return
        yield x


class _Batcher:
    """The decorated function's state: settings and its queues."""

    def __init__(self, func, settings, clock):
        self.func = func
        self.settings = settings
        self.clock = clock
        self.streaming = inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func)
        self.is_method = _takes_self(func)
        self.queues = {}
        self.warned = False

    def queue(self, owner):
        key = id(owner) if owner is not None else None
        q = self.queues.get(key)
        if q is None or q.loop_task.get_loop() is not asyncio.get_running_loop():
            func = self.func if owner is None else functools.partial(self.func, owner)
            if not inspect.iscoroutinefunction(self.func):
                func = _keep_kind(func, self.func)
            q = BatchQueue(func, self.settings, self.clock, self.streaming)
            self.queues[key] = q
            self.warn_if_unfillable()
        return q

    def warn_if_unfillable(self):
        from rayk8s.serve import _context

        rt = _context._runtime
        limit = getattr(rt, "max_ongoing", None)
        if self.warned or limit is None:
            return
        if self.settings.max_batch_size > limit:
            self.warned = True
            _log.warning(
                "max_batch_size (%d) of %s is larger than max_ongoing_requests (%d): a batch can never fill, "
                "so each one waits batch_wait_timeout_s; raise max_ongoing_requests or lower max_batch_size",
                self.settings.max_batch_size,
                getattr(self.func, "__qualname__", self.func),
                limit,
            )


def _keep_kind(partial, func):
    """A partial of func that inspect still sees as a generator function
    when func is one (the queue checks the kind of what it calls)."""
    if inspect.isgeneratorfunction(func):

        def gen(*a, **k):
            return partial(*a, **k)

        return gen
    return partial


def _takes_self(func):
    params = list(inspect.signature(func).parameters)
    return bool(params) and params[0] == "self"


def batch(_func=None, *, max_batch_size=10, batch_wait_timeout_s=0.01, max_concurrent_batches=1, batch_size_fn=None, _clock=None):
    """Make a function or method that takes a list of items into one that
    takes a single item and is batched with other callers'."""
    _check_settings(max_batch_size, batch_wait_timeout_s, max_concurrent_batches, batch_size_fn)
    settings = _Settings(max_batch_size, batch_wait_timeout_s, max_concurrent_batches, batch_size_fn)
    clock = _clock or MonotonicClock()

    def decorate(func):
        b = _Batcher(func, settings, clock)

        def split(args):
            if b.is_method:
                return args[0], args[1:]
            return None, args

        if b.streaming:

            async def wrapper(*args, **kwargs):
                owner, rest = split(args)
                req = b.queue(owner).put(rest, kwargs)
                while True:
                    item = await req.queue.get()
                    if item is _END:
                        return
                    if isinstance(item, _Failure):
                        raise item.exc
                    yield item

        elif inspect.iscoroutinefunction(func):

            async def wrapper(*args, **kwargs):
                owner, rest = split(args)
                return await b.queue(owner).put(rest, kwargs).future

        else:

            def wrapper(*args, **kwargs):
                # A plain method runs on a worker thread of the replica;
                # its batch is formed on the replica's event loop.
                from rayk8s.serve import _context

                try:
                    asyncio.get_running_loop()
                    on_loop = True
                except RuntimeError:
                    on_loop = False
                if on_loop:
                    raise RuntimeError("A plain (non-async) batched function cannot be called from an event loop; make it async def")
                loop = getattr(_context._runtime, "loop", None)
                if loop is None:
                    raise RuntimeError("A plain batched function needs a running Serve replica")
                owner, rest = split(args)

                async def submit():
                    return await b.queue(owner).put(rest, kwargs).future

                return asyncio.run_coroutine_threadsafe(submit(), loop).result()

        functools.update_wrapper(wrapper, func)
        wrapper._batcher = b
        wrapper.set_max_batch_size = lambda n: _set(settings, "max_batch_size", n)
        wrapper.set_batch_wait_timeout_s = lambda s: _set(settings, "batch_wait_timeout_s", s)
        wrapper._get_max_batch_size = lambda: settings.max_batch_size
        wrapper._get_batch_wait_timeout_s = lambda: settings.batch_wait_timeout_s
        return wrapper

    if _func is not None:
        return decorate(_func)
    return decorate


def _set(settings, name, value):
    kwargs = {
        "max_batch_size": settings.max_batch_size,
        "batch_wait_timeout_s": settings.batch_wait_timeout_s,
        "max_concurrent_batches": settings.max_concurrent_batches,
        "batch_size_fn": settings.batch_size_fn,
    }
    kwargs[name] = value
    _check_settings(**kwargs)
    setattr(settings, name, value)
