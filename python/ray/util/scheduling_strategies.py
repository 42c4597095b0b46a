"""Scheduling strategies for .options(scheduling_strategy=...)."""


class NodeAffinitySchedulingStrategy:
    """Run on the node with node_id; with soft=True another node may be
    used when that one has no room (or is gone)."""

    def __init__(self, node_id, soft, _spill_on_unavailable=False, _fail_on_unavailable=False):
        if _spill_on_unavailable or _fail_on_unavailable:
            raise NotImplementedError("NodeAffinitySchedulingStrategy's _spill_on_unavailable and _fail_on_unavailable "
                                      "are not implemented by this Ray runtime")
        if not isinstance(node_id, str) or not node_id:
            raise ValueError(f"NodeAffinitySchedulingStrategy: node_id must be a node id string, got {node_id!r}")
        self.node_id = node_id
        self.soft = bool(soft)

    def __repr__(self):
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"
