"""The framed protocol between a node agent and a replica.

Mirror of internal/serve/wire/wire.go; keep the two in step. A frame is a
9-byte header (payload length uint32, stream id uint32, type byte, all big
endian) and the payload. The dialing side (the agent) opens odd stream ids,
the accepting side (the replica) even ones.
"""

import asyncio
import collections
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


_ENCODER = json.JSONEncoder(separators=(",", ":"))
_SCAN = json.JSONDecoder().scan_once


def loads(payload):
    """json.loads of a frame's payload. The compact UTF-8 JSON both
    runtimes write goes straight to the C scanner (json.loads spends more
    on detecting the encoding and checking for whitespace than on the
    parse); anything else, including what is not JSON, gets json.loads
    and its errors."""
    try:
        text = payload.decode()
        obj, end = _SCAN(text, 0)
        if end == len(text):
            return obj
    except (UnicodeDecodeError, StopIteration, ValueError):
        pass
    return json.loads(payload)


# How the agent begins the OPEN payload of an HTTP call, and the key of a
# multiplexed model ID in it (a key: inside a JSON string its quotes would
# be escaped).
_HTTP_OPEN_PREFIX = b'{"kind":"http",'
_MODEL_ID_KEY = b'"multiplexed_model_id":'


class LazyMeta:
    """An HTTP call's OPEN metadata, decoded when a field other than its
    kind or its (absent) multiplexed model ID is first asked for; get is
    dict.get of the decoded object. A handler that reads nothing of its
    request costs no JSON decoding, about a third of a no-op call."""

    __slots__ = ("payload", "_meta")

    def __init__(self, payload):
        self.payload = payload
        self._meta = None

    def get(self, key, default=None):
        meta = self._meta
        if meta is None:
            if key == "kind":
                return KIND_HTTP
            if key == "multiplexed_model_id":
                return default
            meta = self.decoded()
        return meta.get(key, default)

    def decoded(self):
        """The decoded metadata: a dict, else ValueError."""
        if self._meta is None:
            meta = loads(self.payload)
            if not isinstance(meta, dict):
                raise ValueError(f"An OPEN frame's metadata is not a JSON object: {self.payload[:200]!r}")
            self._meta = meta
        return self._meta


def lazy_http_open(payload):
    """Whether an OPEN payload is an HTTP call as the agent encodes it
    (kind first) without a multiplexed model ID, whose metadata a
    LazyMeta can hold undecoded."""
    return payload.startswith(_HTTP_OPEN_PREFIX) and _MODEL_ID_KEY not in payload


def open_call(payload):
    """An OPEN frame's (metadata, kind, multiplexed model ID). The
    metadata has get like a dict's: a LazyMeta when lazy_http_open(payload)
    (its kind is http and it has no model ID, known without decoding), else
    loads(payload) at once; ValueError when that is not a JSON object."""
    if lazy_http_open(payload):
        return LazyMeta(payload), KIND_HTTP, None
    meta = loads(payload)
    if not isinstance(meta, dict):
        raise ValueError(f"An OPEN frame's metadata is not a JSON object: {payload[:200]!r}")
    return meta, meta.get("kind"), meta.get("multiplexed_model_id")


def dumps(obj):
    # One encoder for every frame: json.dumps with separators builds a new
    # one per call.
    return _ENCODER.encode(obj).encode()


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

    __slots__ = ("size", "avail", "changed")

    def __init__(self, size):
        self.size = size
        self.avail = size
        # Made when a sender first has to wait: most calls never do.
        self.changed = None

    async def take(self, n):
        if self.size <= 0:
            return
        need = min(n, self.size)
        while self.avail < need:
            if self.changed is None:
                self.changed = asyncio.Event()
            self.changed.clear()
            await self.changed.wait()
        self.avail -= n

    def give(self, n):
        if self.size <= 0 or n <= 0:
            return
        self.avail = min(self.avail + n, self.size)
        if self.changed is not None:
            self.changed.set()


