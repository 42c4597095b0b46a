"""ray: Ray's import paths on the rayk8s runtime (standard library only).

For now this package holds only what KubeRay runs inside a Ray image that is not a Ray
program: ``ray._private.gcs_utils.cleanup_redis_storage``, which the operator's Redis
clean-up Job calls when a RayCluster with GCS fault tolerance is deleted.
"""
