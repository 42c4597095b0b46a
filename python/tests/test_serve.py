"""Tests of the rayk8s Serve SDK: python3 -m unittest discover -s python/tests"""

import asyncio
import json
import os
import pickle
import sys
import tempfile
import textwrap
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rayk8s import serve  # noqa: E402
from rayk8s.serve import _build, _context, _http, _replica, _wire  # noqa: E402


class WireTest(unittest.TestCase):
    def test_matches_go(self):
        # internal/serve/wire/wire_test.go and replica/socket_test.go pin the same values.
        self.assertEqual(_wire.encode(7, _wire.DATA, b"hi").hex(), "0000000200000007026869")
        self.assertEqual(_wire.socket_path("/d", "app#dep#abc"), "/d/d35c0134dac182a7.sock")


class DeploymentTest(unittest.TestCase):
    def test_decorator_options_and_graph(self):
        @serve.deployment
        class Child:
            pass

        @serve.deployment(num_replicas=2, max_ongoing_requests=7, user_config={"a": 1}, ray_actor_options={"num_cpus": 0.5})
        class Parent:
            def __init__(self, child, others):
                pass

        app = Parent.bind(Child.bind(), {"x": [Child.options(name="Other").bind()]})
        self.assertEqual(sorted(app.deployments()), ["Child", "Other", "Parent"])
        self.assertEqual(
            Parent.config_options(),
            {"name": "Parent", "num_replicas": 2, "max_ongoing_requests": 7, "user_config": {"a": 1}, "ray_actor_options": {"num_cpus": 0.5}},
        )
        self.assertEqual(Parent.options(num_replicas=3).config_options()["num_replicas"], 3)
        self.assertEqual(Parent.config_options()["num_replicas"], 2)
        self.assertEqual(serve.deployment(name="Named")(Child.func_or_class).name, "Named")

    def test_invalid_options(self):
        for kwargs in ({"max_ongoing_requests": 0}, {"num_replicas": -1}, {"max_queued_requests": 0}, {"bogus": 1}, {"user_config": {"x": object()}}):
            with self.assertRaises((ValueError, TypeError), msg=kwargs):
                serve.deployment(**kwargs)

    def test_duplicate_names_are_rejected(self):
        @serve.deployment(name="Same")
        def a():
            pass

        @serve.deployment(name="Same")
        def b(x):
            pass

        with self.assertRaises(ValueError):
            b.bind(a.bind()).deployments()


class HTTPTest(unittest.TestCase):
    def test_request(self):
        req = _http.Request(
            {"method": "POST", "path": "/api/x", "query": "a=1&b=two", "headers": [["Content-Type", "application/json"], ["host", "h:8000"]]},
            b'{"k": [1, 2]}',
        )
        self.assertEqual(req.query_params, {"a": "1", "b": "two"})
        self.assertEqual(req.headers["content-type"], "application/json")
        self.assertEqual(req.url, "http://h:8000/api/x?a=1&b=two")
        self.assertEqual(req.json()["k"], [1, 2])
        self.assertEqual(asyncio.run(self._await(req.json())), {"k": [1, 2]})
        self.assertEqual(asyncio.run(self._await(req.body())), b'{"k": [1, 2]}')

    @staticmethod
    async def _await(x):
        return await x

    def test_response_conversion(self):
        self.assertEqual(_http.to_http({"a": 1}), (200, [("content-type", "application/json")], b'{"a": 1}'))
        self.assertEqual(_http.to_http("hi")[2], b"hi")
        self.assertEqual(_http.to_http(b"\x00")[1], [("content-type", "application/octet-stream")])
        self.assertEqual(_http.to_http(None)[2], b"null")
        status, headers, body = _http.to_http(serve.Response("nope", status_code=404, headers={"X-A": "b"}))
        self.assertEqual((status, body), (404, b"nope"))
        self.assertIn(("x-a", "b"), headers)
        self.assertEqual(_http.to_http(serve.JSONResponse([1]))[1][-1], ("content-type", "application/json"))


class BuildTest(unittest.TestCase):
    def test_build_reports_graph(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "buildmod.py"), "w") as f:
                f.write(textwrap.dedent("""
                    from rayk8s import serve

                    @serve.deployment(max_ongoing_requests=3)
                    class Leaf:
                        pass

                    @serve.deployment
                    class Root:
                        def __init__(self, leaf):
                            pass

                    app = Root.bind(Leaf.bind())

                    def builder(args):
                        return Root.options(num_replicas=args["n"]).bind(Leaf.bind())
                """))
            sys.path.insert(0, d)
            try:
                res = _build.build("buildmod:app", None)
                self.assertEqual(res["ingress"], "Root")
                self.assertEqual(sorted(d["name"] for d in res["deployments"]), ["Leaf", "Root"])
                self.assertIn({"name": "Leaf", "max_ongoing_requests": 3}, res["deployments"])
                res = _build.build("buildmod.builder", {"n": 4})
                self.assertIn({"name": "Root", "num_replicas": 4}, res["deployments"])
            finally:
                sys.path.remove(d)


