"""Streamed answers of a Python replica: HTTP chunks, flow-control credit,
cancellation and streamed handle calls, over a real Unix socket."""

import asyncio
import json
import os
import pickle
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rayk8s import serve  # noqa: E402
from rayk8s.serve import _context, _replica, _wire  # noqa: E402


class Streamer:
    def __init__(self):
        self.gate = asyncio.Event()
        self.produced = []
        self.closed = asyncio.Event()

    async def __call__(self, request):
        if request.path == "/gated":
            return self.gated()
        if request.path == "/many":
            return self.many()
        if request.path == "/sync":
            return iter_sync()
        if request.path == "/response":
            return serve.StreamingResponse(self.gated(), status_code=201, media_type="text/event-stream")
        return "plain"

    async def gated(self):
        yield "first "
        await self.gate.wait()
        yield b"second"

    async def many(self):
        try:
            for i in range(1000):
                self.produced.append(i)
                yield "x"
        finally:
            self.closed.set()

    async def relay(self, n):
        gen = serve.get_app_handle("other").options(stream=True).remote(n)
        return [x async for x in gen]

    async def tokens(self, n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise KeyError(f"token {i}")
            yield {"token": i}


def iter_sync():
    yield "s1"
    yield "s2"


async def settle():
    for _ in range(50):
        await asyncio.sleep(0)


class StreamingReplicaTest(unittest.TestCase):
    def test_streaming(self):
        asyncio.run(self._run())

    async def _run(self):
        loop = asyncio.get_running_loop()
        dep = Streamer()
        replica = _replica.Replica("app#Streamer#1", "app", "Streamer", dep, 4, 0.0, loop)
        _context._set_runtime(replica)
        try:
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "r.sock")
                server = await asyncio.start_unix_server(replica.on_connect, path=path)
                reader, writer = await asyncio.open_unix_connection(path)
                self.credits = []
                conn = _wire.Conn(reader, writer, dialer=True, on_open=lambda st: asyncio.ensure_future(self.answer(st)))
                try:
                    await self._http_chunks_before_the_end(conn, dep)
                    await self._window_and_cancel(conn, dep)
                    await self._sync_generator_and_streaming_response(conn, dep)
                    await self._streamed_handle_call(conn)
                    await self._streaming_handle(conn)
                finally:
                    conn.close()
                    server.close()
        finally:
            _context._set_runtime(None)

    async def answer(self, st):
        """Play the agent for the replica's own streamed handle call."""
        meta = json.loads((await st.recv())[1])
        body = b""
        while True:
            ftype, p = await st.recv()
            if ftype == _wire.END:
                break
            body += p
        (n,), _ = pickle.loads(body)
        self.assertTrue(meta["stream"])
        self.assertEqual(meta["window"], _wire.DEFAULT_WINDOW)
        st.send((_wire.HEAD, _wire.dumps({"status": 200, "headers": [["x-serve-encoding", "pickle-stream"]]})))
        for i in range(n):
            st.send((_wire.DATA, pickle.dumps(("ok", f"item{i}"))))
        st.send((_wire.END, b""))
        try:
            while True:
                ftype, p = await st.recv()
                if ftype == _wire.CREDIT:
                    self.credits.append(_wire.decode_credit(p))
        except _wire.ConnectionClosed:
            pass

    async def _streaming_handle(self, conn):
        s = self.open(conn, {"kind": "handle", "method": "relay", "encoding": "pickle"}, pickle.dumps(((3,), {})))
        await self.recv(s, _wire.ACCEPT)
        head = json.loads(await self.recv(s, _wire.HEAD))
        self.assertEqual(head["status"], 200)
        self.assertEqual(pickle.loads(await self.recv(s, _wire.DATA)), ["item0", "item1", "item2"])
        await self.recv(s, _wire.END)
        s.close()
        # The caller returned credit for each item it consumed.
        self.assertEqual(len(self.credits), 3)

    def open(self, conn, meta, body=b""):
        s = conn.open()
        s.send((_wire.OPEN, _wire.dumps(meta)), (_wire.DATA, body), (_wire.END, b""))
        return s

    async def recv(self, s, want):
        ftype, payload = await asyncio.wait_for(s.recv(), 5)
        self.assertEqual(ftype, want, payload)
        return payload

    async def _http_chunks_before_the_end(self, conn, dep):
        s = self.open(conn, {"kind": "http", "path": "/gated"})
        await self.recv(s, _wire.ACCEPT)
        head = json.loads(await self.recv(s, _wire.HEAD))
        self.assertEqual(head["status"], 200)
        # The first chunk arrives while the generator waits for the gate.
        self.assertEqual(await self.recv(s, _wire.DATA), b"first ")
        dep.gate.set()
        self.assertEqual(await self.recv(s, _wire.DATA), b"second")
        await self.recv(s, _wire.END)
        s.close()

    async def _window_and_cancel(self, conn, dep):
        s = self.open(conn, {"kind": "http", "path": "/many", "window": 2})
        await self.recv(s, _wire.ACCEPT)
        await self.recv(s, _wire.HEAD)
        await self.recv(s, _wire.DATA)
        await self.recv(s, _wire.DATA)
        await settle()
        # Two bytes of window: the third item waits for credit.
        self.assertLessEqual(len(dep.produced), 3)
        s.send((_wire.CREDIT, _wire.credit(1)))
        await self.recv(s, _wire.DATA)
        await settle()
        self.assertLessEqual(len(dep.produced), 4)
        s.send((_wire.CANCEL, b""))
        await asyncio.wait_for(dep.closed.wait(), 5)
        s.close()

    async def _sync_generator_and_streaming_response(self, conn, dep):
        s = self.open(conn, {"kind": "http", "path": "/sync"})
        await self.recv(s, _wire.ACCEPT)
        await self.recv(s, _wire.HEAD)
        self.assertEqual(await self.recv(s, _wire.DATA), b"s1")
        self.assertEqual(await self.recv(s, _wire.DATA), b"s2")
        await self.recv(s, _wire.END)
        s.close()
        s = self.open(conn, {"kind": "http", "path": "/response"})
        await self.recv(s, _wire.ACCEPT)
        head = json.loads(await self.recv(s, _wire.HEAD))
        self.assertEqual(head["status"], 201)
        self.assertIn(["content-type", "text/event-stream"], head["headers"])
        s.close()

    async def _streamed_handle_call(self, conn):
        meta = {"kind": "handle", "method": "tokens", "encoding": "pickle", "stream": True}
        s = self.open(conn, meta, pickle.dumps(((3,), {})))
        await self.recv(s, _wire.ACCEPT)
        await self.recv(s, _wire.HEAD)
        items = [pickle.loads(await self.recv(s, _wire.DATA)) for _ in range(3)]
        self.assertEqual(items, [("ok", {"token": 0}), ("ok", {"token": 1}), ("ok", {"token": 2})])
        await self.recv(s, _wire.END)
        s.close()
        # An exception of the generator reaches the caller as an item.
        s = self.open(conn, meta, pickle.dumps(((3,), {"fail_at": 1})))
        await self.recv(s, _wire.ACCEPT)
        await self.recv(s, _wire.HEAD)
        self.assertEqual(pickle.loads(await self.recv(s, _wire.DATA)), ("ok", {"token": 0}))
        tag, (exc, tb) = pickle.loads(await self.recv(s, _wire.DATA))
        self.assertEqual(tag, "err")
        self.assertIsInstance(exc, KeyError)
        self.assertIn("token 1", tb)
        await self.recv(s, _wire.END)
        s.close()


if __name__ == "__main__":
    unittest.main()
