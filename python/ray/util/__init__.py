"""ray.util: helpers built on the core API."""

from ray.util import scheduling_strategies
from ray.util.actor_pool import ActorPool
from ray.util.placement_group import (
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

__all__ = ["ActorPool", "get_current_placement_group", "get_placement_group", "placement_group",
           "placement_group_table", "remove_placement_group", "scheduling_strategies"]


def __getattr__(name):
    raise AttributeError(f"module 'ray.util' has no attribute '{name}' (this Ray runtime does not implement it)")
