"""DeploymentHandles in a driver: each call goes to the relay application
(ray.serve._relay) over the Serve HTTP proxy."""

import asyncio
import pickle
import struct
import threading
import urllib.error
import urllib.request

import cloudpickle

from rayk8s.serve import _context
from rayk8s.serve.exceptions import DeploymentUnavailableError, RayTaskError
from ray.serve import _relay

_LEN = struct.Struct(">I")


class DriverRuntime:
    """The handle runtime of a driver: an event loop on its own thread, as
    a replica has, so DeploymentResponse and generators work unchanged."""

    app_name = "default"

    def __init__(self, relay_url, token):
        self.relay_url = relay_url
        self.token = token
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="serve-driver-handles", daemon=True)
        self.thread.start()

    def remote(self, handle, args, kwargs):
        if handle.stream:
            return _context.DeploymentResponseGenerator(self._stream(handle, args, kwargs), self.loop)
        future = asyncio.run_coroutine_threadsafe(self._call(handle, args, kwargs), self.loop)
        return _context.DeploymentResponse(future, self.loop)

    async def _body(self, handle, args, kwargs):
        args = await _context._resolve(args)
        kwargs = await _context._resolve(kwargs)
        target = {"app": handle.app_name if handle.app_name is not None else self.app_name,
                  "deployment": handle.deployment_name, "method": handle.method_name,
                  "multiplexed_model_id": handle.multiplexed_model_id, "stream": bool(handle.stream)}
        return cloudpickle.dumps((target, args, kwargs))

    def _open(self, body):
        req = urllib.request.Request(self.relay_url, data=body, method="POST",
                                     headers={_relay.TOKEN_HEADER: self.token, "Content-Type": "application/octet-stream"})
        try:
            return urllib.request.urlopen(req, timeout=None)
        except urllib.error.HTTPError as e:
            raise DeploymentUnavailableError(f"The Serve relay at {self.relay_url} answered {e.code}: "
                                             f"{e.read().decode('utf-8', errors='replace').strip()}") from None
        except (urllib.error.URLError, OSError) as e:
            raise DeploymentUnavailableError(f"Could not reach the Serve HTTP proxy at {self.relay_url}: "
                                             f"{getattr(e, 'reason', e)}") from None

    async def _call(self, handle, args, kwargs):
        body = await self._body(handle, args, kwargs)
        loop = asyncio.get_running_loop()

        def post():
            with self._open(body) as resp:
                return _read_record(resp)
        return _unwrap(await loop.run_in_executor(None, post))

    async def _stream(self, handle, args, kwargs):
        body = await self._body(handle, args, kwargs)
        loop = asyncio.get_running_loop()
        resp = await loop.run_in_executor(None, self._open, body)
        try:
            while True:
                record = await loop.run_in_executor(None, _read_record, resp)
                if record[0] == "end":
                    return
                yield _unwrap(record)
        finally:
            resp.close()


def _read_exact(resp, n):
    data = b""
    while len(data) < n:
        chunk = resp.read(n - len(data))
        if not chunk:
            raise DeploymentUnavailableError("The Serve relay closed the call before its end")
        data += chunk
    return data


def _read_record(resp):
    (size,) = _LEN.unpack(_read_exact(resp, _LEN.size))
    return pickle.loads(_read_exact(resp, size))


def _unwrap(record):
    if record[0] == "ok":
        return record[1]
    _, exc, tb = record
    if isinstance(exc, BaseException):
        raise exc from RayTaskError(tb)
    raise RayTaskError(tb)
