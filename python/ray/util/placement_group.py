"""Placement groups: bundles of resources reserved together on nodes, which
tasks and actors then use through PlacementGroupSchedulingStrategy."""

from ray._private.object_ref import ObjectRef, new_id
from ray._private.worker import _timeout_ms, global_worker, serialize

VALID_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


class PlacementGroup:
    """A handle to a placement group (it pickles, so tasks can use it too)."""

    def __init__(self, id_hex, bundles=None):
        self._id = id_hex
        self._bundles = bundles

    @property
    def id(self):
        return PlacementGroupID(self._id)

    @property
    def bundle_specs(self):
        if self._bundles is None:
            self._bundles = _row(self._id)["bundles"]
        return [dict(b) for b in self._bundles]

    @property
    def bundle_count(self):
        return len(self.bundle_specs)

    def ready(self):
        """An ObjectRef that becomes ready when every bundle is reserved."""
        w = global_worker
        w.check_connected()
        ref = ObjectRef(new_id(), w.node_id)
        w.call("pg_ready", {"placement_group_id": self._id, "object_id": ref.hex(), "job": w.job()},
               [serialize(self)])
        return ref

    def wait(self, timeout_seconds=30):
        """True once the group is reserved; False when timeout_seconds pass first."""
        body, _ = global_worker.call("pg_wait", {"placement_group_id": self._id,
                                                 "timeout_ms": _timeout_ms(timeout_seconds)})
        return body["ready"]

    def __reduce__(self):
        return (PlacementGroup, (self._id, self._bundles))

    def __eq__(self, other):
        return isinstance(other, PlacementGroup) and other._id == self._id

    def __hash__(self):
        return hash(self._id)

    def __repr__(self):
        return f"PlacementGroup(id={self._id})"


class PlacementGroupID:
    def __init__(self, id_hex):
        self._id = id_hex

    def hex(self):
        return self._id

    def __eq__(self, other):
        return isinstance(other, PlacementGroupID) and other._id == self._id

    def __hash__(self):
        return hash(self._id)

    def __repr__(self):
        return f"PlacementGroupID({self._id})"


def placement_group(bundles, strategy="PACK", name="", lifetime=None, _soft_target_node_id=None,
                    bundle_label_selector=None, _max_cpu_fraction_per_node=None):
    """Reserves bundles ([{"CPU": 1}, ...]) on the cluster's nodes by strategy."""
    w = global_worker
    w.check_connected()
    if _soft_target_node_id is not None or bundle_label_selector or _max_cpu_fraction_per_node not in (None, 1, 1.0):
        raise NotImplementedError("placement_group(_soft_target_node_id, bundle_label_selector, "
                                  "_max_cpu_fraction_per_node) is not implemented by this Ray runtime")
    if not isinstance(bundles, list) or not bundles:
        raise ValueError("The placement group `bundles` argument cannot contain an empty list")
    checked = []
    for i, b in enumerate(bundles):
        if not isinstance(b, dict):
            raise ValueError(f"bundles[{i}] must be a dict of resource names to amounts, got {b!r}")
        if not b or all(v == 0 for v in b.values()):
            raise ValueError(f"Bundles cannot be an empty dictionary or resources with only 0 values. Bundles: {bundles}")
        for k, v in b.items():
            if not isinstance(k, str) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"bundles[{i}]: resource {k!r} must be a non-negative number, got {v!r}")
        checked.append({k: float(v) for k, v in b.items()})
    if strategy not in VALID_STRATEGIES:
        raise ValueError(f"Invalid placement group strategy {strategy}. Supported strategies are: {list(VALID_STRATEGIES)}.")
    if lifetime not in (None, "detached"):
        raise ValueError("Placement group `lifetime` argument must be either `None` or 'detached'. "
                         f"Got {lifetime}.")
    if not isinstance(name, str):
        raise TypeError(f"placement group name must be a string, got {name!r}")
    pg_id = new_id()[:36]
    w.call("create_pg", {"placement_group_id": pg_id, "name": name, "namespace": w.namespace or "",
                         "strategy": strategy, "bundles": checked, "job_id": w.job(),
                         "detached": lifetime == "detached"})
    return PlacementGroup(pg_id, checked)


def remove_placement_group(placement_group):
    """Releases the group's bundles."""
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(f"remove_placement_group() expects a PlacementGroup, got {type(placement_group).__name__}")
    global_worker.call("remove_pg", {"placement_group_id": placement_group._id})


def _rows():
    body, _ = global_worker.call("list_pgs")
    return body


def _row(pg_id):
    for r in _rows():
        if r["placement_group_id"] == pg_id:
            return r
    raise ValueError(f"placement group {pg_id} does not exist")


def _table_entry(r):
    return {
        "placement_group_id": r["placement_group_id"],
        "name": r["name"],
        "bundles": {i: dict(b) for i, b in enumerate(r["bundles"] or [])},
        "bundles_to_node_id": {i: n for i, n in enumerate(r["bundle_nodes"] or []) if n},
        "strategy": r["strategy"],
        "state": r["state"],
        "stats": {"scheduling_state": "INFEASIBLE" if r["infeasible"] else
                  ("FINISHED" if r["state"] == "CREATED" else r["state"])},
    }


def placement_group_table(placement_group=None):
    """One group's row, or every group's rows by id, as Ray shapes them."""
    global_worker.check_connected()
    if placement_group is not None:
        return _table_entry(_row(placement_group._id))
    return {r["placement_group_id"]: _table_entry(r) for r in _rows()}


def get_placement_group(placement_group_name):
    """The named group of the current namespace."""
    w = global_worker
    w.check_connected()
    for r in _rows():
        if r["name"] == placement_group_name and r["namespace"] == (w.namespace or "") and r["state"] != "REMOVED":
            return PlacementGroup(r["placement_group_id"], r["bundles"])
    raise ValueError(f"Failed to look up placement group with name: {placement_group_name}")


def get_current_placement_group():
    raise NotImplementedError("get_current_placement_group() is not implemented by this Ray runtime "
                              "(placement_group_capture_child_tasks is not either)")
