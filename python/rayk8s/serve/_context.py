"""What a replica process knows about itself, and DeploymentHandles: calls
to other deployments, routed by the node agent exactly like HTTP requests."""

import asyncio
import concurrent.futures
import json
import pickle
import threading
import uuid

from rayk8s.serve import _wire
from rayk8s.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    GetTimeoutError,
    RayServeException,
    RayTaskError,
    RequestCancelledError,
)

# Set once by the replica runtime of this process (there is one replica per
# process, as in Ray where each replica is an actor).
_runtime = None
_runtime_lock = threading.Lock()


def _set_runtime(runtime):
    global _runtime
    with _runtime_lock:
        _runtime = runtime


def _get_runtime():
    if _runtime is None:
        raise RayServeException("Deployment handles work inside Serve replicas, or in a driver after serve.run() or serve.start().")
    return _runtime


class ReplicaContext:
    """serve.get_replica_context(): which replica this code runs in."""

    def __init__(self, app_name, deployment, replica_id, servable_object):
        self.app_name = app_name
        self.deployment = deployment
        self.replica_id = replica_id
        self.servable_object = servable_object

    @property
    def replica_tag(self):
        return self.replica_id


def get_replica_context():
    rt = _get_runtime()
    return ReplicaContext(rt.app_name, rt.deployment_name, rt.replica_id, rt.instance)


class DeploymentResponse:
    """The result of handle.remote(): await it, or call .result()."""

    def __init__(self, future, loop):
        self._future = future
        self._loop = loop

    def __await__(self):
        return asyncio.wrap_future(self._future).__await__()

    def result(self, timeout_s=None):
        """Block until the call finishes; not allowed on the replica's event
        loop (it would deadlock), as in Ray."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("Sync methods should not be called from within an `asyncio` event loop. Use `await response` instead.")
        try:
            return self._future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError as e:
            raise GetTimeoutError(f"Did not get a result within {timeout_s}s.") from e
        except concurrent.futures.CancelledError as e:
            raise RequestCancelledError("The call was cancelled.") from e

    def cancel(self):
        self._future.cancel()

    def cancelled(self):
        return self._future.cancelled()

    def done(self):
        return self._future.done()


class DeploymentResponseGenerator:
    """The result of handle.options(stream=True).remote(): the items the
    called method yields, as they come — `async for` on the replica's event
    loop, `for` from other threads. Closing it (or abandoning an `async
    for`) cancels the call, and the called generator stops."""

    def __init__(self, agen, loop):
        self._agen = agen
        self._loop = loop

    def __aiter__(self):
        return self

    async def __anext__(self):
        if asyncio.get_running_loop() is self._loop:
            return await self._agen.__anext__()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._agen.__anext__(), self._loop))

    def __iter__(self):
        return self

    def __next__(self):
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("Sync iteration of a streaming response is not allowed on the replica's event loop; use `async for`.")
        try:
            return asyncio.run_coroutine_threadsafe(self._agen.__anext__(), self._loop).result()
        except StopAsyncIteration:
            raise StopIteration from None

    async def aclose(self):
        if asyncio.get_running_loop() is self._loop:
            await self._agen.aclose()
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._agen.aclose(), self._loop))

    def cancel(self):
        """Stop the call (the called generator is cancelled)."""
        asyncio.run_coroutine_threadsafe(self._agen.aclose(), self._loop)


class DeploymentHandle:
    """A handle to a deployment of an application (its ingress when no
    deployment is named)."""

    def __init__(self, deployment_name, app_name=None, method_name="__call__", multiplexed_model_id="", stream=False):
        self.deployment_name = deployment_name
        self.app_name = app_name
        self.method_name = method_name
        self.multiplexed_model_id = multiplexed_model_id
        self.stream = stream

    def options(self, *, method_name=None, multiplexed_model_id=None, stream=None, use_new_handle_api=None, **unsupported):
        """A copy of this handle with the given options. Ray's other
        options (its routing hints, the removed legacy handle API) are
        refused by name rather than accepted and left without effect."""
        if unsupported:
            names = ", ".join(sorted(unsupported))
            raise TypeError(f"DeploymentHandle.options() does not support {names} on rayk8s; it takes method_name, multiplexed_model_id and stream")
        if use_new_handle_api is not None and use_new_handle_api is not True:
            raise ValueError(f"DeploymentHandle.options(use_new_handle_api={use_new_handle_api!r}): only True is accepted; the legacy RayServeHandle API was removed in Ray 2.10 and rayk8s does not have it, so drop the option")
        return DeploymentHandle(
            self.deployment_name,
            self.app_name,
            self.method_name if method_name is None else method_name,
            self.multiplexed_model_id if multiplexed_model_id is None else multiplexed_model_id,
            self.stream if stream is None else stream,
        )

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self.options(method_name=name)

    def remote(self, *args, **kwargs):
        rt = _get_runtime()
        if hasattr(rt, "remote"):
            # A driver's runtime (ray.serve's serve.run) routes calls itself.
            return rt.remote(self, args, kwargs)
        if self.stream:
            return DeploymentResponseGenerator(_call_stream(rt, self, args, kwargs), rt.loop)
        future = asyncio.run_coroutine_threadsafe(_call(rt, self, args, kwargs), rt.loop)
        return DeploymentResponse(future, rt.loop)

    def __reduce__(self):
        return (DeploymentHandle, (self.deployment_name, self.app_name, self.method_name, self.multiplexed_model_id, self.stream))

    def __repr__(self):
        return f"DeploymentHandle(deployment={self.deployment_name!r}, app={self.app_name!r})"


def get_app_handle(name):
    """A handle to application name's ingress deployment."""
    return DeploymentHandle("", name)


