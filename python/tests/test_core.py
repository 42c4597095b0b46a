"""Tests of the `ray` core package that need no cluster:
python3 -m unittest discover -s python/tests (the cluster tests are Go
integration tests under test/integration/core)."""

import os
import pickle
import socket
import sys
import tempfile
import threading
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import ray  # noqa: E402
from ray import exceptions  # noqa: E402
from ray._private import wire  # noqa: E402
from ray.remote_function import check_options, resources_of  # noqa: E402


class InsufficientFunds(Exception):
    pass


class RayTaskErrorTest(unittest.TestCase):
    def test_is_an_instance_of_the_cause(self):
        err = exceptions.RayTaskError("withdraw", "Traceback ...\nInsufficientFunds: empty", InsufficientFunds("empty"), 7, "10.0.0.1")
        dual = err.as_instanceof_cause()
        self.assertIsInstance(dual, InsufficientFunds)
        self.assertIsInstance(dual, exceptions.RayTaskError)
        self.assertEqual(type(dual).__name__, "RayTaskError(InsufficientFunds)")
        self.assertIn("ray::withdraw() (pid=7, ip=10.0.0.1)", str(dual))
        # It pickles back to the plain wrapper (dynamic classes do not pickle).
        again = pickle.loads(pickle.dumps(dual))
        self.assertIsInstance(again.cause, InsufficientFunds)

    def test_get_timeout_error_is_a_timeout_error(self):
        self.assertTrue(issubclass(exceptions.GetTimeoutError, TimeoutError))


class OptionsTest(unittest.TestCase):
    def test_resources(self):
        self.assertEqual(resources_of({"num_cpus": 2, "resources": {"big": 1}}, 1), {"CPU": 2.0, "big": 1.0})
        self.assertEqual(resources_of({}, 1), {"CPU": 1.0})
        self.assertEqual(resources_of({}, None), {})
        with self.assertRaisesRegex(ValueError, "num_cpus"):
            resources_of({"resources": {"CPU": 1}}, 1)
        with self.assertRaisesRegex(ValueError, "non-negative"):
            resources_of({"num_cpus": -1}, 1)

    def test_unknown_and_unimplemented_options(self):
        with self.assertRaisesRegex(ValueError, "Invalid option keyword bogus"):
            check_options({"bogus": 1}, ("num_cpus",), (), "remote function")
        with self.assertRaisesRegex(NotImplementedError, "runtime_env"):
            check_options({"runtime_env": {}}, ("num_cpus",), ("runtime_env",), "remote function")
        with self.assertRaisesRegex(ValueError, "Invalid scheduling_strategy 'PACK'"):
            check_options({"scheduling_strategy": "PACK"}, ("scheduling_strategy",), (), "remote function")
        check_options({"scheduling_strategy": "SPREAD"}, ("scheduling_strategy",), (), "remote function")

    def test_runtime_env_fields(self):
        from ray._private.runtime_env import env_vars_of
        self.assertEqual(env_vars_of({"env_vars": {"A": "1"}}, "task f"), {"A": "1"})
        for key in ("conda", "container", "working_dir"):
            with self.assertRaisesRegex(NotImplementedError, f"runtime_env field '{key}' of task f is not supported"):
                env_vars_of({key: ["x"]}, "task f")
        self.assertEqual(env_vars_of({"pip": ["x"]}, "task f"), {})
        with self.assertRaisesRegex(ValueError, "unknown field 'bogus'"):
            env_vars_of({"bogus": 1}, "task f")
        with self.assertRaisesRegex(TypeError, "dict of strings; 'A': 1 is not"):
            env_vars_of({"env_vars": {"A": 1}}, "task f")

    def test_runtime_env_pip(self):
        from ray._private.runtime_env import pip_of, pip_spec
        self.assertEqual(pip_of({"pip": ["a", "b==1"]}, "task f"), {"packages": ["a", "b==1"]})
        self.assertEqual(pip_of({"pip": {"packages": ["a"], "pip_check": True}}, "task f"),
                         {"packages": ["a"], "pip_check": True})
        self.assertIsNone(pip_of({"pip": []}, "task f"))
        with mock.patch.dict(os.environ, {"RAYK8S_CORE_RUNTIME_ENV_PIP": '{"packages": ["p"]}'}):
            self.assertEqual(pip_of(None, "task f"), {"packages": ["p"]})
            self.assertEqual(pip_of({"pip": ["q"]}, "task f"), {"packages": ["q"]})
        with self.assertRaisesRegex(NotImplementedError, r"runtime_env\['pip'\]\['pip_version'\] of task f"):
            pip_spec({"packages": ["a"], "pip_version": "==23.0"}, "task f")
        with self.assertRaisesRegex(NotImplementedError, "requirements file"):
            pip_spec("requirements.txt", "task f")
        with self.assertRaisesRegex(TypeError, "list of package names"):
            pip_spec(["a", 1], "task f")
        with self.assertRaisesRegex(ValueError, "unknown field 'index'"):
            pip_spec({"packages": ["a"], "index": "x"}, "task f")
        with self.assertRaisesRegex(ValueError, "must name its packages"):
            pip_spec({"pip_check": True}, "task f")

    def test_retry_exceptions_option(self):
        from ray.remote_function import retry_exceptions_of
        self.assertEqual(retry_exceptions_of({}), (False, ""))
        on, types = retry_exceptions_of({"retry_exceptions": [ValueError]})
        self.assertTrue(on and types)
        with self.assertRaisesRegex(TypeError, "retry_exceptions must be"):
            retry_exceptions_of({"retry_exceptions": ["ValueError"]})

    def test_not_implemented_api_says_so(self):
        with self.assertRaisesRegex(NotImplementedError, "ray.timeline"):
            ray.timeline()
        with self.assertRaisesRegex(AttributeError, "does not implement"):
            ray.no_such_thing  # noqa: B018

    def test_remote_functions_refuse_direct_calls(self):
        @ray.remote
        def f():
            return 1
        with self.assertRaisesRegex(TypeError, "f.remote()"):
            f()

    def test_api_needs_init(self):
        with self.assertRaisesRegex(exceptions.RaySystemError, "ray.init"):
            ray.put(1)


