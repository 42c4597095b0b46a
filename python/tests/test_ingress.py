"""@serve.ingress: a FastAPI app answering a replica's HTTP calls over ASGI
(scopes under the route prefix, routes on the class bound to the instance,
streamed bodies, the app's errors, lifespan), without a cluster; the
driver-script suite runs the same through a real head."""

import asyncio
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

try:
    import fastapi  # noqa: F401
except ImportError as e:  # Debian's python3-fastapi
    raise unittest.SkipTest(f"fastapi is not installed: {e}")

from fastapi import FastAPI, HTTPException  # noqa: E402
from fastapi.responses import StreamingResponse  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from rayk8s import serve  # noqa: E402
from rayk8s.serve import _asgi, _http  # noqa: E402


class Item(BaseModel):
    name: str
    price: float


def make_app():
    app = FastAPI()
    events = []

    @app.on_event("startup")
    def started():
        events.append("startup")

    @app.on_event("shutdown")
    def stopped():
        events.append("shutdown")

    @serve.deployment
    @serve.ingress(app)
    class Store:
        def __init__(self, currency):
            self.currency = currency

        @app.get("/items/{item_id}")
        def get(self, item_id: int, q: str = ""):
            if item_id == 0:
                raise HTTPException(status_code=404, detail="no item 0")
            return {"id": item_id, "q": q, "currency": self.currency}

        @app.post("/items")
        async def create(self, item: Item):
            return {"name": item.name, "cost": f"{item.price} {self.currency}"}

        @app.get("/stream")
        def stream(self):
            return StreamingResponse(iter(["a", "b", "c"]), media_type="text/plain")

        @app.get("/boom")
        def boom(self):
            raise ValueError("boom")

    return app, Store, events


def meta(method, path, query="", prefix="/store", headers=()):
    return {"method": method, "path": path, "query": query, "route_prefix": prefix,
            "headers": [["host", "h"], *headers], "client": "10.0.0.9:1234"}


async def answer(result):
    """(status, headers, body) of what _asgi.call returned, read whole."""
    if _http.is_streaming(result):
        status, headers, items = _http.stream_head(result)
        chunks = [c async for c in items]
        return status, dict(headers), chunks
    status, headers, body = _http.to_http(result)
    return status, dict(headers), body


class IngressTest(unittest.TestCase):
    def test_routes_on_the_instance(self):
        asyncio.run(self._routes())

    async def _routes(self):
        import json
        app, Store, events = make_app()
        self.assertIs(_asgi.app_of(Store.func_or_class("EUR")), app)
        instance = Store.func_or_class("EUR")
        _asgi.bind_methods(app, instance)
        life = _asgi.Lifespan(app)
        await life.startup()
        self.assertEqual(events, ["startup"])

        status, _, body = await answer(await _asgi.call(app, meta("GET", "/store/items/3", "q=x"), b""))
        self.assertEqual((status, json.loads(body)), (200, {"id": 3, "q": "x", "currency": "EUR"}))
        status, _, body = await answer(await _asgi.call(app, meta("GET", "/store/items/0"), b""))
        self.assertEqual((status, json.loads(body)), (404, {"detail": "no item 0"}))
        status, _, body = await answer(await _asgi.call(app, meta("GET", "/store/items/x"), b""))
        self.assertEqual((status, json.loads(body)["detail"][0]["loc"]), (422, ["path", "item_id"]))
        status, _, body = await answer(await _asgi.call(
            app, meta("POST", "/store/items", headers=[["content-type", "application/json"]]), b'{"name": "pen", "price": 2}'))
        self.assertEqual((status, json.loads(body)), (200, {"name": "pen", "cost": "2.0 EUR"}))
        status, headers, chunks = await answer(await _asgi.call(app, meta("GET", "/store/stream"), b""))
        self.assertEqual((status, headers["content-type"].split(";")[0], chunks), (200, "text/plain", [b"a", b"b", b"c"]))
        # The schema no longer asks clients for `self`; docs point under the prefix.
        _, _, body = await answer(await _asgi.call(app, meta("GET", "/store/openapi.json"), b""))
        params = json.loads(body)["paths"]["/items/{item_id}"]["get"]["parameters"]
        self.assertEqual(sorted(p["name"] for p in params), ["item_id", "q"])
        _, _, body = await answer(await _asgi.call(app, meta("GET", "/store/docs"), b""))
        self.assertIn(b"/store/openapi.json", body)
        # The app's own error: starlette answers 500; the replica logs it.
        status, _, _ = await answer(await _asgi.call(app, meta("GET", "/store/boom"), b""))
        self.assertEqual(status, 500)
        # Route prefix "/" reaches the proxy as "".
        status, _, _ = await answer(await _asgi.call(app, meta("GET", "/items/1", prefix=""), b""))
        self.assertEqual(status, 200)
        await life.shutdown()
        self.assertEqual(events, ["startup", "shutdown"])

    def test_app_that_sends_nothing(self):
        async def silent(scope, receive, send):
            return None

        async def failing(scope, receive, send):
            raise KeyError("lost")

        with self.assertRaisesRegex(RuntimeError, "returned without sending a response"):
            asyncio.run(_asgi.call(silent, meta("GET", "/store/x"), b""))
        with self.assertRaises(KeyError):
            asyncio.run(_asgi.call(failing, meta("GET", "/store/x"), b""))

    def test_bad_use(self):
        with self.assertRaisesRegex(TypeError, "serve.ingress expects an ASGI app such as fastapi.FastAPI\\(\\), got int"):
            serve.ingress(3)
        app = FastAPI()
        with self.assertRaisesRegex(TypeError, "must be applied below @serve.deployment"):
            serve.ingress(app)(serve.deployment(type("D", (), {})))
        with self.assertRaisesRegex(TypeError, "decorates a class, got function"):
            serve.ingress(app)(lambda request: None)


if __name__ == "__main__":
    unittest.main()
