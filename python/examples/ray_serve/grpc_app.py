# Ray Serve's gRPC guide as a driver script: serve.start with gRPCOptions
# naming the generated servicer function, a deployment answering the
# service with grpc_context, and the built-in RayServeAPIService (Healthz,
# ListApplications) called with Ray's generated stub through the gRPC proxy.
# The generated greeter_pb2 modules must be importable by the driver and by
# the replicas (PYTHONPATH or a working_dir), as the guide says.
import os

import grpc
from greeter_pb2 import HelloReply, HelloRequest
from greeter_pb2_grpc import GreeterStub

from ray import serve
from ray.serve.config import gRPCOptions
from ray.serve.generated.serve_pb2 import HealthzRequest, ListApplicationsRequest
from ray.serve.generated.serve_pb2_grpc import RayServeAPIServiceStub
from ray.serve.grpc_util import RayServegRPCContext

GRPC_PORT = int(os.environ.get("RAYK8S_SERVE_GRPC_PORT", "9000"))


@serve.deployment
class Greeter:
    def SayHello(self, request: HelloRequest, grpc_context: RayServegRPCContext) -> HelloReply:
        if not request.name:
            grpc_context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
            grpc_context.set_details("name is required")
            return HelloReply()
        grpc_context.set_trailing_metadata([("greeted", request.name)])
        return HelloReply(message=f"Hello {request.name}!")


if __name__ == "__main__":
    grpc_options = gRPCOptions(port=GRPC_PORT, grpc_servicer_functions=["greeter_pb2_grpc.add_GreeterServicer_to_server"])
    serve.start(grpc_options=grpc_options)
    serve.run(Greeter.bind(), name="greeter", route_prefix="/greeter")

    channel = grpc.insecure_channel(f"localhost:{GRPC_PORT}")
    stub = RayServeAPIServiceStub(channel)
    response = stub.ListApplications(ListApplicationsRequest())
    print("applications:", sorted(response.application_names))
    response = stub.Healthz(HealthzRequest())
    print("health:", response.message)

    greeter = GreeterStub(channel)
    metadata = (("application", "greeter"),)
    reply, call = greeter.SayHello.with_call(HelloRequest(name="ray"), metadata=metadata)
    print("hello:", reply.message, dict(call.trailing_metadata())["greeted"])
    try:
        greeter.SayHello(HelloRequest(), metadata=metadata)
    except grpc.RpcError as e:
        print("error:", e.code().name, e.details())
    try:
        serve.start(grpc_options=gRPCOptions(port=GRPC_PORT + 1))
    except RuntimeError as e:
        print("restart:", str(e).split(";")[0])
    serve.shutdown()
