# ray.cancel: a queued task never runs, a running one gets KeyboardInterrupt,
# force=True kills its worker, and a cancelled parent takes its children
# along; ray.get of each raises TaskCancelledError.
import asyncio
import os
import sys
import tempfile
import time

import ray

ray.init()
sys.stdout.reconfigure(line_buffering=True)
d = tempfile.mkdtemp()


def wait_for(path, what):
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


@ray.remote
def sleepy(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        open(path + ".interrupted", "w").close()
        raise
    return "finished"


# Queued: the one "a" slot of the cluster is busy, so the second task waits.
blocker_path = os.path.join(d, "blocker")
blocker = sleepy.options(resources={"a": 1}).remote(blocker_path)
wait_for(blocker_path, "the blocker")
queued_path = os.path.join(d, "queued")
queued = sleepy.options(resources={"a": 1}).remote(queued_path)
ray.cancel(queued)
try:
    ray.get(queued)
except ray.exceptions.TaskCancelledError as e:
    print("queued task cancelled:", type(e).__name__)
ray.cancel(blocker)
try:
    ray.get(blocker)
except ray.exceptions.TaskCancelledError:
    pass
print("queued task never ran", not os.path.exists(queued_path))

# Running: interrupted where it is (in time.sleep).
running_path = os.path.join(d, "running")
running = sleepy.remote(running_path)
wait_for(running_path, "the running task")
ray.cancel(running)
try:
    ray.get(running)
except ray.exceptions.TaskCancelledError as e:
    print("running task cancelled:", type(e).__name__)
print("worker saw KeyboardInterrupt", os.path.exists(running_path + ".interrupted"))


@ray.remote
def stubborn(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    while True:
        try:
            time.sleep(120)
        except KeyboardInterrupt:
            pass


forced_path = os.path.join(d, "forced")
forced = stubborn.options(resources={"b": 1}).remote(forced_path)
wait_for(forced_path, "the stubborn task")
ray.cancel(forced, force=True)
try:
    ray.get(forced)
except ray.exceptions.TaskCancelledError as e:
    print("forced:", type(e).__name__)
pid = int(open(forced_path).read())
deadline = time.monotonic() + 30
gone = False
while time.monotonic() < deadline and not gone:
    try:
        os.kill(pid, 0)
        time.sleep(0.05)
    except ProcessLookupError:
        gone = True
print("forced worker gone", gone)


@ray.remote
def parent(path):
    return ray.get(sleepy.remote(path))


child_path = os.path.join(d, "child")
p = parent.remote(child_path)
wait_for(child_path, "the child task")
ray.cancel(p)
try:
    ray.get(p)
except ray.exceptions.TaskCancelledError as e:
    print("parent cancelled:", type(e).__name__)
deadline = time.monotonic() + 30
while time.monotonic() < deadline and not os.path.exists(child_path + ".interrupted"):
    time.sleep(0.05)
print("child cancelled with its parent", os.path.exists(child_path + ".interrupted"))


# A ref owned by another node (a task submitted by a task there): the
# cancel goes to that node.
@ray.remote(resources={"b": 0.5})
def spawn(path):
    return [sleepy.remote(path)]


inner_path = os.path.join(d, "inner")
inner = ray.get(spawn.remote(inner_path))[0]
wait_for(inner_path, "the inner task")
ray.cancel(inner)
try:
    ray.get(inner)
except ray.exceptions.TaskCancelledError as e:
    print("task owned by another node cancelled:", type(e).__name__)


@ray.remote
def add(a, b):
    return a + b


done = add.remote(3, 4)
print("finished task keeps its value", ray.get(done))
ray.cancel(done)
assert ray.get(done) == 7

try:
    ray.cancel("not a ref")
except TypeError as e:
    print("cancel of a non-ref:", type(e).__name__ + ":", e)


@ray.remote
class Sleeper:
    async def nap(self):
        await asyncio.sleep(120)
        return "woke"

    async def ping(self):
        return "pong"


sleeper = Sleeper.options(resources={"b": 0.5}).remote()  # on another node
nap = sleeper.nap.remote()
ray.get(sleeper.ping.remote())  # the nap started before this ran
ray.cancel(nap)
try:
    ray.get(nap)
except ray.exceptions.TaskCancelledError as e:
    print("running async actor call cancelled:", type(e).__name__)
print("async actor still serves", ray.get(sleeper.ping.remote()))


@ray.remote
class Gatekeeper:
    def block(self, started, gate):
        open(started, "w").close()
        wait_for(gate, "the gate")
        return "unblocked"

    def quick(self):
        return "quick"


keeper = Gatekeeper.remote()
started, gate = os.path.join(d, "started"), os.path.join(d, "gate")
first = keeper.block.remote(started, gate)
second = keeper.quick.remote()
wait_for(started, "the blocking call")
ray.cancel(second)
open(gate, "w").close()
print("running sync actor call finishes", ray.get(first))
try:
    ray.get(second)
except ray.exceptions.TaskCancelledError as e:
    print("queued actor call cancelled:", type(e).__name__)
try:
    ray.cancel(keeper.quick.remote(), force=True)
except ValueError as e:
    print("cancel of an actor task:", type(e).__name__ + ":", e)
print("cluster still works", ray.get(add.remote(1, 2)))
