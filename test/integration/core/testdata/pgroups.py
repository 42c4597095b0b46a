# Placement groups on a head (1 CPU) and two workers (2 CPUs each):
# strategies, tasks and actors in bundles, removal, and a group no node set
# can hold. Also scheduling_strategy="SPREAD" for plain tasks.
import os
import tempfile
import time

import ray
from ray.util import get_placement_group
from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

ray.init(namespace="pgtest")


@ray.remote(num_cpus=1)
def node_of():
    return ray.get_runtime_context().get_node_id()


spread = ray.get([node_of.options(scheduling_strategy="SPREAD").remote() for _ in range(6)])
print("SPREAD tasks on", len(set(spread)), "nodes")


def nodes_of(pg):
    return sorted(set(placement_group_table(pg)["bundles_to_node_id"].values()))


pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
ray.get(pg.ready())
table = placement_group_table(pg)
print("strict spread", table["state"], len(nodes_of(pg)))

in_bundles = [ray.get(node_of.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
    pg, placement_group_bundle_index=i)).remote()) for i in range(2)]
print("tasks in their bundles", in_bundles == [table["bundles_to_node_id"][0], table["bundles_to_node_id"][1]])


@ray.remote(num_cpus=1)
def parent_in_bundle(pg):
    # The bundle has one CPU: the child gets it while the parent waits.
    return ray.get(node_of.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        pg, placement_group_bundle_index=0)).remote())


nested = parent_in_bundle.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=0)).remote(pg)
print("nested in one bundle", ray.get(nested) == table["bundles_to_node_id"][0])


@ray.remote(num_cpus=1)
class Where:
    def node(self):
        return ray.get_runtime_context().get_node_id()


w = Where.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=1)).remote()
print("actor in bundle 1", ray.get(w.node.remote()) == table["bundles_to_node_id"][1])

try:
    ray.get(node_of.options(num_cpus=2, scheduling_strategy=PlacementGroupSchedulingStrategy(pg)).remote())
except ray.exceptions.RaySystemError as e:
    print("too big for its bundle:", type(e).__name__, "cannot fit into any bundle" in str(e))

packed = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_PACK")
print("strict pack", "CREATED" if packed.wait(timeout_seconds=30) else "PENDING", len(nodes_of(packed)))
remove_placement_group(packed)
print("removed", placement_group_table(packed)["state"])


@ray.remote(num_cpus=1)
def linger(path):
    open(path, "w").close()
    time.sleep(120)


started = os.path.join(tempfile.mkdtemp(), "lingering")
lingering = linger.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=0)).remote(started)
deadline = time.monotonic() + 60
while not os.path.exists(started) and time.monotonic() < deadline:
    time.sleep(0.05)
# Removing a group stops the work in its bundles.
remove_placement_group(pg)
try:
    ray.get(lingering)
except ray.exceptions.TaskCancelledError as e:
    print("task in a removed group:", type(e).__name__)
try:
    ray.get(w.node.remote())
except ray.exceptions.RayActorError as e:
    print("actor in a removed group:", type(e).__name__)

spread_pg = placement_group([{"CPU": 0.5}, {"CPU": 0.5}], strategy="SPREAD")
ray.get(spread_pg.ready())
print("spread", len(nodes_of(spread_pg)))

packed_pg = placement_group([{"CPU": 0.5}, {"CPU": 0.5}], strategy="PACK", name="packer")
ray.get(packed_pg.ready())
print("pack", placement_group_table(packed_pg)["state"], len(nodes_of(packed_pg)))
print("named group found", get_placement_group("packer") == packed_pg)

# Four bundles on four different nodes: three nodes can never hold it.
wide = placement_group([{"CPU": 1}] * 4, strategy="STRICT_SPREAD", name="wide", lifetime="detached")
print("infeasible waits", wide.wait(timeout_seconds=0.5) is False,
      placement_group_table(wide)["stats"]["scheduling_state"])

try:
    placement_group([{"CPU": 1}], strategy="BOGUS")
except ValueError as e:
    print("bad strategy:", type(e).__name__ + ":", e)
try:
    node_of.options(scheduling_strategy=PlacementGroupSchedulingStrategy(packed_pg, placement_group_bundle_index=5)).remote()
except ValueError as e:
    print("bad bundle index:", type(e).__name__ + ":", e)
