# An actor that runs on another node than its owner (the driver's node)
# ends when its handles are gone, and the owner's state API says so with
# Ray's cause; so does one that crashes there.
import gc
import os
import sys
import time

import ray
from ray.util.state import list_actors

ray.init()


@ray.remote(resources={"a": 1}, num_cpus=0)
class Remote:
    def node(self):
        return ray.get_runtime_context().get_node_id()

    def crash(self):
        os._exit(1)


def dead_with(actor_id, within=15.0):
    deadline = time.time() + within
    while time.time() < deadline:
        gc.collect()
        for a in list_actors(address=sys.argv[1], filters=[("actor_id", "=", actor_id)], detail=True):
            if a.state == "DEAD":
                return a.death_cause
        time.sleep(0.1)
    return None


r = Remote.remote()
print("runs on another node", ray.get(r.node.remote()) != ray.get_runtime_context().get_node_id())
rid = r._ray_actor_id
del r
print("remote actor out of scope:", dead_with(rid))

c = Remote.remote()
ray.get(c.node.remote())
cid = c._ray_actor_id
try:
    ray.get(c.crash.remote())
except ray.exceptions.RayActorError:
    pass
print("remote actor crashed:", dead_with(cid) is not None)
