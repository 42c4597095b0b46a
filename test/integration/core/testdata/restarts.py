# An actor with max_restarts comes back with fresh state after its process
# dies; past the limit it stays dead.
import os

import ray

ray.init()


@ray.remote(max_restarts=1)
class Phoenix:
    def __init__(self):
        self.calls = 0

    def count(self):
        self.calls += 1
        return self.calls

    def crash(self):
        os._exit(1)


p = Phoenix.remote()
print("before", ray.get([p.count.remote(), p.count.remote()]))
try:
    ray.get(p.crash.remote())
except ray.exceptions.RayActorError:
    print("crash call failed")
print("after restart", ray.get(p.count.remote()))
ray.kill(p, no_restart=False)
try:
    ray.get(p.count.remote())
    print("restarted again")
except ray.exceptions.RayActorError:
    print("restarts used up: dead")