def get_deployment_handle(deployment_name, app_name=None):
    """A handle to a deployment; app_name defaults to the current one."""
    if app_name is None:
        app_name = _get_runtime().app_name
    return DeploymentHandle(deployment_name, app_name)


async def _resolve(value):
    """Arguments with every DeploymentResponse replaced by its result, so
    responses can be passed on to other deployments."""
    if isinstance(value, DeploymentResponse):
        return await value
    if isinstance(value, list):
        return [await _resolve(v) for v in value]
    if isinstance(value, tuple):
        return tuple([await _resolve(v) for v in value])
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    return value


_ERRORS = {
    _wire.ERR_BACKPRESSURE: BackPressureError,
    _wire.ERR_UNAVAILABLE: DeploymentUnavailableError,
    _wire.ERR_NOT_FOUND: DeploymentUnavailableError,
    _wire.ERR_CANCELLED: RequestCancelledError,
    _wire.ERR_TIMEOUT: TimeoutError,
}


async def _call(rt, handle, args, kwargs):
    app = handle.app_name if handle.app_name is not None else rt.app_name
    args = await _resolve(args)
    kwargs = await _resolve(kwargs)
    payload = pickle.dumps((args, kwargs))
    meta = {
        "kind": _wire.KIND_HANDLE,
        "request_id": str(uuid.uuid4()),
        "app": app,
        "deployment": handle.deployment_name,
        "method": handle.method_name,
        "encoding": "pickle",
        "multiplexed_model_id": handle.multiplexed_model_id,
    }
    stream = await rt.open_stream()
    frames = [(_wire.OPEN, _wire.dumps(meta))] + [(_wire.DATA, c) for c in _wire.chunks(payload)] + [(_wire.END, b"")]
    head, body = None, []
    try:
        stream.send(*frames)
        while True:
            ftype, p = await stream.recv()
            if ftype == _wire.HEAD:
                head = json.loads(p)
            elif ftype == _wire.DATA:
                body.append(p)
            elif ftype == _wire.END:
                break
            elif ftype == _wire.ERROR:
                err = json.loads(p)
                raise _ERRORS.get(err.get("kind"), RayTaskError)(err.get("message", ""))
    except asyncio.CancelledError:
        try:
            stream.send((_wire.CANCEL, b""))
        except _wire.ConnectionClosed:
            pass
        raise
    except _wire.ConnectionClosed as e:
        raise DeploymentUnavailableError("The connection to the node agent closed during the call.") from e
    finally:
        stream.close()
    return decode_result(head or {}, b"".join(body))


