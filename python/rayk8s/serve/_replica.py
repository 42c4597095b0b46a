"""A Python replica process: `python3 -m rayk8s.serve._replica`, started by
the node agent with the replica's identity and config in its environment.

It imports the application, constructs its deployment (handles injected for
bound deployments), calls reconfigure(user_config), then serves calls on
its Unix socket: at most max_ongoing_requests at once (beyond that it
rejects, and the caller's router goes elsewhere), async handlers on the
event loop, sync ones on a thread pool of max_ongoing_requests threads.
SIGTERM drains it: new calls are rejected, ongoing ones finish."""

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import json
import math
import os
import pickle
import signal
import sys
import traceback

from rayk8s.serve import _api, _asgi, _context, _grpc, _http, _multiplex, _starlette, _wire

ENV_REPLICA_ID = "RAYK8S_SERVE_REPLICA_ID"
ENV_APP = "RAYK8S_SERVE_APP"
ENV_DEPLOYMENT = "RAYK8S_SERVE_DEPLOYMENT"
ENV_IMPORT_PATH = "RAYK8S_SERVE_IMPORT_PATH"
ENV_APP_ARGS = "RAYK8S_SERVE_APP_ARGS"
ENV_CONFIG = "RAYK8S_SERVE_REPLICA_CONFIG"
ENV_PY_MODULES = "RAYK8S_SERVE_PY_MODULES"

_CONTROL_KINDS = frozenset((_wire.KIND_HEALTH, _wire.KIND_RECONFIGURE, _wire.KIND_STATS))
_CALL_TASK_NAME = "serve call"


