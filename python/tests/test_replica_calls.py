"""The Python replica's call path on a real Unix socket, served the way
the replica process serves it (Replica.protocol, the Conn as the
transport's protocol): admission as frames arrive, calls cancelled before
they start, malformed OPEN frames, write flow control, and the frame
helpers it relies on. The streaming, gRPC and protocol suites, written
against asyncio.start_unix_server(replica.on_connect), run again here
over Replica.protocol."""

import asyncio
import json
import os
import sys
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rayk8s.serve import _context, _replica, _wire  # noqa: E402


class Blocking:
    """Calls to /block wait for release; every call is counted."""

    def __init__(self):
        self.started = 0
        self.release = asyncio.Event()
        self.blocked = asyncio.Event()

    async def __call__(self, request):
        self.started += 1
        if request.path == "/block":
            self.blocked.set()
            await self.release.wait()
        if request.path == "/bytes":
            return b"raw"
        return {"n": self.started}


class Chunks:
    """A streamed answer of N chunks of SIZE bytes."""

    N, SIZE = 64, 64 << 10

    async def __call__(self, request):
        async def gen():
            for _ in range(self.N):
                yield b"x" * self.SIZE

        return gen()


async def eventually(cond, what):
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 10 s: {what}")


class Echo:
    """Answers with every field of its Request; /set changes two first."""

    async def __call__(self, request):
        if request.path == "/set":
            request.path = "/changed"
            request.method = "PUT"
        return {
            "method": request.method,
            "path": request.path,
            "query_string": request.query_string,
            "query_params": request.query_params,
            "route_prefix": request.route_prefix,
            "request_id": request.request_id,
            "client": request.client,
            "headers": dict(request.headers.items()),
            "url": request.url,
        }


class SyncHandler:
    def __call__(self, request):
        return "sync " + request.headers.get("X-Name", "?")


async def read_answer(stream):
    """Frames until the call ends (END, ERROR or a rejecting ACCEPT)."""
    frames = []
    while True:
        ftype, payload = await stream.recv()
        frames.append((ftype, payload))
        if ftype in (_wire.END, _wire.ERROR) or (ftype == _wire.ACCEPT and not json.loads(payload)["accepted"]):
            return frames


class ReplicaHarness:
    """A Replica serving instance on a real socket, with the test as its
    node agent."""

    def __init__(self, instance, max_ongoing=4):
        self.instance = instance
        self.max_ongoing = max_ongoing

    async def __aenter__(self):
        loop = asyncio.get_running_loop()
        self.replica = _replica.Replica("app#D#1", "app", "D", self.instance, self.max_ongoing, 0.0, loop)
        _context._set_runtime(self.replica)
        self.dir = tempfile.TemporaryDirectory()
        path = os.path.join(self.dir.name, "r.sock")
        self.server = await loop.create_unix_server(self.replica.protocol, path=path)
        reader, writer = await asyncio.open_unix_connection(path)
        self.conn = _wire.Conn(reader, writer, dialer=True)
        return self

    async def __aexit__(self, *exc):
        self.conn.close()
        self.server.close()
        await self.server.wait_closed()
        self.dir.cleanup()

    async def call(self, meta, *after):
        s = self.conn.open()
        s.send((_wire.OPEN, _wire.dumps(meta)), (_wire.END, b""), *after)
        return s

    async def stats(self):
        s = await self.call({"kind": "stats"})
        frames = await read_answer(s)
        s.close()
        return json.loads(frames[2][1])


