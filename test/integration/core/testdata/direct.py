# Direct actor calls (the caller sends straight to the actor's process on
# its node): the same results and order as through the agent; a direct
# result passed on to another actor and a task, nested in a list and
# ray.put; ray.wait over direct and agent refs; ray.cancel of a queued
# direct call; the actor's process killed mid-call; the state API's rows.
# Prints one line per check.
import os
import signal
import time

import ray
from ray._private.worker import global_worker

ray.init()


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0
        self.seen = []

    def add(self, k):
        self.n += 1
        self.seen.append(k)
        return self.n

    def seen_list(self):
        return self.seen

    def echo(self, x):
        return x

    def boom(self):
        raise KeyError("no such key")

    def pid(self):
        return os.getpid()

    def block(self, path):
        while not os.path.exists(path):
            time.sleep(0.01)
        return "unblocked"


@ray.remote
class Sink:
    def take(self, x, nested):
        return x, ray.get(nested[0])


@ray.remote
def plus_one(x):
    return x + 1


def direct_route(actor):
    r = global_worker.direct.routes.get(actor._ray_actor_id)
    return r is not None and r.conn is not None and not r.conn.closed


c = Counter.remote()
first = ray.get(c.add.remote(0))
# Later calls switch to the direct path once the agent has nothing of the
# actor's in flight.
deadline = time.monotonic() + 30
while not direct_route(c) and time.monotonic() < deadline:
    ray.get(c.add.remote(-1))
    time.sleep(0.06)
print("direct", direct_route(c), flush=True)
before = ray.get(c.seen_list.remote())
refs = [c.add.remote(i) for i in range(100)]
counts = ray.get(refs)
seen = ray.get(c.seen_list.remote())[len(before):]
print("ordered", seen == list(range(100)) and counts == list(range(counts[0], counts[0] + 100)), flush=True)
try:
    ray.get(c.boom.remote())
except KeyError as e:
    print("error type", type(e).__name__.startswith("RayTaskError") and isinstance(e, ray.exceptions.RayTaskError), flush=True)

# A direct result escapes: as an argument (top level and nested in a list)
# of another actor's call and of a task, and inside a ray.put value.
x = c.echo.remote(41)
s = Sink.remote()
print("passed on", ray.get(s.take.remote(x, [x])), ray.get(plus_one.remote(x)), flush=True)
# A direct call's running result as an argument of the next direct call.
print("chained", ray.get(c.echo.remote(c.echo.remote(5))), flush=True)
y_path = os.path.join(os.environ.get("RAY_TMPDIR", "/tmp"), f"direct-unblock-{os.getpid()}")
blocker = c.block.remote(y_path)
later = c.echo.remote("later")
boxed = ray.put([later])
on_agent = plus_one.remote(1)
ready, rest = ray.wait([blocker, later, on_agent], num_returns=1, timeout=30)
print("wait mixed", ready == [on_agent] and len(rest) == 2, flush=True)
ready, rest = ray.wait([blocker, on_agent], num_returns=2, timeout=0.2)
print("wait timeout", ready == [on_agent] and rest == [blocker], flush=True)
# ray.cancel of a call queued behind the blocked one.
queued = c.echo.remote("queued")
ray.cancel(queued)
open(y_path, "w").close()
try:
    ray.get(queued)
    print("cancelled False", flush=True)
except ray.exceptions.TaskCancelledError:
    print("cancelled True", flush=True)
print("unblocked", ray.get(blocker), ray.get(ray.get(boxed)[0]), flush=True)
os.unlink(y_path)
slow = c.block.remote(y_path)
try:
    ray.get(slow, timeout=0.2)
except ray.exceptions.GetTimeoutError:
    print("get timeout True", flush=True)
open(y_path, "w").close()
print("then", ray.get(slow), flush=True)
os.unlink(y_path)


# Async and threaded actors answer direct calls from their loop and threads.
@ray.remote
class Napper:
    async def nap(self, s):
        import asyncio
        await asyncio.sleep(s)
        return s

    async def ping(self):
        return "pong"


@ray.remote(max_concurrency=2)
class Pair:
    def twice(self, x):
        return 2 * x


napper, pair = Napper.remote(), Pair.remote()
ray.get([napper.ping.remote(), pair.twice.remote(0)])
ray.get([napper.ping.remote(), pair.twice.remote(0)])
print("async and threaded direct", direct_route(napper), direct_route(pair), flush=True)
print("threaded", ray.get([pair.twice.remote(i) for i in range(10)]) == [2 * i for i in range(10)], flush=True)
long_nap = napper.nap.remote(120)
print("async", ray.get(napper.nap.remote(0.01)), ray.get(napper.ping.remote()), flush=True)
ray.cancel(long_nap)
try:
    ray.get(long_nap, timeout=30)
except ray.exceptions.TaskCancelledError:
    print("running async call cancelled", flush=True)

# A direct result lives in the caller until its last ref goes.
big = c.echo.remote(b"x" * 100000)
held = ray.get(big)
big_id = big.hex()
had = big_id in global_worker.direct.values
del big
print("freed", had and big_id not in global_worker.direct.values, flush=True)

# A task on the actor's node is a caller like the driver.
@ray.remote
def from_task(h):
    from ray._private.worker import global_worker as w

    out = [ray.get(h.echo.remote(i)) for i in range(20)]
    r = w.direct.routes.get(h._ray_actor_id)
    return out == list(range(20)), r is not None and r.conn is not None and not r.conn.closed


print("from a task", ray.get(from_task.remote(c)), flush=True)

# The actor's process dies mid-call: RayActorError, and later calls too.
pid = ray.get(c.pid.remote())
mid = c.block.remote("/nonexistent-never")
os.kill(pid, signal.SIGKILL)
try:
    ray.get(mid, timeout=30)
except ray.exceptions.RayActorError:
    print("died mid-call RayActorError", flush=True)
try:
    ray.get(c.add.remote(1), timeout=30)
except ray.exceptions.RayActorError:
    print("after death RayActorError", flush=True)

# The state API lists direct calls (reported in batches).
from ray.util.state import list_tasks  # noqa: E402

deadline = time.monotonic() + 30
rows = []
while time.monotonic() < deadline:
    rows = list_tasks(filters=[("name", "=", "Counter.add")], limit=10000)
    if len(rows) >= 100:
        break
    time.sleep(0.2)
print("state lists", len(rows) >= 100 and all(r.type == "ACTOR_TASK" for r in rows), flush=True)
failed = list_tasks(filters=[("name", "=", "Counter.boom")])
print("state failed", [(r.state, r.error_type) for r in failed], flush=True)
