"""Tests of the core wire connection's reading: whichever thread waits reads
the socket, and hands other threads what is theirs."""

import json
import os
import socket
import struct
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ray._private import wire  # noqa: E402


def _frame(header, body=b""):
    raw = json.dumps(header).encode()
    return struct.pack(">II", len(raw), len(body)) + raw + body


def _read(f):
    hl, bl = struct.unpack(">II", f.read(8))
    header = json.loads(f.read(hl))
    return header, f.read(bl)


class _Server:
    """A fake agent on a Unix socket; the test drives it by hand."""

    def __init__(self):
        self.path = os.path.join(tempfile.mkdtemp(), "s")
        self._srv = socket.socket(socket.AF_UNIX)
        self._srv.bind(self.path)
        self._srv.listen(1)
        self.conn = None
        self._accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.conn, _ = self._srv.accept()
        self.file = self.conn.makefile("rb")
        self._accepted.set()

    def wait(self):
        assert self._accepted.wait(5)

    def close(self):
        self.conn.shutdown(socket.SHUT_RDWR)
        self.file.close()
        self.conn.close()
        self._srv.close()


class ConnectionReadingTest(unittest.TestCase):
    def test_concurrent_callers_each_get_their_own_reply(self):
        srv = _Server()
        notes = []
        conn = wire.Connection(srv.path, lambda c, h, p: notes.append(h["op"]))
        srv.wait()
        results = {}

        def caller(n):
            body, parts = conn.call("echo", {"n": n})
            results[n] = (body["n"], bytes(parts[0]) if parts else b"")

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        requests = [_read(srv.file)[0] for _ in threads]
        big = b"x" * (200 << 10)  # read straight into its own memory
        # Answered in the reverse order, with notifications in between.
        for h in reversed(requests):
            srv.conn.sendall(_frame({"op": "log", "id": 0}))
            payload = big if h["body"]["n"] == 0 else b"v%d" % h["body"]["n"]
            srv.conn.sendall(_frame({"id": h["id"], "reply": True, "b": [len(payload)], "body": h["body"]}, payload))
        for t in threads:
            t.join(10)
            self.assertFalse(t.is_alive(), "a caller never got its reply")
        for n in range(1, 6):
            self.assertEqual(results[n], (n, b"v%d" % n))
        self.assertEqual(results[0], (0, big))
        self.assertEqual(notes, ["log"] * 6)
        conn.close()
        srv.close()

    def test_messages_arriving_while_nobody_waits_are_handled(self):
        srv = _Server()
        got = threading.Event()
        conn = wire.Connection(srv.path, lambda c, h, p: got.set())
        srv.wait()
        srv.conn.sendall(_frame({"op": "warning", "id": 0, "body": {"message": "m"}}))
        self.assertTrue(got.wait(5), "a notification nobody waited for was never handled")
        closed = threading.Event()
        conn._on_close = closed.set
        srv.close()
        self.assertTrue(closed.wait(5), "the end of the connection went unnoticed")
        self.assertTrue(conn.closed)

    def test_pump_reads_the_request_it_waits_for_on_its_own_thread(self):
        srv = _Server()
        seen = []
        conn = wire.Connection(srv.path, lambda c, h, p: seen.append((h["op"], threading.current_thread())))
        srv.wait()
        srv.conn.sendall(_frame({"op": "execute", "id": 3}))
        conn.pump(lambda: bool(seen))
        self.assertEqual(seen[0][0], "execute")
        conn.reply(3, {"ok": True})
        header, _ = _read(srv.file)
        self.assertEqual(header, {"id": 3, "reply": True, "body": {"ok": True}})
        conn.close()
        srv.close()


if __name__ == "__main__":
    unittest.main()
