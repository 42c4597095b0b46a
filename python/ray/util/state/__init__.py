"""``ray.util.state``: list and get the cluster's actors, tasks, nodes, jobs, objects and
placement groups from the dashboard's state API (``/api/v0/...``), as Ray's state SDK does.

Supported: ``list_actors``, ``list_tasks``, ``list_nodes``, ``list_jobs``, ``list_objects``,
``list_placement_groups``, ``list_workers`` with ``address``, ``filters`` (``(key, "=" or "!=",
value)`` tuples, all of which must hold; text compares without regard to case), ``limit``,
``timeout``, ``detail`` and ``raise_on_missing_output``; ``get_actor``, ``get_task``,
``get_node``, ``get_placement_group``, ``get_objects``, ``get_worker``. Workers are the nodes'
running worker processes (exited ones are not kept). Summaries and logs are not implemented.
"""

from ray.util.state.api import (
    get_actor,
    get_node,
    get_objects,
    get_placement_group,
    get_task,
    get_worker,
    list_actors,
    list_jobs,
    list_nodes,
    list_objects,
    list_placement_groups,
    list_tasks,
    list_workers,
)
from ray.util.state.common import (
    ActorState,
    JobState,
    NodeState,
    ObjectState,
    PlacementGroupState,
    TaskState,
    WorkerState,
)
from ray.util.state.exception import RayStateApiException, ServerUnavailable

__all__ = [
    "ActorState", "JobState", "NodeState", "ObjectState", "PlacementGroupState", "RayStateApiException",
    "ServerUnavailable", "TaskState", "WorkerState", "get_actor", "get_node", "get_objects",
    "get_placement_group", "get_task", "get_worker", "list_actors", "list_jobs", "list_nodes",
    "list_objects", "list_placement_groups", "list_tasks", "list_workers",
]


def __getattr__(name):
    raise AttributeError(f"module 'ray.util.state' has no attribute '{name}' (this Ray runtime does not implement it)")
