"""The framed protocol between a node agent and a replica.

Mirror of internal/serve/wire/wire.go; keep the two in step. A frame is a
9-byte header (payload length uint32, stream id uint32, type byte, all big
endian) and the payload. The dialing side (the agent) opens odd stream ids,
the accepting side (the replica) even ones.
"""

import asyncio
import hashlib
import json
import os
import struct

OPEN, DATA, END, ACCEPT, HEAD, CANCEL, ERROR, CREDIT = 1, 2, 3, 4, 5, 6, 7, 8

KIND_HTTP = "http"
KIND_HANDLE = "handle"
KIND_HEALTH = "health"
KIND_RECONFIGURE = "reconfigure"
KIND_STATS = "stats"
KIND_GRPC = "grpc"

ERR_USER = "user"
ERR_UNAVAILABLE = "unavailable"
ERR_BACKPRESSURE = "backpressure"
ERR_TIMEOUT = "timeout"
ERR_CANCELLED = "cancelled"
ERR_NOT_FOUND = "not_found"
ERR_INTERNAL = "internal"

HEADER = struct.Struct(">IIB")
MAX_PAYLOAD = 16 << 20
CHUNK_SIZE = 64 << 10
DEFAULT_WINDOW = 4 * CHUNK_SIZE
CREDIT_STRUCT = struct.Struct(">I")
SOCKET_DIR_ENV = "RAYK8S_SERVE_SOCKET_DIR"


class ConnectionClosed(Exception):
    """The connection (or stream) ended."""


def socket_path(directory, replica_id):
    """Where replica_id listens; same as replica.SocketPath in Go."""
    digest = hashlib.sha256(replica_id.encode()).hexdigest()[:16]
    return os.path.join(directory, digest + ".sock")


def encode(stream_id, ftype, payload=b""):
    return HEADER.pack(len(payload), stream_id, ftype) + payload


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def chunks(data):
    for i in range(0, len(data), CHUNK_SIZE):
        yield data[i : i + CHUNK_SIZE]


def credit(n):
    return CREDIT_STRUCT.pack(n)


def decode_credit(payload):
    return CREDIT_STRUCT.unpack(payload)[0] if len(payload) == 4 else 0


class Window:
    """The sender's side of a call's flow control (wire.Window in Go): take
    waits until the caller returned enough credit; size 0 never waits."""

    def __init__(self, size):
        self.size = size
        self.avail = size
        self.changed = asyncio.Event()

    async def take(self, n):
        if self.size <= 0:
            return
        need = min(n, self.size)
        while self.avail < need:
            self.changed.clear()
            await self.changed.wait()
        self.avail -= n

    def give(self, n):
        if self.size <= 0 or n <= 0:
            return
        self.avail = min(self.avail + n, self.size)
        self.changed.set()


class Stream:
    """One call's frames in both directions."""

    def __init__(self, conn, stream_id):
        self.conn = conn
        self.id = stream_id
        self.queue = asyncio.Queue()
        self.closed = False

    def push(self, ftype, payload):
        self.queue.put_nowait((ftype, payload))

    def fail(self):
        self.queue.put_nowait((None, None))

    async def recv(self):
        ftype, payload = await self.queue.get()
        if ftype is None:
            self.queue.put_nowait((None, None))
            raise ConnectionClosed("stream closed")
        return ftype, payload

    def send(self, *frames):
        """Queue frames (type, payload) on the connection, in order."""
        if self.closed or self.conn.closed:
            raise ConnectionClosed("stream closed")
        self.conn.write(b"".join(encode(self.id, t, p) for t, p in frames))

    async def drain(self):
        """Wait while the connection's write buffer is full."""
        if self.closed or self.conn.closed:
            raise ConnectionClosed("stream closed")
        try:
            await self.conn.writer.drain()
        except (ConnectionError, OSError) as e:
            raise ConnectionClosed(str(e)) from e

    def close(self):
        if not self.closed:
            self.closed = True
            self.conn.streams.pop(self.id, None)
            self.fail()


class Conn:
    """Streams multiplexed over one asyncio connection."""

    def __init__(self, reader, writer, dialer, on_open=None):
        self.reader = reader
        self.writer = writer
        self.on_open = on_open
        self.streams = {}
        self.next_id = 1 if dialer else 2
        self.closed = False
        self.done = asyncio.get_running_loop().create_future()
        self.task = asyncio.ensure_future(self._read_loop())

    def open(self):
        if self.closed:
            raise ConnectionClosed("connection closed")
        s = Stream(self, self.next_id)
        self.next_id += 2
        self.streams[s.id] = s
        return s

    def write(self, data):
        self.writer.write(data)

    async def _read_loop(self):
        try:
            while True:
                header = await self.reader.readexactly(HEADER.size)
                length, stream_id, ftype = HEADER.unpack(header)
                if length > MAX_PAYLOAD:
                    raise ConnectionClosed("frame too large")
                payload = await self.reader.readexactly(length) if length else b""
                s = self.streams.get(stream_id)
                if s is None:
                    if ftype == OPEN and self.on_open is not None and stream_id % 2 != self.next_id % 2:
                        s = Stream(self, stream_id)
                        self.streams[stream_id] = s
                        s.push(ftype, payload)
                        self.on_open(s)
                    continue
                s.push(ftype, payload)
        except (asyncio.IncompleteReadError, ConnectionError, ConnectionClosed, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        for s in list(self.streams.values()):
            s.fail()
        self.streams.clear()
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - closing a broken transport
            pass
        if not self.done.done():
            self.done.set_result(None)