class Stream:
    """One call's frames in both directions.

    Received frames wait in a deque for recv(). A call being served can set
    on_control(ftype, payload): CANCEL and CREDIT frames then go straight to
    it from the connection's read loop, and a failing stream calls it with
    (None, None), so no task per call has to wait for them."""

    __slots__ = ("conn", "id", "frames", "waiter", "failed", "closed", "on_control")

    def __init__(self, conn, stream_id):
        self.conn = conn
        self.id = stream_id
        self.frames = collections.deque()
        self.waiter = None
        self.failed = False
        self.closed = False
        self.on_control = None

    def push(self, ftype, payload):
        if self.on_control is not None and (ftype == CANCEL or ftype == CREDIT):
            self.on_control(ftype, payload)
            return
        self.frames.append((ftype, payload))
        self._wake()

    def fail(self):
        self.failed = True
        if self.on_control is not None:
            self.on_control(None, None)
        self._wake()

    def _wake(self):
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def recv(self):
        """The next frame: queued frames first, then ConnectionClosed once
        the stream failed."""
        while True:
            if self.frames:
                return self.frames.popleft()
            if self.failed:
                raise ConnectionClosed("stream closed")
            self.waiter = self.conn.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    def send(self, *frames):
        """Queue frames (type, payload) on the connection, in order."""
        if self.closed or self.conn.closed:
            raise ConnectionClosed("stream closed")
        self.conn.write(self.id, frames)

    def send_frame(self, ftype, payload):
        """send of one frame."""
        if self.closed or self.conn.closed:
            raise ConnectionClosed("stream closed")
        self.conn.write_frame(self.id, ftype, payload)

    def send_answer(self, head, data):
        """send of HEAD, DATA (unless data is empty; at most CHUNK_SIZE
        bytes) and an empty END."""
        if self.closed or self.conn.closed:
            raise ConnectionClosed("stream closed")
        self.conn.write_answer(self.id, head, data)

    async def drain(self):
        """Wait while the connection's write buffer is full."""
        if self.closed or self.conn.closed:
            raise ConnectionClosed("stream closed")
        try:
            await self.conn.drain()
        except (ConnectionError, OSError) as e:
            raise ConnectionClosed(str(e)) from e

    def close(self):
        if not self.closed:
            self.closed = True
            self.on_control = None
            self.conn.streams.pop(self.id, None)
            # fail(), inlined: every call ends here.
            self.failed = True
            w = self.waiter
            if w is not None and not w.done():
                w.set_result(None)


