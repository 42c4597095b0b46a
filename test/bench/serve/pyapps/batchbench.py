"""The batching benchmark's model: `import_path: batchbench:app`.

Each call of predict() costs a fixed 5 ms whatever the batch size, as a
vectorized model (one GPU kernel, one BLAS call) does, so batching pays off
by running many callers' items in one call. user_config's max_batch_size
sets the batch size (1 turns batching off).
"""

import asyncio

from rayk8s import serve


@serve.deployment(max_ongoing_requests=64)
class BatchBench:
    def reconfigure(self, config):
        self.predict.set_max_batch_size(int(config.get("max_batch_size", 8)))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def predict(self, items):
        await asyncio.sleep(0.005)
        return [len(i) for i in items]

    async def __call__(self, request):
        return {"n": await self.predict(await request.body())}


app = BatchBench.bind()
