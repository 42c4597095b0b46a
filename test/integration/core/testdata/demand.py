# Leaves a task no node can run queued until stdin closes.
import sys

import ray

ray.init()


@ray.remote(num_cpus=64)
def huge():
    return 1


ref = huge.remote()
ready, _ = ray.wait([ref], timeout=0.5)
print("queued", len(ready) == 0, flush=True)
sys.stdin.read()
