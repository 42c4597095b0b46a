# Two nodes: the head (1 CPU) and a worker (2 CPUs, resource "big"). Work
# that does not fit the head runs on the worker; objects and actor calls
# cross between them.
import ray

ray.init()
here = ray.get_runtime_context().get_node_id()
print("alive nodes", sum(1 for n in ray.nodes() if n["Alive"]))


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

blob = ray.put(b"x" * (50 << 20))


@ray.remote(resources={"big": 1})
def size(b):
    return len(b)


print("50 MiB across nodes", ray.get(size.remote(blob)))


@ray.remote(resources={"big": 1})
def make():
    return ray.put("made on the worker")


print("fetched from the worker", ray.get(ray.get(make.remote())))


@ray.remote(resources={"big": 1})
def nested():
    return ray.get(where.remote(10))[1]


print("nested on the worker", ray.get(nested.remote()))


@ray.remote(resources={"big": 1})
class Counter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return self.n

    def node(self):
        return ray.get_runtime_context().get_node_id()


c = Counter.options(name="remote_counter").remote()
print("actor on the other node", ray.get(c.node.remote()) != here)
print("ordered remote calls", ray.get([c.inc.remote() for _ in range(20)]) == list(range(1, 21)))
print("named remote actor", ray.get(ray.get_actor("remote_counter").inc.remote()))


@ray.remote
class Local:
    def __init__(self):
        self.n = 100

    def inc(self):
        self.n += 1
        return self.n


local = Local.remote()


@ray.remote(resources={"big": 1})
def call_back(h):
    return ray.get([h.inc.remote() for _ in range(3)])


print("handle used on the other node", ray.get(call_back.remote(local)))

ray.kill(c)
try:
    ray.get(c.inc.remote())
except ray.exceptions.RayActorError:
    print("killed remote actor raises RayActorError")


@ray.remote(resources={"big": 1})
def shout():
    print("hello from the worker node")


ray.get(shout.remote())

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

other = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != here][0]


@ray.remote
def node_of():
    return ray.get_runtime_context().get_node_id()


pinned = node_of.options(scheduling_strategy=NodeAffinitySchedulingStrategy(other, soft=False))
print("node affinity", ray.get(pinned.remote()) == other)

# A 100 MB numpy array each way between the nodes. Its buffer travels out
# of band, so the array that arrives is a read-only view of the received
# bytes, as Ray's are.
import numpy as np

array = np.arange(100 * (1 << 20) // 8, dtype=np.float64)
array_ref = ray.put(array)


@ray.remote(resources={"big": 1})
def check_and_double(a):
    node = ray.get_runtime_context().get_node_id()
    return node, float(a.sum()), a.nbytes, a.flags.owndata, a * 2


node, got_sum, nbytes, owned, doubled = ray.get(check_and_double.remote(array_ref))
print("numpy 100 MB across nodes", node != here, got_sum == float(array.sum()), nbytes)
print("numpy array is a view of the transfer", not owned)
print("numpy array back from the worker", np.array_equal(doubled, array * 2), doubled.flags.writeable)