class ReplicaCallTest(unittest.TestCase):
    def run_loop(self, coro):
        return asyncio.run(coro)

    def test_http_answers(self):
        async def run():
            async with ReplicaHarness(Blocking()) as h:
                s = await h.call({"kind": "http", "method": "GET", "path": "/x"})
                frames = await read_answer(s)
                self.assertEqual([f[0] for f in frames], [_wire.ACCEPT, _wire.HEAD, _wire.DATA, _wire.END])
                self.assertEqual(json.loads(frames[0][1]), {"accepted": True, "ongoing": 1})
                self.assertEqual(json.loads(frames[1][1]), {"status": 200, "headers": [["content-type", "application/json"]]})
                self.assertEqual(json.loads(frames[2][1]), {"n": 1})

                # bytes take the shortcut past to_http; the answer is the same.
                s = await h.call({"kind": "http", "method": "GET", "path": "/bytes"})
                frames = await read_answer(s)
                self.assertEqual(json.loads(frames[1][1]), {"status": 200, "headers": [["content-type", "application/octet-stream"]]})
                self.assertEqual(frames[2][1], b"raw")
                self.assertEqual(await h.stats(), {"ongoing": 0, "max_observed": 1})

        self.run_loop(run())

    def test_request_fields_come_from_the_open(self):
        async def run():
            async with ReplicaHarness(Echo()) as h:
                meta = {"kind": "http", "request_id": "r-1", "method": "POST", "path": "/a b", "query": "x=1&y=",
                        "route_prefix": "/p", "headers": [["host", "h:1"], ["X-A", "v"]], "client": "10.0.0.1:5"}
                s = await h.call(meta)
                frames = await read_answer(s)
                self.assertEqual(json.loads(frames[2][1]), {
                    "method": "POST", "path": "/a b", "query_string": "x=1&y=", "query_params": {"x": "1", "y": ""},
                    "route_prefix": "/p", "request_id": "r-1", "client": "10.0.0.1:5",
                    "headers": {"host": "h:1", "x-a": "v"}, "url": "http://h:1/a%20b?x=1&y=",
                })
                # Fields the OPEN leaves out have Starlette's defaults.
                s = await h.call({"kind": "http"})
                frames = await read_answer(s)
                self.assertEqual(json.loads(frames[2][1]), {
                    "method": "GET", "path": "/", "query_string": "", "query_params": {}, "route_prefix": "",
                    "request_id": "", "client": "", "headers": {}, "url": "http://localhost/",
                })
                # They are attributes a handler can set.
                s = await h.call({"kind": "http", "method": "GET", "path": "/set"})
                frames = await read_answer(s)
                answer = json.loads(frames[2][1])
                self.assertEqual((answer["method"], answer["path"]), ("PUT", "/changed"))

        self.run_loop(run())

    def test_malformed_http_open_fails_the_call_that_reads_it(self):
        # An OPEN that begins like the agent's HTTP calls is decoded when
        # the handler first reads its request: the call fails then, with
        # the decoding error, and the connection serves on.
        async def run():
            async with ReplicaHarness(Echo()) as h:
                s = h.conn.open()
                s.send((_wire.OPEN, b'{"kind":"http",not json'), (_wire.END, b""))
                frames = await read_answer(s)
                self.assertEqual([f[0] for f in frames], [_wire.ACCEPT, _wire.ERROR])
                err = json.loads(frames[1][1])
                self.assertEqual(err["kind"], _wire.ERR_USER)
                self.assertIn("JSONDecodeError", err["message"])
                s = await h.call({"kind": "http", "path": "/ok"})
                frames = await read_answer(s)
                self.assertEqual(json.loads(frames[2][1])["path"], "/ok")
                self.assertEqual(await h.stats(), {"ongoing": 0, "max_observed": 1})

        self.run_loop(run())

    def test_sync_handler_reads_headers(self):
        async def run():
            async with ReplicaHarness(SyncHandler()) as h:
                s = await h.call({"kind": "http", "method": "GET", "path": "/", "headers": [["x-name", "ada"]]})
                frames = await read_answer(s)
                self.assertEqual(frames[2][1], b"sync ada")

        self.run_loop(run())

    def test_admission_counts_calls_of_one_read(self):
        # Three calls in one write reach the replica in one read; with
        # max_ongoing_requests=2 the third is rejected before any runs.
        async def run():
            model = Blocking()
            async with ReplicaHarness(model, max_ongoing=2) as h:
                streams = [h.conn.open() for _ in range(3)]
                for s in streams:
                    s.send((_wire.OPEN, _wire.dumps({"kind": "http", "path": "/block"})), (_wire.END, b""))
                accepts = [json.loads((await s.recv())[1]) for s in streams]
                self.assertEqual(accepts, [{"accepted": True, "ongoing": 1}, {"accepted": True, "ongoing": 2}, {"accepted": False, "ongoing": 2}])
                model.release.set()
                for s in streams[:2]:
                    self.assertEqual((await read_answer(s))[-1][0], _wire.END)
                self.assertEqual(model.started, 2)
                self.assertEqual(await h.stats(), {"ongoing": 0, "max_observed": 2})

        self.run_loop(run())

    def test_cancel_before_the_call_starts(self):
        # A CANCEL behind the OPEN and END: the handler must not be left
        # running (it would wait forever) and the slot is given back.
        async def run():
            model = Blocking()
            async with ReplicaHarness(model, max_ongoing=1) as h:
                s = await h.call({"kind": "http", "path": "/block"}, (_wire.CANCEL, b""))
                self.assertEqual(json.loads((await s.recv())[1])["accepted"], True)
                self.assertEqual(await h.stats(), {"ongoing": 0, "max_observed": 1})
                # The replica takes a new call in the freed slot.
                s = await h.call({"kind": "http", "path": "/x"})
                self.assertEqual((await read_answer(s))[-1][0], _wire.END)

        self.run_loop(run())

    def test_cancel_while_the_call_waits(self):
        async def run():
            model = Blocking()
            async with ReplicaHarness(model, max_ongoing=1) as h:
                s = await h.call({"kind": "http", "path": "/block"})
                await model.blocked.wait()
                s.send((_wire.CANCEL, b""))
                self.assertEqual(await h.stats(), {"ongoing": 0, "max_observed": 1})
                self.assertEqual(model.started, 1)

        self.run_loop(run())

    def test_malformed_open_keeps_the_connection(self):
        async def run():
            async with ReplicaHarness(Blocking()) as h:
                bad = h.conn.open()
                bad.send((_wire.OPEN, b"{not json"), (_wire.END, b""))
                s = await h.call({"kind": "http", "path": "/x"})
                self.assertEqual((await read_answer(s))[-1][0], _wire.END)
                self.assertEqual(h.replica.ongoing, 0)

        self.run_loop(run())

    def test_large_answer_waits_for_the_socket(self):
        # A streamed answer far larger than the socket's buffers: the
        # replica's sends wait in drain (pause_writing/resume_writing of
        # the protocol) until the agent reads, and every byte arrives.
        async def run():
            async with ReplicaHarness(Chunks()) as h:
                h.conn.transport.pause_reading()
                s = await h.call({"kind": "http", "path": "/"})
                await eventually(lambda: any(c.paused and c.drain_waiters for c in h.replica.conns), "the replica waits for its connection to take writes")
                h.conn.transport.resume_reading()
                frames = await read_answer(s)
                body = b"".join(p for t, p in frames if t == _wire.DATA)
                self.assertEqual(len(body), Chunks.N * Chunks.SIZE)
                self.assertEqual(frames[-1][0], _wire.END)

        self.run_loop(run())

    def test_draining_rejects(self):
        async def run():
            async with ReplicaHarness(Blocking()) as h:
                h.replica.draining = True
                s = await h.call({"kind": "http", "path": "/x"})
                frames = await read_answer(s)
                self.assertEqual(json.loads(frames[0][1]), {"accepted": False, "ongoing": 0})

        self.run_loop(run())


