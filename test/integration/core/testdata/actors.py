# Actors the way Ray's docs write them: state, ordered calls, named actors,
# async actors, ray.kill.
import asyncio

import ray

ray.init(namespace="bank")


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.value = start

    def increment(self):
        self.value += 1
        return self.value

    def fail(self):
        raise ValueError("no")


c = Counter.remote(10)
refs = [c.increment.remote() for _ in range(20)]
print("ordered", ray.get(refs) == list(range(11, 31)))

named = Counter.options(name="global_counter").remote()
ray.get(named.increment.remote())
same = ray.get_actor("global_counter")
print("named", ray.get(same.increment.remote()))
try:
    Counter.options(name="global_counter").remote()
except ValueError as e:
    print("duplicate name refused")
again = Counter.options(name="global_counter", get_if_exists=True).remote()
print("get_if_exists", ray.get(again.increment.remote()))
try:
    ray.get_actor("missing")
except ValueError:
    print("missing actor raises ValueError")

try:
    ray.get(c.fail.remote())
except ValueError as e:
    print("actor error", type(e).__name__)


@ray.remote
class AsyncActor:
    async def run(self, i):
        await asyncio.sleep(0.2)
        return i


aa = AsyncActor.remote()
print("async", ray.get([aa.run.remote(i) for i in range(10)]))

ray.kill(named)
try:
    ray.get(named.increment.remote())
except ray.exceptions.RayActorError:
    print("killed actor raises RayActorError")

from ray.util import ActorPool


@ray.remote
class Doubler:
    def double(self, v):
        return 2 * v


pool = ActorPool([Doubler.remote(), Doubler.remote()])
print("actor pool", list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4])))
