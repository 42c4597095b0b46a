"""A no-op deployment for benchmarks: `import_path: noop:app`."""

from rayk8s import serve


@serve.deployment(max_ongoing_requests=100)
class Noop:
    async def __call__(self, request):
        return b""


app = Noop.bind()
