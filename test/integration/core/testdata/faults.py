# On a 1-CPU node: a task waiting for its child gives its CPU back, a
# killed worker's task is retried, and bad arguments are refused.
import os
import sys
import tempfile
import threading

import ray

ray.init()


@ray.remote
def leaf(x):
    return x + 1


@ray.remote
def middle(x):
    return ray.get(leaf.remote(x)) * 10


@ray.remote
def top(x):
    return ray.get(middle.remote(x)) + 1


print("nested on one CPU", ray.get(top.remote(1)))

marker = os.path.join(tempfile.mkdtemp(), "crashed-once")


@ray.remote(max_retries=2)
def flaky(path):
    if not os.path.exists(path):
        open(path, "w").close()
        os._exit(1)
    return "recovered"


print("retried after a killed worker", ray.get(flaky.remote(marker)))


@ray.remote(max_retries=0)
def crash():
    os._exit(1)


try:
    ray.get(crash.remote())
except ray.exceptions.WorkerCrashedError:
    print("no retries left: WorkerCrashedError")

try:
    leaf.remote(threading.Lock())
except TypeError as e:
    print("unpicklable argument:", str(e).split(" at 0x")[0], "|", str(e).split(">")[-1].strip())
print("cluster still works", ray.get(leaf.remote(41)))

# An ObjectRef this cluster never made (another cluster's or session's) is
# one clear error, not a get that waits forever.
try:
    ray.get(ray.ObjectRef("ab" * 28))
except ray.exceptions.ObjectLostError as e:
    print("foreign object:", e)
try:
    ray.get(ray.ObjectRef("cd" * 28, "ef" * 28))
except ray.exceptions.ObjectLostError as e:
    print("foreign owner:", str(e).split(": ")[0])
print("cluster still works after", ray.get(leaf.remote(1)))
