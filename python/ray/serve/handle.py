"""ray.serve.handle: calling deployments from code."""

from rayk8s.serve._context import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator


def __getattr__(name):
    raise AttributeError(f"ray.serve.handle.{name} is not implemented by the rayk8s Serve SDK")


__all__ = ["DeploymentHandle", "DeploymentResponse", "DeploymentResponseGenerator"]
