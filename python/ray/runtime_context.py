"""ray.get_runtime_context()."""

from ray._private.worker import current_resources, current_task, global_worker


class RuntimeContext:
    def get_job_id(self):
        return global_worker.job()

    def get_node_id(self):
        return global_worker.node_id

    def get_task_id(self):
        return current_task.get()

    def get_actor_id(self):
        return global_worker.actor_id

    @property
    def namespace(self):
        return global_worker.namespace

    @property
    def gcs_address(self):
        return global_worker.gcs_address

    def get_assigned_resources(self):
        """The resources of the running task or actor ({} in a driver)."""
        return {k: float(v) for k, v in (current_resources.get() or {}).items()}

    def get(self):
        return {"job_id": self.get_job_id(), "node_id": self.get_node_id(), "namespace": self.namespace}


def get_runtime_context():
    global_worker.check_connected()
    return RuntimeContext()
