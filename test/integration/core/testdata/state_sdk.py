# ray.util.state against the cluster state.py fills (two actors, square
# FINISHED, boom FAILED, a placement group, an object). The dashboard comes
# from RAY_API_SERVER_ADDRESS; argv[1] is the placement group's ID. Prints
# one line per check and "state sdk ok" at the end.
import os
import sys

from ray.util.state import (
    RayStateApiException,
    ServerUnavailable,
    get_actor,
    get_node,
    get_placement_group,
    get_task,
    list_actors,
    list_jobs,
    list_nodes,
    list_objects,
    list_placement_groups,
    list_tasks,
    get_worker,
    list_workers,
)

pg_id = sys.argv[1]


def check(what, cond, got):
    if not cond:
        sys.exit("FAILED %s: got %r" % (what, got))
    print("ok", what, flush=True)


actors = list_actors()
check("two actors", sorted(a.class_name for a in actors) == ["Keeper", "Spare"], actors)
alive = list_actors(filters=[("state", "=", "ALIVE"), ("class_name", "=", "keeper")])
check("filters AND, text without case", [a.name for a in alive] == ["keeper"], alive)
check("dict-style access", alive[0]["state"] == "ALIVE" and alive[0].get("name") == "keeper", alive)
check("no detail columns without detail", alive[0].is_detached is None, alive[0])
detailed = list_actors(filters=[("name", "=", "keeper")], detail=True)
check("detail columns with detail", detailed[0].is_detached is False and detailed[0].num_restarts == 0, detailed)
others = list_actors(filters=[("name", "!=", "keeper")])
check("!= filter", [a.name for a in others] == ["spare"], others)
check("int filter", [a.name for a in list_actors(filters=[("pid", "=", alive[0].pid)])] == ["keeper"], alive[0].pid)
check("limit", len(list_actors(limit=1)) == 1, None)

failed = list_tasks(filters=[("state", "!=", "FINISHED"), ("name", "=", "boom")])
check("failed task", len(failed) == 1 and failed[0].state == "FAILED" and failed[0].error_type == "TASK_EXECUTION_EXCEPTION", failed)
square = list_tasks(filters=[("func_or_class_name", "=", "square")])
check("finished task", [t.state for t in square] == ["FINISHED"], square)
one = get_task(square[0].task_id)
check("get_task", one is not None and one.task_id == square[0].task_id and one.language == "PYTHON", one)

nodes = list_nodes(filters=[("is_head_node", "=", True)])
check("head node by a bool filter", len(nodes) == 1 and nodes[0].state == "ALIVE", nodes)
check("get_node", get_node(nodes[0].node_id).node_id == nodes[0].node_id, nodes)
check("get_node of nothing", get_node("f" * 56) is None, None)

keeper = get_actor(alive[0].actor_id)
check("get_actor", keeper.name == "keeper" and keeper.class_name == "Keeper", keeper)

pgs = list_placement_groups(filters=[("state", "=", "created")])
check("placement groups", [p.placement_group_id for p in pgs] == [pg_id] and pgs[0].name == "statepg", pgs)
pg = get_placement_group(pg_id)
check("get_placement_group with bundles", pg.bundles[0]["unit_resources"] == {"CPU": 1.0}, pg)

check("objects", len(list_objects(filters=[("object_size", "!=", 0)])) >= 1, None)
workers = list_workers(filters=[("is_alive", "=", "true")])
actor_pids = {a.pid for a in list_actors(filters=[("state", "=", "ALIVE")])}
check("the actors' processes among the workers", actor_pids and actor_pids <= {w.pid for w in workers}
      and all(w.worker_type == "WORKER" for w in workers), (actor_pids, workers))
one = get_worker(workers[0].worker_id)
check("get_worker", one is not None and one.pid == workers[0].pid, one)
check("jobs", any(j.type == "DRIVER" and j.status == "RUNNING" for j in list_jobs(filters=[("type", "=", "driver")])), None)

for call, want in [
    (lambda: list_actors(filters=[("colour", "=", "red")]), 'filter column "colour"'),
    (lambda: list_tasks(filters=[("worker_id", "=", "w")]), "does not report"),
]:
    try:
        call()
        sys.exit("FAILED: no RayStateApiException for %s" % want)
    except RayStateApiException as e:
        check("refused: " + want, want in str(e), str(e))
for call, exc, want in [
    (lambda: list_actors(filters=[("state", ">", "A")]), ValueError, "predicate '>'"),
    (lambda: list_actors(filters=[("state", "=")]), ValueError, "not a (key, predicate, value) tuple"),
    (lambda: list_actors(limit=0), ValueError, "limit"),
    (lambda: list_actors(detail="yes"), TypeError, "detail"),
    (lambda: list_actors(exclude_driver=True), TypeError, "exclude_driver"),
]:
    try:
        call()
        sys.exit("FAILED: no %s for %s" % (exc.__name__, want))
    except exc as e:
        check("bad argument: " + want, want in str(e), str(e))

explicit = list_nodes(address=os.environ["RAY_API_SERVER_ADDRESS"])
check("explicit address", len(explicit) == 1, explicit)
try:
    list_nodes(address="http://127.0.0.1:9")
    sys.exit("FAILED: no ServerUnavailable")
except ServerUnavailable as e:
    check("unreachable dashboard", "127.0.0.1:9" in str(e), str(e))
print("state sdk ok", flush=True)