def setup_path(environ):
    """The working directory and py_modules come first on sys.path."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    mods = environ.get(ENV_PY_MODULES, "")
    for m in filter(None, mods.split("\x1f")):
        parent = os.path.dirname(os.path.abspath(m)) if os.path.isdir(m) and os.path.exists(os.path.join(m, "__init__.py")) else m
        if parent not in sys.path:
            sys.path.insert(0, parent)


async def maybe_await(value):
    if inspect.isawaitable(value):
        return await value
    return value


class _Call:
    """An admitted call: its stream, its OPEN's metadata with the kind and
    multiplexed model ID read at admission, the task serving it, and what
    its CANCEL and CREDIT frames change (on_control, which the
    connection's read loop calls)."""

    __slots__ = ("stream", "meta", "kind", "model_id", "task", "cancelled", "head_sent", "_window")

    def __init__(self, stream, meta, kind, model_id):
        self.stream = stream
        self.meta = meta
        self.kind = kind
        self.model_id = model_id
        self.task = None
        self.cancelled = False
        self.head_sent = False
        self._window = None

    @property
    def window(self):
        """The caller's flow-control window, made on first use: only
        streamed answers and CREDIT frames need it."""
        w = self._window
        if w is None:
            w = self._window = _wire.Window(self.meta.get("window") or 0)
        return w

    def on_control(self, ftype, payload):
        if ftype == _wire.CREDIT:
            self.window.give(_wire.decode_credit(payload))
        elif not self.cancelled:
            self.cancelled = True
            self.task.cancel()


class Replica:
    def __init__(self, replica_id, app_name, deployment_name, instance, max_ongoing, wait_loop_s, loop):
        self.replica_id = replica_id
        self.app_name = app_name
        self.deployment_name = deployment_name
        self.instance = instance
        self.max_ongoing = max_ongoing
        self.wait_loop_s = wait_loop_s
        self.loop = loop
        self.ongoing = 0
        self.draining = False
        self.idle = asyncio.Event()
        self.idle.set()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_ongoing, thread_name_prefix="serve-sync")
        self.conns = []
        self.conn_ready = asyncio.Event()
        self.tasks = set()
        self.max_observed = 0
        # The @serve.multiplexed caches of the instance, whose models every
        # ACCEPT and END reports.
        self.model_caches = []
        # The @serve.ingress app's lifespan, when there is one.
        self.lifespan = None
        self.async_fns = {}
        self.starlette_fns = {}
        self.heads = {}
        self.plan = None
        self.accepts = {}
        self.bytes_head = _wire.dumps({"status": 200, "headers": [["content-type", "application/octet-stream"]]})

    # ---- connections from the node agent ----

    def protocol(self):
        """The protocol of a connection from the agent, for
        loop.create_unix_server: frames are dispatched as the transport
        reads them."""
        return _wire.ConnProtocol(dialer=False, on_open=self.on_stream, on_made=self.add_conn, on_lost=self.remove_conn)

    async def on_connect(self, reader, writer):
        """The same over asyncio streams (asyncio.start_unix_server)."""
        conn = _wire.Conn(reader, writer, dialer=False, on_open=self.on_stream)
        self.add_conn(conn)
        try:
            await conn.done
        except asyncio.CancelledError:
            conn.close()
        self.remove_conn(conn)

    def add_conn(self, conn):
        self.conns.append(conn)
        self.conn_ready.set()

    def remove_conn(self, conn):
        if conn in self.conns:
            self.conns.remove(conn)
        if not self.conns:
            self.conn_ready.clear()

    async def open_stream(self):
        """A stream to the agent for a handle call."""
        for _ in range(2):
            for conn in reversed(self.conns):
                if not conn.closed:
                    return conn.open()
            try:
                await asyncio.wait_for(self.conn_ready.wait(), timeout=30)
            except asyncio.TimeoutError:
                break
        raise _context.DeploymentUnavailableError("This replica has no connection to its node agent.")

    def on_stream(self, stream):
        """A call opened by the agent, straight from the connection's read
        loop with its OPEN frame queued. Admission happens here, before
        the next frame is read: a rejected call costs no task, and an
        accepted one counts against max_ongoing_requests at once."""
        try:
            meta, kind, model_id = _wire.open_call(stream.frames.popleft()[1])
            if kind in _CONTROL_KINDS:
                self.spawn(self.serve_control(stream, kind))
                return
            if self.draining or self.ongoing >= self.max_ongoing:
                stream.send_frame(_wire.ACCEPT, self.accept_payload(False))
                stream.close()
                return
            self.ongoing += 1
            if self.ongoing > self.max_observed:
                self.max_observed = self.ongoing
            if self.ongoing == 1:
                self.idle.clear()
            try:
                stream.send_frame(_wire.ACCEPT, self.accept_payload(True))
            except _wire.ConnectionClosed:
                self.release()
                raise
        except _wire.ConnectionClosed:
            stream.close()
            return
        except Exception:  # noqa: BLE001 - a malformed OPEN must not end the connection
            traceback.print_exc()
            stream.close()
            return
        call = _Call(stream, meta, kind, model_id)
        loop = self.loop
        if loop.get_task_factory() is None:
            # What loop.create_task does then, but with a name given: a
            # task without one has "Task-<n>" formatted for it, a few per
            # cent of a no-op call.
            task = asyncio.Task(self.serve_call(call), loop=loop, name=_CALL_TASK_NAME)
        else:
            task = loop.create_task(self.serve_call(call))
        # The set holds the task while it runs (the loop keeps only weak
        # references); serve_call takes it out on its way out.
        call.task = task
        self.tasks.add(task)

    def spawn(self, coro):
        # As on_stream does for calls, for control streams.
        self.tasks.add(self.loop.create_task(coro))

    # ---- calls ----

    async def serve_control(self, stream, kind):
        try:
            await self.control(stream, kind)
        except (_wire.ConnectionClosed, asyncio.CancelledError):
            pass
        finally:
            stream.close()
            self.tasks.discard(asyncio.current_task())

    async def serve_call(self, call):
        """An admitted call, on its own task. The common HTTP call (a
        bodiless request whose handler answers bytes) is served here
        without further coroutines of ours."""
        stream = call.stream
        try:
            frames = stream.frames
            if len(frames) == 1 and frames[0][0] == _wire.END:
                # The common bodiless call: its END came with the OPEN.
                frames.popleft()
                body = b""
            else:
                body = await self.read_body(stream)
            # From here CANCEL (or the connection failing) cancels this
            # task and CREDIT opens the window, straight from the
            # connection's read loop (Stream.on_control).
            stream.on_control = call.on_control
            if frames or stream.failed:
                # CANCEL, CREDIT or the connection's end came before the
                # call started; a cancelled call does not start.
                while frames:
                    ftype, payload = frames.popleft()
                    if ftype == _wire.CREDIT:
                        call.window.give(_wire.decode_credit(payload))
                    elif ftype == _wire.CANCEL:
                        stream.on_control = None
                        return
                if stream.failed:
                    stream.on_control = None
                    return
            meta = call.meta
            out = None
            try:
                _multiplex.set_request_model_id(call.model_id)
                kind = call.kind
                if kind == _wire.KIND_HANDLE or kind == _wire.KIND_GRPC:
                    await self.invoke(call, body)
                else:
                    plan = self.plan
                    asgi, handler, call_async, wants = plan[1] if plan is not None and plan[0] is self.instance else self.http_plan()
                    if asgi is not None:
                        result = await _asgi.call(asgi, meta, body)
                    else:
                        request = _http.Request(meta, body) if wants is False else _starlette.request_for(handler, meta, body, wants)
                        if call_async:
                            result = await handler(request)
                        else:
                            result = await self.call_user(handler, request)
                    if type(result) is bytes and len(result) <= _wire.CHUNK_SIZE and not self.model_caches:
                        # What a no-op returns: to_http's answer without
                        # asking, in one write of the connection.
                        call.head_sent = True
                        stream.send_answer(self.bytes_head, result)
                    else:
                        await self.answer_http(call, result)
            except asyncio.CancelledError:
                if not call.cancelled:
                    raise
                return
            except Exception:  # noqa: BLE001 - user code may raise anything
                exc, tb = sys.exc_info()[1], traceback.format_exc()
                if call.head_sent:
                    # The answer has started: all that is left is to end
                    # it with the error (the proxy cuts the response).
                    out = [(_wire.ERROR, _wire.dumps({"kind": _wire.ERR_USER, "message": tb}))]
                else:
                    out = self.error_frames(meta, exc, tb)
            finally:
                stream.on_control = None
                if call.cancelled and hasattr(call.task, "uncancel"):
                    # The cancellation is handled here; later awaits of
                    # this task must not see it again.
                    call.task.uncancel()
            if out:
                try:
                    stream.send(*out)
                except _wire.ConnectionClosed:
                    pass
        except (_wire.ConnectionClosed, asyncio.CancelledError):
            pass
        finally:
            self.ongoing -= 1
            if self.ongoing == 0:
                self.idle.set()
            stream.close()
            self.tasks.discard(call.task)

    def release(self):
        self.ongoing -= 1
        if self.ongoing == 0:
            self.idle.set()

    async def read_body(self, stream):
        frames = stream.frames
        if len(frames) == 1 and frames[0][0] == _wire.END:
            # The common bodiless call: its END came with the OPEN.
            frames.popleft()
            return b""
        parts = []
        while True:
            ftype, payload = await stream.recv()
            if ftype == _wire.DATA:
                parts.append(payload)
            elif ftype == _wire.END:
                return b"".join(parts)
            elif ftype == _wire.CANCEL:
                raise asyncio.CancelledError()

    def end_frame(self, grpc_status=None):
        """END, carrying the multiplexed models this replica holds so the
        caller's router learns them, and a gRPC call's status."""
        if grpc_status is None and not self.model_caches:
            return (_wire.END, b"")
        out = {}
        models = _multiplex.loaded_model_ids(self.model_caches)
        if models is not None:
            out["models"] = models
        if grpc_status is not None:
            out["grpc"] = grpc_status
        return (_wire.END, _wire.dumps(out) if out else b"")

    def accept_payload(self, accepted):
        if not self.model_caches:
            # The common answer, without the JSON encoder (same bytes),
            # kept per count of ongoing calls.
            key = self.ongoing if accepted else -1 - self.ongoing
            out = self.accepts.get(key)
            if out is None:
                out = b'{"accepted":%s,"ongoing":%d}' % (b"true" if accepted else b"false", self.ongoing)
                if len(self.accepts) < 1024:
                    self.accepts[key] = out
            return out
        out = {"accepted": accepted, "ongoing": self.ongoing}
        models = _multiplex.loaded_model_ids(self.model_caches)
        if models is not None:
            out["models"] = models
        return _wire.dumps(out)

    def error_frames(self, meta, exc, tb):
        if isinstance(exc, _grpc.MethodNotFound):
            return [(_wire.ERROR, _wire.dumps({"kind": _wire.ERR_NOT_FOUND, "message": str(exc)}))]
        if meta.get("kind") == _wire.KIND_HANDLE and meta.get("encoding") == "pickle":
            try:
                data = pickle.dumps((exc, tb))
            except Exception:  # noqa: BLE001 - unpicklable exception
                data = pickle.dumps((None, tb))
            head = {"status": 500, "headers": [["x-serve-exception", "pickle"]]}
            return [(_wire.HEAD, _wire.dumps(head))] + [(_wire.DATA, c) for c in _wire.chunks(data)] + [(_wire.END, b"")]
        return [(_wire.ERROR, _wire.dumps({"kind": _wire.ERR_USER, "message": tb}))]

    def target(self, name):
        if not inspect.isfunction(self.instance):
            fn = getattr(self.instance, name, None)
            if fn is None:
                raise AttributeError(f"Deployment '{self.deployment_name}' has no method '{name}'")
            return fn
        if name != "__call__":
            raise AttributeError(f"Function deployment '{self.deployment_name}' has no method '{name}'")
        return self.instance

    def is_async(self, fn):
        """Whether calling fn returns a coroutine. Every call asks, so the
        answer is kept per function (the deployment's methods: a bounded
        set); other callables are inspected each time."""
        key = getattr(fn, "__func__", fn)
        out = self.async_fns.get(key) if inspect.isfunction(key) else None
        if out is None:
            out = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))
            if inspect.isfunction(key):
                self.async_fns[key] = out
        return out

    def wants_starlette(self, fn):
        """_starlette.wants_starlette_request, kept per function like is_async."""
        key = getattr(fn, "__func__", fn)
        if not inspect.isfunction(key):
            return None
        out = self.starlette_fns.get(key)
        if out is None:
            out = self.starlette_fns[key] = _starlette.wants_starlette_request(fn)
        return out

    async def call_user(self, fn, *args, **kwargs):
        if self.is_async(fn):
            return await fn(*args, **kwargs)
        ctx = contextvars.copy_context()
        result = await self.loop.run_in_executor(self.pool, functools.partial(ctx.run, fn, *args, **kwargs))
        return await maybe_await(result)

    async def invoke(self, call, body):
        """A handle or gRPC call."""
        stream, meta = call.stream, call.meta
        if meta.get("kind") == _wire.KIND_GRPC:
            await self.invoke_grpc(call, body)
            return
        if meta.get("encoding") == "pickle":
            args, kwargs = pickle.loads(body) if body else ((), {})
        else:
            decoded = json.loads(body or b"{}")
            args, kwargs = decoded.get("args", []), decoded.get("kwargs", {})
        result = await self.call_user(self.target(meta.get("method") or "__call__"), *args, **kwargs)
        if meta.get("stream"):
            await self.stream_items(call, result)
            return
        result = await collect(result)
        head = {"status": 200, "headers": [["x-serve-encoding", "pickle"]]}
        data = pickle.dumps(result)
        call.head_sent = True
        stream.send((_wire.HEAD, _wire.dumps(head)), *[(_wire.DATA, c) for c in _wire.chunks(data)], self.end_frame())

    async def answer_http(self, call, result):
        """The answer to an HTTP call of what its handler returned (but
        the short bytes serve_call sends itself)."""
        stream = call.stream
        if type(result) is bytes:
            head, data = self.bytes_head, result
        elif _http.is_streaming(result):
            await self.stream_http(call, result)
            return
        else:
            status, headers, data = _http.to_http(result)
            head = self.http_head(status, headers)
        call.head_sent = True
        if not data:
            stream.send((_wire.HEAD, head), self.end_frame())
        elif len(data) <= _wire.CHUNK_SIZE:
            stream.send((_wire.HEAD, head), (_wire.DATA, data), self.end_frame())
        else:
            stream.send((_wire.HEAD, head), *[(_wire.DATA, c) for c in _wire.chunks(data)], self.end_frame())

    def http_plan(self):
        """(asgi app, handler, whether the handler is a coroutine function,
        whether it asks for a starlette Request) of HTTP calls, worked out
        once per instance: every call used to look all four up."""
        plan = self.plan
        if plan is not None and plan[0] is self.instance:
            return plan[1]
        asgi = _asgi.app_of(self.instance)
        if asgi is not None:
            out = (asgi, None, False, False)
        else:
            handler = self.target("__call__")
            out = (None, handler, self.is_async(handler), self.wants_starlette(handler))
        self.plan = (self.instance, out)
        return out

    def http_head(self, status, headers):
        """The HEAD payload of an HTTP answer. Most answers are a 200 with
        one content type, whose encodings are kept."""
        if status != 200 or len(headers) != 1:
            return _wire.dumps({"status": status, "headers": [[k, v] for k, v in headers]})
        key = tuple(headers[0])
        out = self.heads.get(key)
        if out is None:
            out = _wire.dumps({"status": 200, "headers": [list(key)]})
            if len(self.heads) < 64:
                self.heads[key] = out
        return out

    async def invoke_grpc(self, call, body):
        """A call from the gRPC proxy: the method named like the RPC gets
        the decoded request message (and grpc_context if it asks for it);
        a generator answers unary-stream calls, one message per item."""
        stream, meta, window = call.stream, call.meta, call.window
        path = meta.get("path") or ""
        handler = _grpc.handlers(meta.get("grpc_servicer_functions")).get(path)
        name = meta.get("method") or ""
        try:
            fn = self.target(name)
        except AttributeError:
            raise _grpc.MethodNotFound(f"Method '{name}' not found in deployment '{self.deployment_name}' of application '{self.app_name}' (called as {path})") from None
        request = body
        if handler is not None and handler.request_deserializer is not None:
            request = handler.request_deserializer(body)
        serialize = (handler.response_serializer if handler is not None else None) or (lambda m: m)
        context = _grpc.RayServegRPCContext(meta.get("headers") or [])
        kwargs = {"grpc_context": context} if _grpc.wants_context(fn) else {}
        result = await self.call_user(fn, request, **kwargs)
        stream.send((_wire.HEAD, _wire.dumps({"status": 200})))
        call.head_sent = True
        if inspect.isgenerator(result) or inspect.isasyncgen(result):
            it = self.iterate(result)
            try:
                async for item in it:
                    await self.send_data(stream, window, _grpc.frame(serialize(item)))
            finally:
                await it.aclose()
        else:
            await self.send_data(stream, window, _grpc.frame(serialize(result)))
        stream.send(self.end_frame(context.end_status()))

    async def send_data(self, stream, window, data):
        """Send one chunk as soon as the caller's window and the connection
        take it."""
        for c in _wire.chunks(data):
            await window.take(len(c))
            stream.send((_wire.DATA, c))
            await stream.drain()

    async def stream_http(self, call, result):
        stream, window = call.stream, call.window
        status, headers, items = _http.stream_head(result)
        stream.send((_wire.HEAD, _wire.dumps({"status": status, "headers": [[k, v] for k, v in headers]})))
        call.head_sent = True
        it = self.iterate(items)
        try:
            async for item in it:
                data = _http.encode_chunk(item)
                if data:
                    await self.send_data(stream, window, data)
        finally:
            await it.aclose()
        stream.send(self.end_frame())

    async def stream_items(self, call, result):
        """A streamed handle call: one DATA frame per item, pickled as
        ("ok", item); an exception of the generator is sent as ("err",
        (exception, traceback)) so the caller raises it where it iterates."""
        stream, window = call.stream, call.window
        stream.send((_wire.HEAD, _wire.dumps({"status": 200, "headers": [["x-serve-encoding", "pickle-stream"]]})))
        call.head_sent = True
        it = self.iterate(result)
        try:
            async for item in it:
                data = pickle.dumps(("ok", item))
                if len(data) > _wire.MAX_PAYLOAD:
                    raise ValueError(f"A streamed item of {len(data)} bytes exceeds the {_wire.MAX_PAYLOAD} byte limit")
                await window.take(len(data))
                stream.send((_wire.DATA, data))
                await stream.drain()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the caller re-raises it
            tb = traceback.format_exc()
            try:
                data = pickle.dumps(("err", (e, tb)))
            except Exception:  # noqa: BLE001 - unpicklable exception
                data = pickle.dumps(("err", (None, tb)))
            stream.send((_wire.DATA, data))
        finally:
            await it.aclose()
        stream.send(self.end_frame())

    async def iterate(self, items):
        """Items of a generator, async generator or iterable; a sync
        generator runs on the thread pool. Cancelling the call closes the
        generator, so its finally blocks run."""
        if inspect.isasyncgen(items) or hasattr(items, "__anext__"):
            # Async generators and async iterators such as a streaming
            # handle call's DeploymentResponseGenerator.
            try:
                async for item in items:
                    yield item
            finally:
                close = getattr(items, "aclose", None)
                if close is not None:
                    try:
                        await close()
                    except Exception:  # noqa: BLE001 - closing a failed generator
                        pass
            return
        if not inspect.isgenerator(items) and not hasattr(items, "__next__"):
            items = iter(items)
        done = object()
        try:
            while True:
                item = await self.loop.run_in_executor(self.pool, next, items, done)
                if item is done:
                    return
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                try:
                    await self.loop.run_in_executor(self.pool, close)
                except ValueError:
                    pass  # still running on its thread after a cancel

    # ---- control ----

    async def control(self, stream, kind):
        # The ACCEPT carries the multiplexed models, so the controller's
        # health checks learn them for the routing table.
        stream.send((_wire.ACCEPT, self.accept_payload(True)))
        body = await self.read_body(stream)
        try:
            answer = b""
            if kind == _wire.KIND_HEALTH:
                check = getattr(self.instance, "check_health", None)
                if check is not None and not inspect.isfunction(self.instance):
                    await self.call_user(check)
            elif kind == _wire.KIND_RECONFIGURE:
                await self.reconfigure(json.loads(body or b"{}"))
            elif kind == _wire.KIND_STATS:
                answer = _wire.dumps({"ongoing": self.ongoing, "max_observed": self.max_observed})
            stream.send((_wire.HEAD, _wire.dumps({"status": 200})), (_wire.DATA, answer), (_wire.END, b""))
        except Exception:  # noqa: BLE001 - user code may raise anything
            stream.send((_wire.ERROR, _wire.dumps({"kind": _wire.ERR_USER, "message": traceback.format_exc()})))

    async def reconfigure(self, cfg):
        new_max = cfg.get("max_ongoing_requests") or self.max_ongoing
        if new_max != self.max_ongoing:
            old, self.pool = self.pool, concurrent.futures.ThreadPoolExecutor(max_workers=new_max, thread_name_prefix="serve-sync")
            old.shutdown(wait=False)
            self.max_ongoing = new_max
        if cfg.get("graceful_shutdown_wait_loop_s") is not None:
            self.wait_loop_s = cfg["graceful_shutdown_wait_loop_s"]
        user_config = cfg.get("user_config")
        fn = getattr(self.instance, "reconfigure", None)
        if user_config is not None and fn is not None and not inspect.isfunction(self.instance):
            await self.call_user(fn, user_config)

    # ---- shutdown ----

    async def drain(self):
        self.draining = True
        await asyncio.sleep(self.wait_loop_s)
        while self.ongoing > 0:
            try:
                await asyncio.wait_for(self.idle.wait(), timeout=max(self.wait_loop_s, 0.05))
            except asyncio.TimeoutError:
                pass
        destructor = getattr(type(self.instance), "__del__", None)
        if destructor is not None:
            try:
                await maybe_await(destructor(self.instance))
            except Exception:  # noqa: BLE001 - a failing destructor must not block exit
                traceback.print_exc()


