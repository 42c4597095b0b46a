# Two nodes with token authentication: the head (1 CPU) and a worker
# (resource "big"). Tasks, objects and actor calls cross between their
# agents, which require the cluster's token of each other.
import ray

ray.init()
here = ray.get_runtime_context().get_node_id()


@ray.remote(resources={"big": 1})
def where(x):
    return ray.get_runtime_context().get_node_id(), x + 1


node, value = ray.get(where.remote(1))
print("task on the other node", node != here, value)

numbers = ray.put(list(range(1000)))


@ray.remote(resources={"big": 1})
def total(xs):
    return sum(xs)


print("object argument across nodes", ray.get(total.remote(numbers)))


@ray.remote(resources={"big": 1})
def make():
    return ray.put("made on the worker")


print("fetched from the worker", ray.get(ray.get(make.remote())))


@ray.remote(resources={"big": 1})
class Counter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return self.n

    def node(self):
        return ray.get_runtime_context().get_node_id()


c = Counter.remote()
print("actor on the other node", ray.get(c.node.remote()) != here)
print("remote actor calls", ray.get([c.inc.remote() for _ in range(5)]))
ray.kill(c)

# The Serve SDK deploys and reads through the dashboard, which refuses calls without the token.
from ray import serve  # noqa: E402

print("serve status reachable with the token", isinstance(serve.status().applications, dict))
