"""ray.serve.grpc_util: the grpc_context a deployment method receives for a
gRPC call (request metadata in; status code, details and trailing metadata
out)."""

from rayk8s.serve._grpc import RayServegRPCContext


def __getattr__(name):
    raise AttributeError(f"ray.serve.grpc_util.{name} is not implemented by the rayk8s Serve SDK")


__all__ = ["RayServegRPCContext"]
