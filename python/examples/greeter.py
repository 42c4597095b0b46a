"""A gRPC service on Serve: `import_path: greeter:app`, with
`grpc_options.grpc_servicer_functions: [greeter_pb2_grpc.add_GreeterServicer_to_server]`.

The proxy on port 9000 forwards /greeter.Greeter/<Method> to the method of
the same name; requests arrive decoded as greeter_pb2 messages. SayHello is
unary, SayHelloStream streams one reply per greeting. Both read the
request's metadata and set trailing metadata through grpc_context.
"""

import asyncio
import os

import grpc

from greeter_pb2 import HelloReply
from rayk8s import serve


@serve.deployment(max_ongoing_requests=32)
class Greeter:
    def __init__(self, greeting="Hello"):
        self.greeting = greeting
        self.replica_id = os.environ.get("RAYK8S_SERVE_REPLICA_ID", "")

    def reconfigure(self, config):
        self.greeting = config.get("greeting", self.greeting)

    def SayHello(self, request, grpc_context):
        if not request.name:
            grpc_context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
            grpc_context.set_details("name: must not be empty")
            return HelloReply()
        caller = dict(grpc_context.invocation_metadata()).get("caller", "")
        grpc_context.set_trailing_metadata([("greeted", request.name)])
        suffix = f" (from {caller})" if caller else ""
        return HelloReply(message=f"{self.greeting}, {request.name}!{suffix}", replica_id=self.replica_id)

    async def SayHelloStream(self, request):
        for i in range(max(request.count, 1)):
            if i:
                await asyncio.sleep(0.01)
            yield HelloReply(message=f"{self.greeting}, {request.name} #{i}", replica_id=self.replica_id)


app = Greeter.bind()
