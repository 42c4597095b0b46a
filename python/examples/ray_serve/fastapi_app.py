# A FastAPI app served by a deployment with @serve.ingress, as Ray Serve's
# docs write it: routes on the class using self, path and query parameters,
# a pydantic body, FastAPI's errors and responses, a streamed answer, and a
# route that composes another deployment through its handle.
import os
from typing import List

import requests
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

from ray import serve
from ray.serve.handle import DeploymentHandle

PORT = int(os.environ.get("RAYK8S_SERVE_HTTP_PORT", "8000"))

app = FastAPI()


class Order(BaseModel):
    item: str
    quantity: int = 1
    tags: List[str] = []


@serve.deployment
class Pricer:
    def __init__(self, prices: dict):
        self._prices = prices

    def price(self, item: str) -> float:
        return self._prices[item]


@serve.deployment
@serve.ingress(app)
class Shop:
    def __init__(self, pricer: DeploymentHandle, greeting: str):
        self._pricer = pricer
        self._greeting = greeting
        self._orders = []

    @app.get("/")
    def root(self) -> str:
        return f"{self._greeting} from the shop"

    @app.get("/items/{item_id}")
    def item(self, item_id: int, verbose: bool = False) -> dict:
        if item_id > 100:
            raise HTTPException(status_code=404, detail=f"item {item_id} not found")
        return {"item_id": item_id, "verbose": verbose}

    @app.post("/orders", status_code=201)
    async def order(self, order: Order) -> dict:
        unit = await self._pricer.price.remote(order.item)
        self._orders.append(order.item)
        return {"item": order.item, "total": unit * order.quantity, "tags": order.tags, "orders": len(self._orders)}

    @app.get("/text", response_class=PlainTextResponse)
    def text(self):
        return "plain"

    @app.get("/count/{n}")
    def count(self, n: int):
        return StreamingResponse((f"{i}\n" for i in range(n)), media_type="text/plain")

    def orders(self) -> List[str]:
        return list(self._orders)


shop = Shop.bind(Pricer.bind({"apple": 0.5, "pear": 0.75}), greeting="hello")

if __name__ == "__main__":
    handle = serve.run(shop, name="shop", route_prefix="/shop")
    base = f"http://127.0.0.1:{PORT}/shop"
    print("root:", requests.get(f"{base}/").json())
    print("item:", requests.get(f"{base}/items/7", params={"verbose": "true"}).json())
    r = requests.get(f"{base}/items/101")
    print("missing:", r.status_code, r.json()["detail"])
    r = requests.get(f"{base}/items/seven")
    print("invalid:", r.status_code, r.json()["detail"][0]["loc"])
    r = requests.post(f"{base}/orders", json={"item": "pear", "quantity": 4, "tags": ["ripe"]})
    print("order:", r.status_code, r.json())
    r = requests.post(f"{base}/orders", json={"quantity": 4})
    print("bad order:", r.status_code, r.json()["detail"][0]["loc"])
    print("text:", requests.get(f"{base}/text").text)
    print("stream:", requests.get(f"{base}/count/3").text.split())
    print("openapi:", sorted(requests.get(f"{base}/openapi.json").json()["paths"]))
    print("docs:", "/shop/openapi.json" in requests.get(f"{base}/docs").text)
    print("handle:", handle.orders.remote().result())
    serve.delete("shop")
    print("after delete:", sorted(serve.status().applications))