class Conn:
    """Streams multiplexed over one asyncio connection.

    Writes are coalesced: frames queue in a buffer that is flushed once the
    event loop has run what is ready, so the answers of all the calls served
    in one loop iteration (and a call's ACCEPT with the HEAD that follows it
    at once) share one syscall. Frames that arrive together are dispatched
    together, and the flush is queued behind the calls they started, so a
    batch of quick calls is answered with one write.

    Two ways to drive it: with a StreamReader/StreamWriter pair (a task
    reads), or as the protocol of its transport (ConnProtocol: the
    transport hands over what it read in the same loop iteration, without
    the reader's future and the task's wake-up)."""

    def __init__(self, reader, writer, dialer, on_open=None, transport=None):
        self.reader = reader
        self.writer = writer
        self.transport = transport if transport is not None else writer.transport
        self.on_open = on_open
        self.streams = {}
        self.next_id = 1 if dialer else 2
        self.closed = False
        self.loop = asyncio.get_running_loop()
        self.wbuf = []
        self.flush_scheduled = False
        self.dispatching = False
        self.rbuf = b""
        # Protocol mode's write flow control (a StreamWriter has its own).
        self.paused = False
        self.drain_waiters = []
        self.done = self.loop.create_future()
        self.task = asyncio.ensure_future(self._read_loop()) if reader is not None else None

    def open(self):
        if self.closed:
            raise ConnectionClosed("connection closed")
        s = Stream(self, self.next_id)
        self.next_id += 2
        self.streams[s.id] = s
        return s

    def write(self, stream_id, frames):
        pack = HEADER.pack
        wbuf = self.wbuf
        for ftype, payload in frames:
            wbuf.append(pack(len(payload), stream_id, ftype))
            if payload:
                wbuf.append(payload)
        if not self.flush_scheduled and not self.dispatching:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def write_frame(self, stream_id, ftype, payload):
        """write of one frame, without the tuples."""
        wbuf = self.wbuf
        wbuf.append(HEADER.pack(len(payload), stream_id, ftype))
        if payload:
            wbuf.append(payload)
        if not self.flush_scheduled and not self.dispatching:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def write_answer(self, stream_id, head, data):
        """write of a whole short answer: HEAD, DATA when data is not
        empty (at most CHUNK_SIZE bytes) and an empty END."""
        pack = HEADER.pack
        wbuf = self.wbuf
        wbuf.append(pack(len(head), stream_id, HEAD))
        wbuf.append(head)
        if data:
            wbuf.append(pack(len(data), stream_id, DATA))
            wbuf.append(data)
        wbuf.append(pack(0, stream_id, END))
        if not self.flush_scheduled and not self.dispatching:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self):
        self.flush_scheduled = False
        if not self.wbuf:
            return
        data = b"".join(self.wbuf)
        self.wbuf.clear()
        if not self.closed:
            self.transport.write(data)

    async def drain(self):
        """Wait while the connection's write buffer is full."""
        self.flush()
        if self.writer is not None:
            await self.writer.drain()
            return
        while self.paused and not self.closed:
            w = self.loop.create_future()
            self.drain_waiters.append(w)
            await w
        if self.closed:
            raise ConnectionClosed("connection closed")

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self._wake_drainers()

    def _wake_drainers(self):
        waiters, self.drain_waiters = self.drain_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def feed(self, data):
        """Dispatch the frames data completes. Writes made meanwhile (a
        call's ACCEPT) do not schedule a flush of their own: the one
        flush is queued after the calls these frames started."""
        buf = self.rbuf + data if self.rbuf else data
        unpack = HEADER.unpack_from
        size = HEADER.size
        streams = self.streams
        on_open = self.on_open
        parity = self.next_id % 2
        pos, n = 0, len(buf)
        self.dispatching = True
        try:
            while n - pos >= size:
                length, stream_id, ftype = unpack(buf, pos)
                if length > MAX_PAYLOAD:
                    raise ConnectionClosed("frame too large")
                end = pos + size + length
                if end > n:
                    break
                payload = buf[pos + size : end] if length else b""
                pos = end
                s = streams.get(stream_id)
                if s is None:
                    if ftype == OPEN and on_open is not None and stream_id % 2 != parity:
                        s = Stream(self, stream_id)
                        streams[stream_id] = s
                        s.frames.append((ftype, payload))
                        on_open(s)
                    continue
                # Stream.push, inlined: two frames of every call come here.
                if s.on_control is not None and (ftype == CANCEL or ftype == CREDIT):
                    s.on_control(ftype, payload)
                    continue
                s.frames.append((ftype, payload))
                if s.waiter is not None:
                    s._wake()
        finally:
            self.dispatching = False
            if self.wbuf and not self.flush_scheduled:
                self.flush_scheduled = True
                self.loop.call_soon(self.flush)
        self.rbuf = buf[pos:] if pos < n else b""

    async def _read_loop(self):
        read = self.reader.read
        try:
            while True:
                data = await read(1 << 16)
                if not data:
                    break
                self.feed(data)
        except (ConnectionError, ConnectionClosed, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.close()

    def close(self):
        if self.closed:
            return
        self.flush()
        self.closed = True
        for s in list(self.streams.values()):
            s.fail()
        self.streams.clear()
        self._wake_drainers()
        try:
            self.transport.close()
        except Exception:  # noqa: BLE001 - closing a broken transport
            pass
        if not self.done.done():
            self.done.set_result(None)


class ConnProtocol(asyncio.Protocol):
    """A Conn as its transport's protocol (loop.create_unix_server's
    factory makes one per connection); on_made and on_lost hear of the
    Conn's start and end."""

    def __init__(self, dialer, on_open=None, on_made=None, on_lost=None):
        self.dialer = dialer
        self.on_open = on_open
        self.on_made = on_made
        self.on_lost = on_lost
        self.conn = None

    def connection_made(self, transport):
        self.conn = Conn(None, None, self.dialer, on_open=self.on_open, transport=transport)
        if self.on_made is not None:
            self.on_made(self.conn)

    def data_received(self, data):
        try:
            self.conn.feed(data)
        except ConnectionClosed:
            self.conn.close()

    def eof_received(self):
        self.conn.close()
        return False

    def connection_lost(self, exc):
        self.conn.close()
        if self.on_lost is not None:
            self.on_lost(self.conn)

    def pause_writing(self):
        self.conn.pause_writing()

    def resume_writing(self):
        self.conn.resume_writing()
