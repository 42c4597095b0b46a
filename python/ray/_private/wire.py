"""The protocol between Ray core processes and their node agent.

A message is an 8-byte prefix (header length, body length; uint32 big endian),
a JSON header and a body made of the message's binary parts, whose sizes the
header lists under "b". Either side sends requests (an "id" > 0) and answers
each with a message of the same id and "reply": true; id 0 is a notification.
internal/runtime/core/corewire is the Go side; keep the two in step.
"""

import itertools
import json
import socket
import struct
import threading

_PREFIX = struct.Struct(">II")
# One compact encoder for every header: json.dumps builds a new one per
# call when given separators.
_HEADER_ENCODER = json.JSONEncoder(separators=(",", ":"))


class RemoteError(Exception):
    """An error reply: type names the exception class the caller raises."""

    def __init__(self, type_name, message):
        super().__init__(message)
        self.type_name = type_name
        self.message = message


class ConnectionClosed(Exception):
    pass


class Frames:
    """One message part made of several pieces, sent one after the other
    without joining them (a pickle and its out-of-band buffers)."""

    __slots__ = ("pieces", "nbytes")

    def __init__(self, pieces):
        self.pieces = pieces
        self.nbytes = sum(len(p) for p in pieces)


def _flatten(parts):
    for p in parts:
        if isinstance(p, Frames):
            yield from p.pieces
        else:
            yield p


class Connection:
    """One socket connection that both sends and serves requests.

    on_request(conn, header, parts) runs on the reader thread; it must not
    block, and answers with conn.reply when the request has an id.
    """

    def __init__(self, path, on_request):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        self._file = self._sock.makefile("rb", buffering=1 << 16)
        self._wlock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending = {}
        self._plock = threading.Lock()
        self._closed = False
        self._on_request = on_request
        self._reader = threading.Thread(target=self._read_loop, name="ray-core-reader", daemon=True)
        self._reader.start()

    def _send(self, header, parts=()):
        sizes = [p.nbytes if isinstance(p, Frames) else len(p) for p in parts]
        if sizes:
            header["b"] = sizes
        raw = _HEADER_ENCODER.encode(header).encode()
        total = sum(sizes)
        data = [_PREFIX.pack(len(raw), total), raw]
        data.extend(_flatten(parts))
        with self._wlock:
            if self._closed:
                raise ConnectionClosed("the connection to the node agent is closed")
            try:
                if total < (1 << 20):
                    self._sock.sendall(b"".join(data))
                else:
                    self._sendall(data)
            except OSError as e:
                raise ConnectionClosed(f"the connection to the node agent failed: {e}") from None

    def _sendall(self, data):
        for piece in data:
            self._sock.sendall(piece)

    def call(self, op, body=None, parts=()):
        """Sends a request and waits for its reply: (body, parts)."""
        ident = next(self._ids)
        # A bare lock, held until the reader releases it with the reply: a
        # cheaper wake-up than an Event on every call.
        done = threading.Lock()
        done.acquire()
        slot = [done, None]
        with self._plock:
            if self._closed:
                raise ConnectionClosed("the connection to the node agent is closed")
            self._pending[ident] = slot
        header = {"id": ident, "op": op}
        if body is not None:
            header["body"] = body
        self._send(header, parts)
        done.acquire()
        msg = slot[1]
        if msg is None:
            raise ConnectionClosed("the node agent closed the connection")
        header, parts = msg
        if header.get("error"):
            raise RemoteError(header.get("error_type", ""), header["error"])
        return header.get("body"), parts

    def notify(self, op, body, parts=()):
        """Sends a request that gets no reply."""
        self._send({"op": op, "body": body}, parts)

    def reply(self, ident, body=None, parts=(), error=None):
        header = {"id": ident, "reply": True}
        if body is not None:
            header["body"] = body
        if error is not None:
            header["error"] = error
            parts = ()
        self._send(header, parts)

    def _read_exact(self, n):
        buf = self._file.read(n)
        if buf is None or len(buf) < n:
            raise ConnectionClosed("short read")
        return buf

    def _read_loop(self):
        try:
            while True:
                hl, bl = _PREFIX.unpack(self._read_exact(8))
                header = json.loads(self._read_exact(hl))
                body = memoryview(self._read_exact(bl)) if bl else memoryview(b"")
                parts, off = [], 0
                for n in header.get("b", ()):
                    parts.append(body[off:off + n])
                    off += n
                if header.get("reply"):
                    with self._plock:
                        slot = self._pending.pop(header.get("id"), None)
                    if slot is not None:
                        slot[1] = (header, parts)
                        slot[0].release()
                else:
                    self._on_request(self, header, parts)
        except (ConnectionClosed, OSError, ValueError):
            pass
        finally:
            self._close_pending()

    def _close_pending(self):
        with self._plock:
            self._closed = True
            pending, self._pending = self._pending, {}
        for slot in pending.values():
            slot[0].release()

    @property
    def closed(self):
        return self._closed

    def close(self):
        self._close_pending()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
