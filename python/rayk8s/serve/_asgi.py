"""@serve.ingress: a deployment class whose HTTP requests an ASGI app
(FastAPI, Starlette) answers.

The replica speaks ASGI to the app: one request scope per HTTP call, with
the application's route prefix as root_path and the path below it as path
(so the app's routes, /docs and /openapi.json live under the prefix), the
response's start and body messages turned into the replica's answer. FastAPI
routes defined as methods of the class get the replica's instance as self,
and the app's lifespan (startup/shutdown events) runs with the replica."""

import asyncio
import inspect

# The class attribute @serve.ingress sets; the replica looks for it.
ATTR = "_serve_asgi_app"


def ingress(app):
    """Serve the ASGI app (a FastAPI or Starlette app) from the decorated
    deployment class: @serve.deployment above @serve.ingress(app)."""
    if not callable(app):
        raise TypeError(f"serve.ingress expects an ASGI app such as fastapi.FastAPI(), got {type(app).__name__}")

    def decorate(cls):
        from rayk8s.serve._api import Deployment

        if isinstance(cls, Deployment):
            raise TypeError("@serve.ingress(app) must be applied below @serve.deployment (to the class itself)")
        if not inspect.isclass(cls):
            raise TypeError(f"@serve.ingress(app) decorates a class, got {type(cls).__name__}")
        setattr(cls, ATTR, app)
        return cls

    return decorate


def app_of(instance):
    """The ASGI app of a replica's instance, or None."""
    if instance is None or inspect.isfunction(instance):
        return None
    return getattr(type(instance), ATTR, None)


def bind_methods(app, instance):
    """FastAPI routes whose endpoint is a function of the instance's class
    are rebuilt around the bound method, so self is the replica's instance
    (FastAPI would otherwise ask the client for a `self` parameter)."""
    try:
        from fastapi.dependencies.utils import get_body_field, get_dependant, get_parameterless_sub_dependant
        from fastapi.routing import APIRoute, request_response
    except ImportError:
        return
    funcs = {}
    for name, fn in inspect.getmembers(type(instance), inspect.isfunction):
        funcs[id(fn)] = name
        funcs[(fn.__module__, fn.__qualname__)] = name
    for route in getattr(app, "routes", []):
        if not isinstance(route, APIRoute):
            continue
        ep = route.endpoint
        name = funcs.get(id(ep)) or funcs.get((getattr(ep, "__module__", None), getattr(ep, "__qualname__", None)))
        if name is None:
            continue
        # What APIRoute.__init__ derives from its endpoint, derived again.
        route.endpoint = getattr(instance, name)
        route.dependant = get_dependant(path=route.path_format, call=route.endpoint)
        for depends in route.dependencies[::-1]:
            route.dependant.dependencies.insert(0, get_parameterless_sub_dependant(depends=depends, path=route.path_format))
        route.body_field = get_body_field(dependant=route.dependant, name=route.unique_id)
        route.app = request_response(route.get_route_handler())
    if getattr(app, "openapi_schema", None) is not None:
        app.openapi_schema = None


class Lifespan:
    """The app's ASGI lifespan: startup before the replica serves, shutdown
    when it stops. An app that does not speak lifespan is left alone, as
    uvicorn does."""

    def __init__(self, app):
        self.app = app
        self.inbox = asyncio.Queue()
        self.outbox = asyncio.Queue()
        self.task = None
        self.supported = True

    async def _run(self):
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        try:
            await self.app(scope, self.inbox.get, self.outbox.put)
        except Exception:  # noqa: BLE001 - an app without lifespan support raises on its scope
            self.supported = False
        await self.outbox.put(None)

    async def startup(self):
        self.task = asyncio.ensure_future(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        msg = await self.outbox.get()
        if msg is not None and msg.get("type") == "lifespan.startup.failed":
            raise RuntimeError(f"The ASGI app's startup failed: {msg.get('message', '')}")

    async def shutdown(self):
        if self.task is None or not self.supported or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()


class _Response:
    """A whole answer: what _http.to_http serves."""

    def __init__(self, status_code, raw_headers, body):
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.body = body


class _StreamedResponse:
    """An answer the app sends in several body messages: what
    _http.stream_head serves, chunk by chunk as the app sends them."""

    def __init__(self, status_code, raw_headers, body_iterator):
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.body_iterator = body_iterator


_DONE = object()


def _scope(meta):
    prefix = meta.get("route_prefix") or ""
    path = meta.get("path") or "/"
    sub = path[len(prefix):] if prefix and path.startswith(prefix) else path
    if not sub.startswith("/"):
        sub = "/" + sub
    host, _, port = (meta.get("client") or "").rpartition(":")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": meta.get("method", "GET"),
        "scheme": "http",
        "path": sub,
        "raw_path": sub.encode(),
        "query_string": (meta.get("query") or "").encode("latin-1"),
        "root_path": prefix,
        "headers": [(str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in meta.get("headers") or []],
        "client": (host, int(port)) if host and port.isdigit() else None,
        "server": None,
    }


async def call(app, meta, body):
    """One HTTP call answered by the ASGI app."""
    scope = _scope(meta)
    # A queue of one: the app waits for the caller to take each message,
    # so a slow client holds back a streaming app.
    queue = asyncio.Queue(maxsize=1)
    finished = asyncio.Event()
    body_sent = False

    async def receive():
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body or b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def run():
        try:
            await app(scope, receive, queue.put)
        finally:
            await queue.put(_DONE)

    task = asyncio.ensure_future(run())

    async def next_message():
        msg = await queue.get()
        if msg is _DONE:
            return None
        return msg

    start = await next_message()
    if start is None or start.get("type") != "http.response.start":
        finished.set()
        await _finish(task)
        raise RuntimeError("The ASGI app returned without sending a response")
    status = int(start.get("status", 200))
    raw_headers = [(bytes(k), bytes(v)) for k, v in start.get("headers") or []]
    first = await next_message()
    if first is None or not first.get("more_body", False):
        finished.set()
        await _finish(task, quiet=True)
        return _Response(status, raw_headers, bytes((first or {}).get("body", b"")))

    async def chunks():
        try:
            msg = first
            while msg is not None:
                data = msg.get("body", b"")
                if data:
                    yield bytes(data)
                if not msg.get("more_body", False):
                    break
                msg = await next_message()
        finally:
            finished.set()
            if not task.done():
                task.cancel()
            await _finish(task, quiet=True)

    return _StreamedResponse(status, raw_headers, chunks())


async def _finish(task, quiet=False):
    """Waits for the app's task; its exception is raised unless a response
    was already sent (starlette's error middleware sends a 500 and then
    re-raises, as uvicorn expects)."""
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:  # noqa: BLE001 - the app's own error
        if not quiet:
            raise
        import traceback

        traceback.print_exc()
