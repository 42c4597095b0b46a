# Actor lifetimes as Ray's docs describe them: an actor ends once every
# handle of it has gone out of scope, after the calls sent to it; a handle
# passed on, a named and a detached actor keep it; __ray_terminate__ ends
# one gracefully.
import asyncio
import gc
import os
import time

import ray

ray.init()


@ray.remote(max_restarts=-1)
class Counter:
    def __init__(self):
        self.n = 0

    def pid(self):
        return os.getpid()

    def incr(self):
        self.n += 1
        return self.n


@ray.remote
class Slow:
    def pid(self):
        return os.getpid()

    def nap(self, s):
        time.sleep(s)
        return s


@ray.remote
class AsyncSlow:
    def pid(self):
        return os.getpid()

    async def nap(self, s):
        await asyncio.sleep(s)
        return s


@ray.remote
def use(actor):
    return ray.get(actor.incr.remote())


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def ends(pid, within=10.0):
    deadline = time.time() + within
    while time.time() < deadline:
        gc.collect()
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


a = Counter.remote()
pid = ray.get(a.pid.remote())
del a
print("dropped handle ends the actor", ends(pid))

# A temporary handle: the call sent through it still runs.
print("call on a temporary handle", ray.get(Counter.remote().incr.remote()))

# Calls still running when the last handle goes finish first.
s = Slow.options(max_concurrency=4).remote()
spid = ray.get(s.pid.remote())
refs = [s.nap.remote(0.5) for _ in range(3)]
del s
print("threaded calls finish", ray.get(refs), ends(spid))
t = AsyncSlow.remote()
tpid = ray.get(t.pid.remote())
refs = [t.nap.remote(0.5) for _ in range(3)]
del t
print("async calls finish", ray.get(refs), ends(tpid))

# One dropped while it waits for resources nobody has ends at once, and its
# demand goes with it.
x = Counter.options(resources={"nowhere": 1}).remote()
time.sleep(0.3)
del x
gc.collect()
time.sleep(0.5)

# An actor a task created ends once the task is done with it, as the task's
# worker process owns it.
@ray.remote
def make_and_drop():
    inner = Counter.remote()
    return ray.get(inner.pid.remote())


print("actor of a finished task ends", ends(ray.get(make_and_drop.remote())))

# A handle passed to a task keeps the actor: this process no longer sees
# every handle.
b = Counter.remote()
bpid = ray.get(b.pid.remote())
print("passed handle works", ray.get(use.remote(b)))
del b
print("passed handle keeps the actor", not ends(bpid, within=1.0))

# A named actor is kept until ray.kill or the end of the job.
Counter.options(name="kept").remote()
kept = ray.get_actor("kept")
kpid = ray.get(kept.pid.remote())
del kept
print("named actor kept", not ends(kpid, within=1.0), ray.get(ray.get_actor("kept").incr.remote()))

# __ray_terminate__ ends an actor for good, even one that restarts.
c = Counter.remote()
cpid = ray.get(c.pid.remote())
try:
    c.__ray_terminate__.remote("why")
except TypeError as e:
    print("__ray_terminate__ with arguments:", e)
ray.get(c.__ray_terminate__.remote())
print("__ray_terminate__ ends the actor", ends(cpid))
try:
    ray.get(c.incr.remote())
except ray.exceptions.RayActorError:
    print("calls after __ray_terminate__ raise RayActorError")
