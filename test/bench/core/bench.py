"""Ray core microbenchmark, shaped like `ray microbenchmark`: run by
`make bench-core` against a head and a worker agent (resource "remote")."""

import time

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

RAY_PUBLISHED = {
    "single client tasks sync": 1260,
    "single client tasks async": 14000,
    "1:1 actor calls sync": 2200,
}


def timeit(name, fn, n, unit="/s", scale=1.0):
    fn(max(1, n // 10))  # warm up
    start = time.perf_counter()
    fn(n)
    rate = n * scale / (time.perf_counter() - start)
    ref = RAY_PUBLISHED.get(name)
    note = f"   (Ray, 64 cores: {ref}{unit})" if ref else ""
    print(f"{name:<36} {rate:>10.1f} {unit}{note}", flush=True)


def main():
    ray.init()

    @ray.remote
    def noop():
        return None

    @ray.remote(resources={"remote": 1})
    def remote_noop():
        return None

    @ray.remote
    class Actor:
        def noop(self):
            return None

    @ray.remote
    class AsyncActor:
        async def noop(self):
            return None

    # Ray's microbenchmark runs on one node: the actors stay on the
    # driver's, rather than wherever the scheduler puts them.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    Actor = Actor.options(scheduling_strategy=here)
    AsyncActor = AsyncActor.options(scheduling_strategy=here)

    timeit("single client tasks sync", lambda n: [ray.get(noop.remote()) for _ in range(n)], 1000)
    timeit("single client tasks async", lambda n: ray.get([noop.remote() for _ in range(n)]), 5000)
    a = Actor.remote()
    timeit("1:1 actor calls sync", lambda n: [ray.get(a.noop.remote()) for _ in range(n)], 2000)
    timeit("1:1 actor calls async", lambda n: ray.get([a.noop.remote() for _ in range(n)]), 5000)
    aa = AsyncActor.remote()
    timeit("1:1 async-actor calls async", lambda n: ray.get([aa.noop.remote() for _ in range(n)]), 5000)
    timeit("single client put calls", lambda n: [ray.put(0) for _ in range(n)], 5000)
    ref = ray.put(0)
    timeit("single client get calls", lambda n: [ray.get(ref) for _ in range(n)], 5000)
    big = b"x" * (100 << 20)
    timeit("single client put gigabytes", lambda n: [ray.put(big) for _ in range(n)], 10, "GB/s", 0.1)
    timeit("tasks on the other node async", lambda n: ray.get([remote_noop.remote() for _ in range(n)]), 2000)


if __name__ == "__main__":
    main()
