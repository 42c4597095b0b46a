"""gRPC calls to a Python replica over a real Unix socket: the request
decoded with the user's generated classes, grpc_context in and out,
unary-stream answers and an unknown method."""

import asyncio
import json
import os
import struct
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "python", "examples"))

try:
    import grpc  # noqa: F401
    import greeter_pb2
    import greeter
except ImportError as e:  # Debian's python3-grpcio and python3-protobuf
    raise unittest.SkipTest(f"gRPC is not installed: {e}")

from rayk8s.serve import _context, _replica, _wire  # noqa: E402

SERVICERS = ["greeter_pb2_grpc.add_GreeterServicer_to_server"]


def messages(data):
    out = []
    while data:
        (n,) = struct.unpack(">I", data[:4])
        out.append(data[4 : 4 + n])
        data = data[4 + n :]
    return out


class GRPCReplicaTest(unittest.TestCase):
    def test_grpc(self):
        asyncio.run(self._run())

    async def _run(self):
        loop = asyncio.get_running_loop()
        dep = greeter.Greeter.func_or_class()
        replica = _replica.Replica("app#Greeter#1", "app", "Greeter", dep, 4, 0.0, loop)
        _context._set_runtime(replica)
        try:
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "r.sock")
                server = await asyncio.start_unix_server(replica.on_connect, path=path)
                reader, writer = await asyncio.open_unix_connection(path)
                conn = _wire.Conn(reader, writer, dialer=True, on_open=lambda st: None)
                try:
                    await self._unary(conn)
                    await self._status_from_context(conn)
                    await self._stream(conn)
                    await self._unknown_method(conn)
                finally:
                    conn.close()
                    server.close()
        finally:
            _context._set_runtime(None)

    async def call(self, conn, method, request):
        meta = {"kind": _wire.KIND_GRPC, "method": method, "path": f"/greeter.Greeter/{method}",
                "headers": [["caller", "test"], [":authority", "x"]], "grpc_servicer_functions": SERVICERS}
        s = conn.open()
        s.send((_wire.OPEN, _wire.dumps(meta)), (_wire.DATA, request.SerializeToString()), (_wire.END, b""))
        frames = []
        while True:
            ftype, payload = await asyncio.wait_for(s.recv(), 5)
            frames.append((ftype, payload))
            if ftype in (_wire.END, _wire.ERROR):
                break
        s.close()
        return frames

    def body_and_end(self, frames):
        self.assertEqual(frames[0][0], _wire.ACCEPT)
        self.assertEqual(frames[1][0], _wire.HEAD, frames)
        data = b"".join(p for t, p in frames if t == _wire.DATA)
        self.assertEqual(frames[-1][0], _wire.END)
        return [greeter_pb2.HelloReply.FromString(m) for m in messages(data)], json.loads(frames[-1][1])

    async def _unary(self, conn):
        replies, end = self.body_and_end(await self.call(conn, "SayHello", greeter_pb2.HelloRequest(name="Ada")))
        self.assertEqual([r.message for r in replies], ["Hello, Ada! (from test)"])
        self.assertEqual(end["grpc"], {"code": 0, "details": "", "trailers": [["greeted", "Ada"]]})

    async def _status_from_context(self, conn):
        _, end = self.body_and_end(await self.call(conn, "SayHello", greeter_pb2.HelloRequest(name="")))
        self.assertEqual(end["grpc"]["code"], grpc.StatusCode.INVALID_ARGUMENT.value[0])
        self.assertEqual(end["grpc"]["details"], "name: must not be empty")

    async def _stream(self, conn):
        replies, end = self.body_and_end(await self.call(conn, "SayHelloStream", greeter_pb2.HelloRequest(name="Bo", count=3)))
        self.assertEqual([r.message for r in replies], ["Hello, Bo #0", "Hello, Bo #1", "Hello, Bo #2"])
        self.assertEqual(end["grpc"]["code"], 0)

    async def _unknown_method(self, conn):
        frames = await self.call(conn, "SayGoodbye", greeter_pb2.HelloRequest(name="x"))
        self.assertEqual(frames[-1][0], _wire.ERROR)
        err = json.loads(frames[-1][1])
        self.assertEqual(err["kind"], _wire.ERR_NOT_FOUND)
        self.assertIn("SayGoodbye", err["message"])
        self.assertIn("Greeter", err["message"])


if __name__ == "__main__":
    unittest.main()