try:
    import uvloop
except ImportError:
    uvloop = None


@unittest.skipIf(uvloop is None, f"uvloop is not importable by {sys.executable} (Debian: apt-get install python3-uvloop)")
class UvloopCallTest(ReplicaCallTest):
    """The same calls with the replica on uvloop, the loop main() picks
    when uvloop is installed."""

    def run_loop(self, coro):
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
            return r.run(self.on_uvloop(coro))

    async def on_uvloop(self, coro):
        self.assertIsInstance(asyncio.get_running_loop(), uvloop.Loop)
        return await coro


class LoopFactoryTest(unittest.TestCase):
    def test_uvloop_when_installed(self):
        factory = _replica.loop_factory()
        loop = factory()
        try:
            if uvloop is None:
                self.assertIs(type(loop), type(asyncio.new_event_loop()))
            else:
                self.assertIsInstance(loop, uvloop.Loop)
        finally:
            loop.close()

    def test_asyncio_without_uvloop(self):
        # A fake of the one fault not otherwise produced here: uvloop
        # missing (None in sys.modules makes its import fail).
        saved = sys.modules.get("uvloop", False)
        sys.modules["uvloop"] = None
        try:
            self.assertIs(_replica.loop_factory(), asyncio.new_event_loop)
        finally:
            if saved is False:
                del sys.modules["uvloop"]
            else:
                sys.modules["uvloop"] = saved


class ThreadBudgetTest(unittest.TestCase):
    def budget(self, num_cpus, environ=None):
        opts = {} if num_cpus is None else {"num_cpus": num_cpus}
        return _replica.thread_budget({"deployment": {"ray_actor_options": opts}}, environ or {})

    def test_follows_num_cpus(self):
        self.assertEqual(self.budget(None), "1")
        self.assertEqual(self.budget(0.1), "1")
        self.assertEqual(self.budget(0), "1")
        self.assertEqual(self.budget(2), "2")
        self.assertEqual(self.budget(2.5), "3")
        self.assertEqual(_replica.thread_budget({}, {}), "1")

    def test_an_explicit_setting_wins(self):
        self.assertIsNone(self.budget(4, {"OMP_NUM_THREADS": "6"}))


