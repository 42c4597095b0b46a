"""Ray Serve's API for rayk8s replicas (standard library only).

    from rayk8s import serve

    @serve.deployment(num_replicas=2, max_ongoing_requests=10)
    class Hello:
        def __init__(self, greeter):
            self.greeter = greeter          # a DeploymentHandle

        async def __call__(self, request):
            name = request.query_params.get("name", "world")
            return await self.greeter.remote(name)

    app = Hello.bind(Greeter.bind())

Deploy it with the Serve REST API (a RayService's serveConfigV2, or
PUT /api/serve/applications/) with import_path "module:app".
"""

from rayk8s.serve import exceptions
from rayk8s.serve._api import Application, Deployment, deployment
from rayk8s.serve._asgi import ingress
from rayk8s.serve._batching import batch
from rayk8s.serve._context import (
    DeploymentHandle,
    DeploymentResponse,
    DeploymentResponseGenerator,
    ReplicaContext,
    get_app_handle,
    get_deployment_handle,
    get_replica_context,
)
from rayk8s.serve._http import JSONResponse, PlainTextResponse, Request, Response, StreamingResponse
from rayk8s.serve._multiplex import get_multiplexed_model_id, multiplexed

__all__ = [
    "Application",
    "Deployment",
    "DeploymentHandle",
    "DeploymentResponse",
    "DeploymentResponseGenerator",
    "JSONResponse",
    "PlainTextResponse",
    "ReplicaContext",
    "Request",
    "Response",
    "StreamingResponse",
    "batch",
    "deployment",
    "exceptions",
    "get_app_handle",
    "get_deployment_handle",
    "get_multiplexed_model_id",
    "get_replica_context",
    "multiplexed",
    "delete",
    "ingress",
    "run",
    "shutdown",
    "start",
    "status",
]


def _driver_api():
    # ray.serve's driver API (it needs the ray package and cloudpickle, which
    # replicas may not import), loaded on first use.
    import importlib

    return importlib.import_module("ray.serve._driver")


def run(target, *args, **kwargs):
    """Deploy an application from a driver and return its ingress handle."""
    return _driver_api().run(target, *args, **kwargs)


def start(*args, **kwargs):
    """Connect to the cluster's Serve (starting a local head if none)."""
    return _driver_api().start(*args, **kwargs)


def status():
    """Every application's status."""
    return _driver_api().status()


def delete(name, _blocking=True):
    """Delete one application."""
    return _driver_api().delete(name, _blocking=_blocking)


def shutdown():
    """Delete every application."""
    return _driver_api().shutdown()




def __getattr__(name):
    raise AttributeError(f"serve.{name} is not implemented by the rayk8s Serve SDK")
