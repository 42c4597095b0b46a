# Leaves tasks waiting until stdin closes: one that fits once the actor
# holding a CPU goes, and one no node can ever run.
import sys

import ray

ray.init()


@ray.remote(num_cpus=1)
class Holder:
    def ping(self):
        return "held"


@ray.remote(num_cpus=2)
def pair():
    return 2


@ray.remote(num_cpus=64)
def huge():
    return 1


holder = Holder.remote()
print("holder", ray.get(holder.ping.remote()), flush=True)
refs = [pair.remote(), huge.remote()]
ready, _ = ray.wait(refs, timeout=0.5, num_returns=2)
print("queued", len(ready) == 0, flush=True)
sys.stdin.read()
