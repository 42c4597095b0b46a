# Leaves an actor, a finished task and an object in the cluster until stdin
# closes, for the state API to list.
import sys

import ray

ray.init()


@ray.remote
class Keeper:
    def ping(self):
        return "pong"


@ray.remote
def square(x):
    return x * x


keeper = Keeper.options(name="keeper").remote()
print("actor", ray.get(keeper.ping.remote()), flush=True)
print("task", ray.get(square.remote(7)), flush=True)
ref = ray.put(b"x" * 1000)
print("object", ref.hex(), flush=True)
sys.stdin.read()
