"""A multiplexed per-customer model: `import_path: customer_models:app`.

    curl -H "serve_multiplexed_model_id: customer-42" -X POST http://.../predict -d '3.5'

Each customer has its own model; a replica keeps at most
max_num_models_per_replica of them (least recently used evicted) and the
routers send a customer's requests to the replica that already holds its
model. The "model" is a linear function seeded by the customer ID.
"""

import asyncio
import hashlib

from rayk8s import serve


class CustomerModel:
    def __init__(self, model_id):
        digest = hashlib.sha256(model_id.encode()).digest()
        self.model_id = model_id
        self.slope = 1 + digest[0] / 255
        self.intercept = digest[1] / 255

    def predict(self, x):
        return self.slope * x + self.intercept

    def __del__(self):
        # Where a real model would release its memory or GPU (Serve calls
        # it when the model is evicted; an async __del__ is awaited).
        self.slope = self.intercept = None


@serve.deployment(num_replicas=2)
class CustomerModels:
    @serve.multiplexed(max_num_models_per_replica=4)
    async def get_model(self, model_id):
        await asyncio.sleep(0.01)  # a real loader fetches weights here
        return CustomerModel(model_id)

    async def __call__(self, request):
        model_id = serve.get_multiplexed_model_id()
        if not model_id:
            return serve.Response("set the serve_multiplexed_model_id header", status_code=400)
        try:
            x = float(await request.json())
        except (TypeError, ValueError):
            return serve.Response("the body must be a JSON number", status_code=400)
        model = await self.get_model(model_id)
        return {"model_id": model_id, "prediction": model.predict(x), "replica": serve.get_replica_context().replica_id}


app = CustomerModels.bind()