async def collect(result):
    """A generator's items, collected whole, for callers that did not ask
    for a stream (handle calls without stream=True)."""
    if inspect.isasyncgen(result):
        items = [item async for item in result]
        return join_items(items)
    if inspect.isgenerator(result):
        return join_items(list(result))
    return result


def join_items(items):
    if all(isinstance(i, bytes) for i in items):
        return b"".join(items)
    if all(isinstance(i, str) for i in items):
        return "".join(items)
    return items


def warn_unfillable_batches(instance):
    """Warn at start about batched methods whose max_batch_size exceeds
    max_ongoing_requests (their batches can never fill)."""
    target = instance if inspect.isfunction(instance) else type(instance)
    candidates = [target] if inspect.isfunction(target) else [getattr(target, n, None) for n in dir(target)]
    for fn in candidates:
        batcher = getattr(fn, "_batcher", None)
        if batcher is not None:
            batcher.warn_if_unfillable()


def construct(app, deployment_name, app_name, args_env):
    bound = app.find(deployment_name)
    if bound is None:
        raise LookupError(f"Deployment '{deployment_name}' is not in application '{app_name}'")

    def to_handle(child):
        return _context.DeploymentHandle(child.deployment.name, app_name)

    args = _api.replace_apps(bound.args, to_handle)
    kwargs = _api.replace_apps(bound.kwargs, to_handle)
    target = bound.deployment.func_or_class
    if bound.deployment.is_function:
        return target
    return target(*args, **kwargs)


