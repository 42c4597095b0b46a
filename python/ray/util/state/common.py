"""The state objects the state API returns, after Ray's state schemas
(https://docs.ray.io/en/latest/ray-observability/reference/api.html#state-apis-schema).

Each object gives its columns as attributes (``actor.state``) and as keys (``actor["state"]``,
``actor.get("state")``), and ``asdict()`` returns them as a dict. A column of Ray's schema that
the answer does not carry (a detail column without ``detail=True``, or one this runtime does
not report) reads as None, as it does in Ray; columns the dashboard adds beyond the schema are
kept too.
"""

DEFAULT_RPC_TIMEOUT = 30
DEFAULT_LIMIT = 100


class StateSchema:
    """One row of a state list; see the module docstring."""

    #: Ray's columns for this resource, in Ray's order.
    _columns = ()

    def __init__(self, **fields):
        values = dict.fromkeys(self._columns)
        values.update(fields)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name):
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError("%s has no column %r; its columns are %s"
                             % (type(self).__name__, name, ", ".join(values)))

    def __setattr__(self, name, value):
        self._values[name] = value

    def __getitem__(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(key) from None

    def __setitem__(self, key, value):
        self._values[key] = value

    def __contains__(self, key):
        return key in self._values

    def __iter__(self):
        return iter(self._values)

    def get(self, key, default=None):
        return self._values.get(key, default)

    def keys(self):
        return self._values.keys()

    def asdict(self):
        return dict(self._values)

    def __eq__(self, other):
        return type(other) is type(self) and other._values == self._values

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in self._values.items()))


class ActorState(StateSchema):
    _columns = ("actor_id", "class_name", "state", "job_id", "name", "node_id", "pid", "ray_namespace",
                "serialized_runtime_env", "required_resources", "death_cause", "is_detached",
                "placement_group_id", "repr_name", "num_restarts")


class TaskState(StateSchema):
    _columns = ("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type",
                "func_or_class_name", "parent_task_id", "node_id", "worker_id", "worker_pid",
                "error_type", "language", "required_resources", "runtime_env_info",
                "placement_group_id", "events", "profiling_data", "creation_time_ms", "start_time_ms",
                "end_time_ms", "task_log_info", "error_message")


class NodeState(StateSchema):
    _columns = ("node_id", "node_ip", "is_head_node", "state", "state_message", "node_name",
                "resources_total", "labels", "start_time_ms", "end_time_ms")


class JobState(StateSchema):
    _columns = ("job_id", "submission_id", "entrypoint", "type", "status", "message", "error_type",
                "driver_info")


class ObjectState(StateSchema):
    _columns = ("object_id", "object_size", "task_status", "reference_type", "call_site", "type",
                "pid", "ip")


class PlacementGroupState(StateSchema):
    _columns = ("placement_group_id", "name", "creator_job_id", "state", "bundles", "is_detached",
                "stats")


class WorkerState(StateSchema):
    _columns = ("worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip", "pid",
                "exit_detail")
