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


class PlacementGroupSchedulingStrategy:
    """Run in a placement group's bundle (placement_group_bundle_index -1:
    any bundle with room)."""

    def __init__(self, placement_group, placement_group_bundle_index=-1, placement_group_capture_child_tasks=None):
        from ray.util.placement_group import PlacementGroup
        if not isinstance(placement_group, PlacementGroup):
            raise TypeError(f"PlacementGroupSchedulingStrategy: placement_group must be a PlacementGroup, "
                            f"got {type(placement_group).__name__}")
        if not isinstance(placement_group_bundle_index, int) or placement_group_bundle_index < -1:
            raise ValueError(f"placement_group_bundle_index must be an int >= -1, got {placement_group_bundle_index!r}")
        if placement_group_capture_child_tasks:
            raise NotImplementedError("placement_group_capture_child_tasks is not implemented by this Ray runtime")
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks

    def __repr__(self):
        return (f"PlacementGroupSchedulingStrategy(placement_group={self.placement_group!r}, "
                f"placement_group_bundle_index={self.placement_group_bundle_index})")