def thread_budget(cfg, environ):
    """OMP_NUM_THREADS for a replica whose environment does not set it: its
    num_cpus rounded up, at least 1, as Ray sets it for tasks and actors (a
    Serve replica reserves one CPU by default). Numerical libraries size
    their thread pools from it when they load; without it each replica
    would start a thread per core of the node. None when it is set (by the
    pod or runtime_env env_vars): an explicit value wins."""
    if environ.get("OMP_NUM_THREADS"):
        return None
    num_cpus = ((cfg.get("deployment") or {}).get("ray_actor_options") or {}).get("num_cpus")
    if isinstance(num_cpus, (int, float)) and num_cpus > 1:
        return str(math.ceil(num_cpus))
    return "1"


async def amain(environ):
    replica_id = environ[ENV_REPLICA_ID]
    app_name = environ.get(ENV_APP, "")
    deployment_name = environ[ENV_DEPLOYMENT]
    cfg = json.loads(environ.get(ENV_CONFIG) or "{}")
    omp = thread_budget(cfg, environ)
    if omp is not None:
        # Before the application's modules load: they read it once.
        os.environ["OMP_NUM_THREADS"] = omp
    setup_path(environ)
    loop = asyncio.get_running_loop()
    replica = Replica(replica_id, app_name, deployment_name, None, cfg.get("max_ongoing_requests") or 5, cfg.get("graceful_shutdown_wait_loop_s", 2.0), loop)
    _context._set_runtime(replica)

    app = _api.load_application(environ[ENV_IMPORT_PATH], json.loads(environ.get(ENV_APP_ARGS) or "null"))
    replica.instance = construct(app, deployment_name, app_name, environ.get(ENV_APP_ARGS))
    warn_unfillable_batches(replica.instance)
    asgi = _asgi.app_of(replica.instance)
    if asgi is not None:
        _asgi.bind_methods(asgi, replica.instance)
        replica.lifespan = _asgi.Lifespan(asgi)
        await replica.lifespan.startup()
    if cfg.get("user_config") is not None:
        fn = getattr(replica.instance, "reconfigure", None)
        if fn is not None and not inspect.isfunction(replica.instance):
            await replica.call_user(fn, cfg["user_config"])

    path = _wire.socket_path(environ[_wire.SOCKET_DIR_ENV], replica_id)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = await loop.create_unix_server(replica.protocol, path=path)
    print(f"Replica {replica_id} is serving on {path}", flush=True)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    parent = os.getppid()

    async def watch_parent():
        while os.getppid() == parent:
            await asyncio.sleep(1)
        print("The node agent is gone; exiting", flush=True)
        os._exit(1)

    watcher = asyncio.ensure_future(watch_parent())
    await stop.wait()
    watcher.cancel()
    await replica.drain()
    if replica.lifespan is not None:
        await replica.lifespan.shutdown()
    server.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def loop_factory():
    """uvloop's event loop when it is installed (Debian: python3-uvloop),
    else asyncio's. The replica spends much of a call in the loop itself
    (ready queue, handles, selector), which uvloop does in C."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def main():
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(amain(dict(os.environ)))
    except Exception:  # noqa: BLE001 - report constructor failures in the log
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
