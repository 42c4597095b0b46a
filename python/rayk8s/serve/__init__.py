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
    "run",
]


def run(*_args, **_kwargs):
    """Not available: applications are deployed through the Serve REST API
    (a RayService, or PUT /api/serve/applications/)."""
    raise NotImplementedError("serve.run is not available in rayk8s; deploy with the Serve REST API (RayService serveConfigV2).")
