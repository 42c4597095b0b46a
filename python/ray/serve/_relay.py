"""The relay through which a driver's DeploymentHandles call deployments.

Handle calls travel between replicas and node agents, which a driver
process is neither; serve.run therefore also deploys this small
application, and the driver sends each call to it over the Serve HTTP
proxy: the call's target and cloudpickled arguments in, the pickled
result (or, streamed, each pickled item) out. Only a caller presenting the
token the driver chose is served, because the body is unpickled."""

import hmac
import pickle
import struct
import traceback

import cloudpickle

from rayk8s.serve import _api, _context, _http

APP_NAME = "rayk8s-driver-relay"
ROUTE_PREFIX = "/rayk8s-driver-relay"
TOKEN_HEADER = "x-rayk8s-relay-token"
_LEN = struct.Struct(">I")


def frame(record):
    data = cloudpickle.dumps(record)
    return _LEN.pack(len(data)) + data


def _error(exc):
    tb = traceback.format_exc()
    try:
        cloudpickle.dumps(exc)
    except Exception:  # noqa: BLE001 - an exception that cannot travel goes as its traceback
        exc = None
    return ("err", exc, tb)


class DriverRelay:
    def __init__(self, token):
        self._token = token

    async def __call__(self, request):
        if not hmac.compare_digest(request.headers.get(TOKEN_HEADER, ""), self._token):
            return _http.PlainTextResponse("This relay serves only the driver that deployed it.", status_code=403)
        target, args, kwargs = pickle.loads(await request.body())
        handle = _context.DeploymentHandle(target["deployment"], target["app"], target["method"],
                                           target["multiplexed_model_id"], target["stream"])
        if target["stream"]:
            return _http.StreamingResponse(self._items(handle, args, kwargs), media_type="application/octet-stream")
        try:
            record = ("ok", await handle.remote(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 - the driver re-raises it
            record = _error(e)
        return _http.Response(frame(record), media_type="application/octet-stream")

    async def _items(self, handle, args, kwargs):
        try:
            async for item in handle.remote(*args, **kwargs):
                yield frame(("ok", item))
        except Exception as e:  # noqa: BLE001 - the driver re-raises it
            yield frame(_error(e))
            return
        yield frame(("end",))


def build(args):
    token = (args or {}).get("token")
    if not token:
        raise ValueError("ray.serve._relay:build needs args['token']")
    return _api.deployment(DriverRelay, name="RayK8sDriverRelay", max_ongoing_requests=1000,
                           ray_actor_options={"num_cpus": 0}).bind(token)
