"""A token-streaming text generator: `import_path: textgen:app`.

    curl -N "http://.../generate?prompt=hello&tokens=20"

Each token reaches the client as it is produced (no model is needed: the
"model" echoes the prompt's words with a counter, at a steady pace set by
user_config's token_delay_s). A client that disconnects stops generation.
The Generator deployment streams to the ingress through a
handle.options(stream=True) call, as an LLM front end would.
"""

import asyncio

from rayk8s import serve


@serve.deployment(max_ongoing_requests=16)
class Generator:
    def __init__(self):
        self.delay = 0.05
        self.stopped = 0

    def reconfigure(self, config):
        self.delay = float(config.get("token_delay_s", self.delay))

    async def generate(self, prompt, tokens):
        words = prompt.split() or ["token"]
        try:
            for i in range(tokens):
                if i:
                    await asyncio.sleep(self.delay)
                yield f"{words[i % len(words)]}-{i} "
        except asyncio.CancelledError:
            self.stopped += 1
            raise

    def stats(self):
        return {"stopped": self.stopped}


@serve.deployment
class TextGen:
    def __init__(self, generator):
        self.generator = generator

    async def __call__(self, request):
        if request.path.endswith("/stats"):
            return await self.generator.stats.remote()
        prompt = request.query_params.get("prompt", "hello world")
        tokens = int(request.query_params.get("tokens", "10"))
        if tokens < 0 or tokens > 10000:
            return serve.Response("tokens must be between 0 and 10000", status_code=400)
        stream = self.generator.options(stream=True).generate.remote(prompt, tokens)
        return serve.StreamingResponse(stream, media_type="text/plain")


app = TextGen.bind(Generator.bind())