def _serve_over_protocol(original):
    def start(client_connected_cb, path=None, **kwargs):
        replica = getattr(client_connected_cb, "__self__", None)
        if not isinstance(replica, _replica.Replica):
            return original(client_connected_cb, path=path, **kwargs)
        return asyncio.get_running_loop().create_unix_server(replica.protocol, path=path, **kwargs)

    return start


class OverProtocol:
    """Runs a TestCase's tests with asyncio.start_unix_server(replica.on_connect)
    serving through Replica.protocol instead."""

    def run(self, result=None):
        with mock.patch("asyncio.start_unix_server", _serve_over_protocol(asyncio.start_unix_server)):
            return super().run(result)


import test_grpc  # noqa: E402
import test_serve  # noqa: E402
import test_streaming  # noqa: E402


class StreamingOverProtocolTest(OverProtocol, test_streaming.StreamingReplicaTest):
    pass


class ReplicaProtocolOverProtocolTest(OverProtocol, test_serve.ReplicaTest):
    pass


class GRPCOverProtocolTest(OverProtocol, test_grpc.GRPCReplicaTest):
    pass


class WireHelpersTest(unittest.TestCase):
    def test_loads(self):
        self.assertEqual(_wire.loads(b'{"kind":"http","n":[1,2]}'), {"kind": "http", "n": [1, 2]})
        # What the fast path does not take still parses like json.loads.
        self.assertEqual(_wire.loads(b' {"a": "\xc3\xa9"} \n'), {"a": "é"})
        self.assertEqual(_wire.loads('{"a":1}'.encode("utf-16")), {"a": 1})
        for bad in (b"{not json", b'{"a":1} x', b"", b"\xff"):
            with self.assertRaises(ValueError, msg=bad):
                _wire.loads(bad)

    def test_open_call(self):
        # An HTTP call as the agent encodes it: its kind and absent model ID
        # without decoding, any other field from the decoded payload.
        payload = b'{"kind":"http","request_id":"r","path":"/x","headers":[["a","b"]],"window":262144}'
        meta, kind, model_id = _wire.open_call(payload)
        self.assertIsInstance(meta, _wire.LazyMeta)
        self.assertEqual((kind, model_id), ("http", None))
        self.assertEqual(meta.get("kind"), "http")
        self.assertIsNone(meta.get("multiplexed_model_id"))
        self.assertIsNone(meta._meta)
        self.assertEqual(meta.get("path"), "/x")
        self.assertEqual(meta.get("missing", 7), 7)
        self.assertEqual(meta.decoded(), _wire.loads(payload))
        # A multiplexed model ID, another kind or another shape: decoded at once.
        for p, want in ((b'{"kind":"http","path":"/","multiplexed_model_id":"m"}', ("http", "m")),
                        (b'{"kind":"handle","method":"f"}', ("handle", None)),
                        (b'{"path":"/","kind":"http"}', ("http", None)),
                        (b'{"kind": "http", "path": "/"}', ("http", None))):
            meta, kind, model_id = _wire.open_call(p)
            self.assertEqual(meta, json.loads(p), p)
            self.assertEqual((kind, model_id), want, p)
        # A header value that merely contains the key's name stays lazy, and
        # reads as it is.
        p = b'{"kind":"http","headers":[["x","\\"multiplexed_model_id\\":"]]}'
        self.assertIsInstance(_wire.open_call(p)[0], _wire.LazyMeta)
        self.assertEqual(_wire.open_call(p)[0].get("headers"), json.loads(p)["headers"])
        # A lazy OPEN that is not JSON fails where a field is read; any other
        # that is not a JSON object fails at once.
        for bad in (b'{"kind":"http",x', b'{"kind":"http",\xff}'):
            with self.assertRaises(ValueError, msg=bad):
                _wire.open_call(bad)[0].get("path")
        for bad in (b'["kind","http"]', b'7', b'{not json'):
            with self.assertRaises(ValueError, msg=bad):
                _wire.open_call(bad)

    def test_window(self):
        async def run():
            w = _wire.Window(10)
            await w.take(8)
            waiter = asyncio.ensure_future(w.take(5))
            await asyncio.sleep(0)
            self.assertFalse(waiter.done())
            w.give(3)
            await waiter
            self.assertEqual(w.avail, 0)
            unlimited = _wire.Window(0)
            await unlimited.take(1 << 30)

        asyncio.run(run())


if __name__ == "__main__":
    unittest.main()
