"""A batched classifier: `import_path: classifier:app`.

    curl -X POST http://.../classify -d '"what a great day"'

Concurrent requests reach classify() as one batch (@serve.batch), the way
a vectorized model wants them; user_config tunes the batch size and wait
through reconfigure. The "model" scores words from a small lexicon. Each
answer says how big its batch was.
"""

from rayk8s import serve

POSITIVE = {"good", "great", "love", "excellent", "happy", "nice", "fun"}
NEGATIVE = {"bad", "awful", "hate", "terrible", "sad", "boring", "poor"}


@serve.deployment(max_ongoing_requests=16)
class Classifier:
    def reconfigure(self, config):
        if "max_batch_size" in config:
            self.classify.set_max_batch_size(config["max_batch_size"])
        if "batch_wait_timeout_s" in config:
            self.classify.set_batch_wait_timeout_s(config["batch_wait_timeout_s"])

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def classify(self, texts):
        out = []
        for text in texts:
            if not isinstance(text, str):
                # Fails only this caller's request.
                out.append(ValueError(f"expected a JSON string, got {type(text).__name__}"))
                continue
            words = [w.strip(".,!?").lower() for w in text.split()]
            score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
            label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
            out.append({"label": label, "score": score, "batch_size": len(texts)})
        return out

    async def __call__(self, request):
        try:
            text = await request.json()
        except ValueError:
            return serve.Response("the body must be a JSON string", status_code=400)
        try:
            return await self.classify(text)
        except ValueError as e:
            return serve.Response(str(e), status_code=400)


app = Classifier.bind()
