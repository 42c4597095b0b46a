# ray.get_runtime_context(), ray.nodes(), the cluster's resources, GPU ids
# and named actors in namespaces.
import time

import ray

ray.init(namespace="ctx")
ctx = ray.get_runtime_context()
print("driver ids", bool(ctx.get_job_id()), bool(ctx.get_node_id()), ctx.get_task_id(), ctx.get_actor_id())
print("namespace", ctx.namespace)
print("driver assigned", ctx.get_assigned_resources())


@ray.remote(num_cpus=2)
def ids():
    c = ray.get_runtime_context()
    return c.get_job_id(), bool(c.get_node_id()), bool(c.get_task_id()), c.get_actor_id(), c.get_assigned_resources()


job, node, task, actor, assigned = ray.get(ids.remote())
print("task ids", job == ctx.get_job_id(), node, task, actor)
print("assigned to the task", assigned)


@ray.remote(num_cpus=1, resources={"a": 1})
class Probe:
    def ids(self):
        c = ray.get_runtime_context()
        return c.get_actor_id(), c.get_assigned_resources(), ray.get_gpu_ids()


p = Probe.options(name="probe").remote()
actor_id, actor_assigned, actor_gpus = ray.get(p.ids.remote())
print("actor ids", bool(actor_id), actor_id == p._ray_actor_id)
print("assigned to the actor", dict(sorted(actor_assigned.items())))
print("gpu ids", ray.get_gpu_ids(), actor_gpus)
nodes = ray.nodes()
print("nodes", len(nodes), all(n["Alive"] for n in nodes))
print("cluster cpus", ray.cluster_resources()["CPU"])
# A finished task's lease lingers a moment for reuse before it goes back.
deadline = time.monotonic() + 30
while ray.available_resources().get("CPU") != 4.0 and time.monotonic() < deadline:
    time.sleep(0.05)
print("available after an actor holds one", ray.available_resources().get("CPU"))
print("get_actor in its namespace", ray.get_actor("probe") == p)
try:
    ray.get_actor("probe", namespace="elsewhere")
except ValueError as e:
    print("get_actor elsewhere", type(e).__name__)

# ray.util.queue: a producer task and the driver share one queue.
from ray.util.queue import Empty, Full, Queue  # noqa: E402

q = Queue(maxsize=3)


@ray.remote
def produce(q, n):
    for i in range(n):
        q.put(i)
    return "produced"


producer = produce.remote(q, 5)
items = [q.get(timeout=30) for _ in range(5)]
print("queue items", items, ray.get(producer))
try:
    q.get(timeout=0.1)
except Empty:
    print("queue empty raises Empty")
q.put_nowait_batch([1, 2, 3])
try:
    q.put_nowait(4)
except Full:
    print("queue full raises Full", q.qsize())
q.shutdown()