class WireTest(unittest.TestCase):
    def test_requests_both_ways(self):
        path = os.path.join(tempfile.mkdtemp(), "s")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(1)
        got = {}

        def serve():
            c, _ = srv.accept()
            f = c.makefile("rb")
            import json
            import struct
            hl, bl = struct.unpack(">II", f.read(8))
            header = json.loads(f.read(hl))
            body = f.read(bl)
            got["header"], got["body"] = header, body
            reply = json.dumps({"id": header["id"], "reply": True, "b": [2], "body": {"ok": 1}}).encode()
            c.sendall(struct.pack(">II", len(reply), 2) + reply + b"hi")
            err = json.dumps({"id": 0, "op": "warning", "body": {"message": "m"}}).encode()
            c.sendall(struct.pack(">II", len(err), 0) + err)
            got["conn"] = c

        t = threading.Thread(target=serve)
        t.start()
        notes = []
        conn = wire.Connection(path, lambda c, h, p: notes.append(h["op"]))
        body, parts = conn.call("put", {"object_id": "x"}, [b"abc", b"de"])
        t.join()
        self.assertEqual(body, {"ok": 1})
        self.assertEqual(bytes(parts[0]), b"hi")
        self.assertEqual(got["header"]["b"], [3, 2])
        self.assertEqual(got["body"], b"abcde")
        got["conn"].close()
        conn._reader.join(5)
        self.assertEqual(notes, ["warning"])
        with self.assertRaises(wire.ConnectionClosed):
            conn.call("put")
        srv.close()

    def test_a_message_larger_than_the_agent_takes_is_refused_before_sending(self):
        a, b = socket.socketpair()
        idle = wire.IdleReader()

        def serve(conn, header, parts):
            conn.reply(header["id"], {"n": sum(len(p) for p in parts)})
        server = wire.Connection(None, serve, sock=b, idle_reader=idle)
        client = wire.Connection(None, lambda c, h, p: None, sock=a, idle_reader=idle)
        client.max_body = 8
        with self.assertRaisesRegex(ValueError, r"put: 9 bytes of values in one message, more than the 8 bytes one message"):
            client.call("put", {}, [b"12345", b"6789"])
        # Nothing of it was sent: the connection carries the next message as before.
        body, _ = client.call("put", {}, [b"12345678"])
        self.assertEqual(body, {"n": 8})
        client.close()
        server.close()

    def test_start_answers_on_the_reader_and_ends_with_the_connection(self):
        # Two connected Connections, one answering "echo" requests: the
        # shape of a caller and an actor process on a direct socket.
        a, b = socket.socketpair()
        idle = wire.IdleReader()

        def serve(conn, header, parts):
            if header.get("op") == "echo":
                conn.reply(header["id"], {"n": header["body"]["n"]}, [bytes(parts[0])])
        server = wire.Connection(None, serve, sock=b, idle_reader=idle)
        closed = threading.Event()
        client = wire.Connection(None, lambda c, h, p: None, on_close=closed.set, sock=a, idle_reader=idle)
        got = {}
        client.start("echo", {"n": 1}, [b"one"], lambda h, p: got.setdefault(1, (h["body"], bytes(p[0]))))
        client.start("echo", {"n": 2}, [b"two"], lambda h, p: got.setdefault(2, (h["body"], bytes(p[0]))))
        client.pump(lambda: len(got) == 2)
        self.assertEqual(got, {1: ({"n": 1}, b"one"), 2: ({"n": 2}, b"two")})
        # pump_until gives up at its deadline when no answer comes.
        import time
        self.assertFalse(client.pump_until(lambda: False, time.monotonic() + 0.05))
        # A request in flight when the connection ends hears of it.
        ended = threading.Event()
        server_gone = []
        server._on_request = lambda c, h, p: server_gone.append(h)
        client.start("echo", {"n": 3}, [b"three"], lambda h, p: ended.set() if h is None else None)
        # The server, which never answers, goes away.
        server.close()
        self.assertTrue(ended.wait(5))
        self.assertTrue(closed.wait(5))
        with self.assertRaises(wire.ConnectionClosed):
            client.start("echo", {"n": 4}, [b"four"], lambda h, p: None)

    def test_readable_takes_descriptors_past_1024(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 1100:
            self.skipTest("the file descriptor limit is below 1100")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
        try:
            r, w = os.pipe()
            high = os.dup2(r, 1050)
            try:
                self.assertEqual(wire.readable([high], 0), [])
                os.write(w, b"x")
                self.assertEqual(wire.readable([high], 1), [high])
            finally:
                os.close(high)
                os.close(r)
                os.close(w)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


if __name__ == "__main__":
    unittest.main()


class OutOfBandSerializationTest(unittest.TestCase):
    def test_large_array_travels_out_of_band_and_comes_back_as_a_view(self):
        import numpy as np
        from ray._private import worker

        array = np.arange(1 << 17, dtype=np.float64)  # 1 MiB
        blob = worker.dumps({"a": array, "n": 3})
        self.assertIsInstance(blob, wire.Frames)
        # The array's own memory is one of the pieces: nothing copied it into the pickle.
        self.assertTrue(any(isinstance(p, memoryview) and p.nbytes == array.nbytes for p in blob.pieces))
        received = b"".join(blob.pieces)
        value = worker.loads(received)
        self.assertEqual(value["n"], 3)
        self.assertTrue(np.array_equal(value["a"], array))
        self.assertFalse(value["a"].flags.owndata)
        self.assertFalse(value["a"].flags.writeable)

    def test_small_values_stay_plain_pickles(self):
        from ray._private import worker

        blob = worker.dumps([1, "two", b"x" * 100])
        self.assertIsInstance(blob, bytes)
        self.assertEqual(worker.loads(blob), [1, "two", b"x" * 100])


class FakeAgentWorker:
    """A fake of the worker's connection to its node agent, for faults a
    real agent does not produce on demand: it answers puts of values with
    the error refuse_values gives (None: takes them), puts of error values
    with refuse_errors, and records every call."""

    def __init__(self, refuse_values=None, refuse_errors=None):
        self.node_id = "node-1"
        self.calls = []
        self.refuse_values = refuse_values
        self.refuse_errors = refuse_errors

    def call(self, op, body=None, parts=()):
        self.calls.append((op, body, [bytes(p) for p in parts]))
        if op == "put":
            refuse = self.refuse_errors if body.get("is_err") else self.refuse_values
            if refuse is not None:
                raise refuse
        return {}, []

    def puts(self):
        return [(body, parts[0]) for op, body, parts in self.calls if op == "put"]


class DirectPutFailureTest(unittest.TestCase):
    """A direct call's result that leaves its caller but cannot be stored
    in the agent's store: its getters get an ObjectLostError naming the
    object and the reason, instead of the failure being dropped."""

    OID = "ab" * 28

    def lost_error(self, agent):
        from ray._private.worker import decode_error

        puts = agent.puts()
        self.assertEqual(len(puts), 2, agent.calls)
        body, data = puts[-1]
        self.assertEqual((body["object_id"], body["job"], body["is_err"]), (self.OID, "job-1", True))
        return decode_error(data)

    def test_a_refused_value_becomes_an_object_lost_error_for_its_getters(self):
        from ray._private.direct import DirectCalls

        agent = FakeAgentWorker(refuse_values=exceptions.RaySystemError("the object store refused it"))
        dc = DirectCalls(agent)
        dc.values[self.OID] = (b"value", False, "job-1")
        dc.promote(self.OID)  # the ref is pickled with its value here
        err = self.lost_error(agent)
        self.assertIsInstance(err, exceptions.ObjectLostError)
        self.assertIn(self.OID, str(err))
        self.assertIn("RaySystemError: the object store refused it", str(err))
        # The caller still reads its own value.
        self.assertEqual(dc.value(self.OID)[0], b"value")

    def test_a_refused_late_value_fails_the_announced_object(self):
        from ray._private.direct import DirectCalls

        agent = FakeAgentWorker(refuse_values=exceptions.RaySystemError("the object store refused it"))
        dc = DirectCalls(agent)
        dc.pending[self.OID] = (None, "job-1")
        dc.promote(self.OID)  # the ref leaves while its call runs
        self.assertEqual(agent.calls[0][:2], ("expect", {"object_ids": [self.OID], "job": "job-1"}))
        dc._on_reply([self.OID], {"body": {"errors": [False]}}, [b"value"])
        err = self.lost_error(agent)
        self.assertIsInstance(err, exceptions.ObjectLostError)
        self.assertIn(self.OID, str(err))

    def test_an_unreachable_agent_is_reported_on_stderr(self):
        import io
        from contextlib import redirect_stderr
        from ray._private.direct import DirectCalls

        gone = exceptions.RaySystemError("lost the connection to the Ray node agent")
        agent = FakeAgentWorker(refuse_values=gone, refuse_errors=gone)
        dc = DirectCalls(agent)
        dc.values[self.OID] = (b"value", False, "job-1")
        stderr = io.StringIO()
        with redirect_stderr(stderr):
            dc.promote(self.OID)
        self.assertEqual(len(agent.puts()), 2)
        self.assertIn(self.OID, stderr.getvalue())
        self.assertIn("lost the connection to the Ray node agent", stderr.getvalue())