async def _call_stream(rt, handle, args, kwargs):
    """A streamed handle call: yields each item the called method yields,
    returning flow-control credit for each one consumed."""
    app = handle.app_name if handle.app_name is not None else rt.app_name
    args = await _resolve(args)
    kwargs = await _resolve(kwargs)
    payload = pickle.dumps((args, kwargs))
    meta = {
        "kind": _wire.KIND_HANDLE,
        "request_id": str(uuid.uuid4()),
        "app": app,
        "deployment": handle.deployment_name,
        "method": handle.method_name,
        "encoding": "pickle",
        "multiplexed_model_id": handle.multiplexed_model_id,
        "stream": True,
        "window": _wire.DEFAULT_WINDOW,
    }
    stream = await rt.open_stream()
    frames = [(_wire.OPEN, _wire.dumps(meta))] + [(_wire.DATA, c) for c in _wire.chunks(payload)] + [(_wire.END, b"")]
    finished = False
    try:
        stream.send(*frames)
        head = None
        while True:
            ftype, p = await stream.recv()
            if ftype == _wire.HEAD:
                head = json.loads(p)
                headers = {k.lower(): v for k, v in head.get("headers") or []}
                if headers.get("x-serve-encoding") != "pickle-stream":
                    # A whole (failed) answer, e.g. the method raised
                    # before it produced a generator.
                    body = []
                    while True:
                        ftype, p = await stream.recv()
                        if ftype == _wire.DATA:
                            body.append(p)
                        elif ftype == _wire.END:
                            break
                        elif ftype == _wire.ERROR:
                            err = json.loads(p)
                            raise _ERRORS.get(err.get("kind"), RayTaskError)(err.get("message", ""))
                    finished = True
                    result = decode_result(head, b"".join(body))
                    raise TypeError(f"Method '{handle.method_name}' returned {type(result).__name__}, not a generator; call it without stream=True")
            elif ftype == _wire.DATA:
                tag, value = pickle.loads(p)
                try:
                    stream.send((_wire.CREDIT, _wire.credit(len(p))))
                except _wire.ConnectionClosed:
                    pass
                if tag == "err":
                    exc, tb = value
                    finished = True
                    if isinstance(exc, BaseException):
                        raise exc from RayTaskError(tb)
                    raise RayTaskError(tb)
                yield value
            elif ftype == _wire.END:
                finished = True
                return
            elif ftype == _wire.ERROR:
                finished = True
                err = json.loads(p)
                raise _ERRORS.get(err.get("kind"), RayTaskError)(err.get("message", ""))
    except _wire.ConnectionClosed as e:
        finished = True
        raise DeploymentUnavailableError("The connection to the node agent closed during the call.") from e
    finally:
        if not finished:
            # Abandoned (closed or cancelled) before its end: cancel it.
            try:
                stream.send((_wire.CANCEL, b""))
            except _wire.ConnectionClosed:
                pass
        stream.close()


def decode_result(head, data):
    headers = {k.lower(): v for k, v in head.get("headers") or []}
    if headers.get("x-serve-exception") == "pickle":
        try:
            exc, tb = pickle.loads(data)
        except Exception:  # noqa: BLE001 - the exception itself did not unpickle
            raise RayTaskError(data.decode("utf-8", errors="replace")) from None
        if isinstance(exc, BaseException):
            raise exc from RayTaskError(tb)
        raise RayTaskError(tb)
    if headers.get("x-serve-encoding") == "pickle":
        return pickle.loads(data)
    if head.get("status", 200) >= 400:
        raise RayTaskError(data.decode("utf-8", errors="replace"))
    if headers.get("content-type", "").startswith("application/json"):
        return json.loads(data or b"null")
    return data
