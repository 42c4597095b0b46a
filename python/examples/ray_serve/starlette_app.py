# Starlette Requests and Responses, @serve.batch and user_config as Ray
# Serve's docs write them, run with serve.run and called over HTTP.
import asyncio
import os
from typing import List

import requests
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse

from ray import serve

PORT = int(os.environ.get("RAYK8S_SERVE_HTTP_PORT", "8000"))


@serve.deployment(user_config={"greeting": "hello"})
class Greeter:
    def reconfigure(self, config: dict):
        self.greeting = config["greeting"]

    async def __call__(self, request: Request):
        if request.url.path.endswith("/stream"):
            n = int(request.query_params["n"])
            return StreamingResponse((f"{i}\n" for i in range(n)), media_type="text/plain")
        if request.method == "POST":
            body = await request.json()
            return JSONResponse({"kind": type(request).__module__, "echo": body}, status_code=201,
                                headers={"x-greeter": "yes"})
        return PlainTextResponse(f"{self.greeting} {request.query_params.get('name', 'world')}")


@serve.deployment
class Batched:
    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.05)
    async def handle_batch(self, names: List[str]) -> List[str]:
        return [f"{n}:{len(names) > 0}" for n in names]

    async def __call__(self, request: Request) -> str:
        return await self.handle_batch(request.query_params["name"])


if __name__ == "__main__":
    serve.run(Greeter.bind(), name="greeter", route_prefix="/greet")
    serve.run(Batched.bind(), name="batched", route_prefix="/batched")
    base = f"http://127.0.0.1:{PORT}"
    print("plain:", requests.get(f"{base}/greet", params={"name": "ray"}).text)
    r = requests.post(f"{base}/greet", json={"a": 1})
    print("json:", r.status_code, r.headers["x-greeter"], r.json())
    print("stream:", requests.get(f"{base}/greet/stream", params={"n": 3}).text.split())
    print("batch:", requests.get(f"{base}/batched", params={"name": "x"}).text)
    print("apps:", sorted(serve.status().applications))
    serve.shutdown()
    print("after shutdown:", sorted(serve.status().applications))
