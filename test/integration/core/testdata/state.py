# Leaves two actors, a finished and a failed task, an object and a
# placement group in the cluster until stdin closes, for the state API to
# list.
import sys

import ray
from ray.util.placement_group import placement_group

ray.init()


@ray.remote
class Keeper:
    def ping(self):
        return "pong"


@ray.remote
class Spare:
    def ping(self):
        return "pong"


@ray.remote
def square(x):
    return x * x


@ray.remote(max_retries=0)
def boom():
    raise ValueError("boom")


keeper = Keeper.options(name="keeper").remote()
spare = Spare.options(name="spare").remote()
print("actor", ray.get(keeper.ping.remote()), ray.get(spare.ping.remote()), flush=True)
print("task", ray.get(square.remote(7)), flush=True)
try:
    ray.get(boom.remote())
except ValueError:
    pass
pg = placement_group([{"CPU": 1}], name="statepg")
ray.get(pg.ready())
print("pg", pg.id.hex(), flush=True)
ref = ray.put(b"x" * 1000)
print("object", ref.hex(), flush=True)
sys.stdin.read()