class Model:
    """A deployment instance for the replica tests."""

    def __init__(self):
        self.config = None
        self.healthy = True
        self.release = None

    def reconfigure(self, config):
        self.config = config

    def check_health(self):
        if not self.healthy:
            raise RuntimeError("sick")

    async def __call__(self, request):
        if request.path == "/slow":
            await self.release.wait()
        if request.path == "/boom":
            raise ValueError("boom")
        return {"path": request.path, "config": self.config}

    def add(self, a, b):
        return a + b

    async def call_other(self, x):
        handle = serve.get_app_handle("other")
        return await handle.remote(x)


class ReplicaTest(unittest.TestCase):
    def test_replica_protocol(self):
        asyncio.run(self._run())

    async def _call(self, conn, meta, body=b""):
        s = conn.open()
        s.send((_wire.OPEN, _wire.dumps(meta)), (_wire.DATA, body), (_wire.END, b""))
        frames = []
        while True:
            ftype, payload = await s.recv()
            frames.append((ftype, payload))
            if ftype in (_wire.END, _wire.ERROR) or (ftype == _wire.ACCEPT and not json.loads(payload)["accepted"]):
                s.close()
                return frames

    async def _run(self):
        loop = asyncio.get_running_loop()
        model = Model()
        model.release = asyncio.Event()
        replica = _replica.Replica("app#Model#1", "app", "Model", model, 2, 0.0, loop)
        _context._set_runtime(replica)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.sock")
            server = await asyncio.start_unix_server(replica.on_connect, path=path)

            # The test plays the node agent; it also answers the replica's
            # own handle calls.
            async def answer(stream):
                _, payload = await stream.recv()
                meta = json.loads(payload)
                body = b""
                while True:
                    ftype, p = await stream.recv()
                    if ftype == _wire.END:
                        break
                    body += p
                args, _ = pickle.loads(body)
                result = pickle.dumps({"app": meta["app"], "deployment": meta["deployment"], "x": args[0]})
                stream.send((_wire.HEAD, _wire.dumps({"status": 200, "headers": [["x-serve-encoding", "pickle"]]})), (_wire.DATA, result), (_wire.END, b""))

            reader, writer = await asyncio.open_unix_connection(path)
            conn = _wire.Conn(reader, writer, dialer=True, on_open=lambda s: asyncio.ensure_future(answer(s)))

            frames = await self._call(conn, {"kind": "http", "method": "GET", "path": "/hi"})
            self.assertEqual([f[0] for f in frames], [_wire.ACCEPT, _wire.HEAD, _wire.DATA, _wire.END])
            self.assertEqual(json.loads(frames[2][1]), {"path": "/hi", "config": None})

            # Two slow calls fill max_ongoing_requests=2: the third is rejected.
            slow = [asyncio.ensure_future(self._call(conn, {"kind": "http", "path": "/slow"})) for _ in range(2)]
            while replica.ongoing < 2:
                await asyncio.sleep(0.01)
            frames = await self._call(conn, {"kind": "http", "path": "/hi"})
            self.assertEqual(json.loads(frames[0][1]), {"accepted": False, "ongoing": 2})
            model.release.set()
            for f in await asyncio.gather(*slow):
                self.assertEqual(f[-1][0], _wire.END)

            frames = await self._call(conn, {"kind": "http", "path": "/boom"})
            err = json.loads(frames[-1][1])
            self.assertEqual(err["kind"], "user")
            self.assertIn("Traceback", err["message"])
            self.assertIn("ValueError: boom", err["message"])

            frames = await self._call(conn, {"kind": "reconfigure"}, _wire.dumps({"user_config": {"v": 2}, "max_ongoing_requests": 3}))
            self.assertEqual(frames[-1][0], _wire.END)
            self.assertEqual((model.config, replica.max_ongoing), ({"v": 2}, 3))

            model.healthy = False
            frames = await self._call(conn, {"kind": "health"})
            self.assertIn("sick", json.loads(frames[-1][1])["message"])

            # Handle calls: a sync method on the thread pool, and a method
            # that calls another application through the agent.
            frames = await self._call(conn, {"kind": "handle", "method": "add", "encoding": "pickle"}, pickle.dumps(((2, 3), {})))
            self.assertEqual(pickle.loads(frames[2][1]), 5)
            frames = await self._call(conn, {"kind": "handle", "method": "call_other", "encoding": "pickle"}, pickle.dumps(((9,), {})))
            self.assertEqual(pickle.loads(frames[2][1]), {"app": "other", "deployment": "", "x": 9})

            # A sync caller blocks on .result() from a thread.
            out = {}
            t = threading.Thread(target=lambda: out.update(r=serve.get_deployment_handle("D").remote(1).result(timeout_s=5)))
            t.start()
            await loop.run_in_executor(None, t.join)
            self.assertEqual(out["r"], {"app": "app", "deployment": "D", "x": 1})
            with self.assertRaises(RuntimeError):
                serve.get_app_handle("x").remote(1).result()

            # Exceptions in called deployments come back as the same type.
            exc_frames = replica.error_frames({"kind": "handle", "encoding": "pickle"}, KeyError("k"), "tb")
            head = json.loads(exc_frames[0][1])
            with self.assertRaises(KeyError):
                _context.decode_result(head, exc_frames[1][1])

            conn.close()
            server.close()
            await server.wait_closed()


if __name__ == "__main__":
    unittest.main()
