"""ray.util: helpers built on the core API."""

from ray.util import scheduling_strategies
from ray.util.actor_pool import ActorPool

__all__ = ["ActorPool", "scheduling_strategies"]


def __getattr__(name):
    raise AttributeError(f"module 'ray.util' has no attribute '{name}' (this Ray runtime does not implement it)")
