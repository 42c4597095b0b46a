# Objects held by a node that dies: ray.get raises OwnerDiedError (an
# ObjectLostError), as Ray does when an object's owner is gone.
import sys
import time

import ray

ray.init()


@ray.remote(resources={"b": 1})
def make():
    # ray.put in a task: the object lives on the worker node "b".
    return [ray.put(b"x" * 1000), ray.put(b"y" * 1000)]


first, second = ray.get(make.remote())
print("object on the worker node", len(ray.get(first)), flush=True)
b_node = [n["NodeID"] for n in ray.nodes() if "b" in n["Resources"]][0]
print("ready to lose the node", flush=True)
sys.stdin.readline()
deadline = time.monotonic() + 60
dead = False
while time.monotonic() < deadline and not dead:
    dead = any(n["NodeID"] == b_node and not n["Alive"] for n in ray.nodes())
    time.sleep(0.05)
print("node seen dead", dead)
try:
    ray.get(second, timeout=30)
except ray.exceptions.OwnerDiedError as e:
    print("lost object:", type(e).__name__, isinstance(e, ray.exceptions.ObjectLostError))
    print(e)


@ray.remote
def one():
    return 1


print("cluster still works", ray.get(one.remote()) + 1)
