# Model composition as Ray Serve's docs write it: an ingress deployment that
# calls two others through DeploymentHandles, run with serve.run from a
# driver and called through the returned handle and over HTTP.
import os
from typing import Dict

import requests
from starlette.requests import Request

from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

PORT = int(os.environ.get("RAYK8S_SERVE_HTTP_PORT", "8000"))


@serve.deployment
class Adder:
    def __init__(self, increment: int):
        self._increment = increment

    def __call__(self, val: int) -> int:
        return val + self._increment


@serve.deployment
class Multiplier:
    def __init__(self, multiple: int):
        self._multiple = multiple

    def __call__(self, val: int) -> int:
        return val * self._multiple


@serve.deployment
class Ingress:
    def __init__(self, adder: DeploymentHandle, multiplier: DeploymentHandle):
        self._adder = adder
        self._multiplier = multiplier

    async def __call__(self, request: Request) -> dict:
        val = int(request.query_params.get("val", "0"))
        return {"result": await self._compute(val)}

    async def compute(self, val: int) -> int:
        return await self._compute(val)

    async def _compute(self, val: int) -> int:
        added = await self._adder.remote(val)
        return await self._multiplier.remote(added)

    def count_to(self, n: int):
        for i in range(1, n + 1):
            yield i


app = Ingress.bind(Adder.bind(increment=1), Multiplier.bind(multiple=2))


def build_app(args: Dict[str, str]) -> Application:
    """An application builder: `serve run` and Serve configs pass it args."""
    return Ingress.bind(Adder.bind(increment=int(args.get("increment", 1))),
                        Multiplier.bind(multiple=int(args.get("multiple", 2))))

if __name__ == "__main__":
    handle: DeploymentHandle = serve.run(app, name="math", route_prefix="/math")
    print("handle:", handle.compute.remote(5).result())
    print("stream:", list(handle.options(stream=True).count_to.remote(3)))
    print("http:", requests.get(f"http://127.0.0.1:{PORT}/math", params={"val": 3}).json()["result"])
    print("status:", serve.status().applications["math"].status)
    serve.delete("math")
    print("after delete:", sorted(serve.status().applications))
