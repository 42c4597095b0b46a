"""The protocol between Ray core processes and their node agent.

A message is an 8-byte prefix (header length, body length; uint32 big endian),
a JSON header and a body made of the message's binary parts, whose sizes the
header lists under "b". Either side sends requests (an "id" > 0) and answers
each with a message of the same id and "reply": true; id 0 is a notification.
internal/runtime/core/corewire is the Go side; keep the two in step.
"""

import collections
import itertools
import json
import select
import socket
import struct
import threading
import time

_PREFIX = struct.Struct(">II")
# One compact encoder for every header: json.dumps builds a new one per
# call when given separators.
_HEADER_ENCODER = json.JSONEncoder(separators=(",", ":"))
# Bodies up to this size are read through the connection's buffer; larger
# ones straight into their own memory.
_SMALL_BODY = 1 << 16
# How often the connection's own thread looks for messages that arrived
# while no caller was reading (worker output, cancels).
_IDLE_POLL = 0.02


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


def _never():
    return False


def _flatten(parts):
    for p in parts:
        if isinstance(p, Frames):
            yield from p.pieces
        else:
            yield p


# The most bytes of binary parts one message to the node agent carries
# (corewire.MaxBody): the agent ends a connection that sends more. Between
# two Python processes (a direct actor call) the length prefix is the bound.
MAX_BODY = 1 << 31
_MAX_PREFIXED = (1 << 32) - 1


class Connection:
    """One socket connection that both sends and serves requests.

    There is no thread that always reads: a thread waiting for something
    from the agent (a reply, the next request) reads the socket itself while
    no other thread does, and hands what is not its own to the others. That
    saves a thread hand-off per reply. While nobody waits, the connection's
    own thread picks up what arrived every few milliseconds.

    on_request(conn, header, parts) runs on whichever thread reads; it must
    not block, and answers with conn.reply when the request has an id.
    on_close() runs once when the connection ends.
    """

    def __init__(self, path, on_request, on_close=None, sock=None, on_idle=None, idle_reader=None):
        # sock: a connected socket to use instead of connecting to path
        # (an actor process serving a caller directly).
        self.max_body = MAX_BODY if sock is None else _MAX_PREFIXED
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                raise
        self._sock = sock
        # on_idle runs on the connection's own thread every few
        # milliseconds: work that must not cost a wake-up of its own.
        self._on_idle = on_idle
        self._wlock = threading.Lock()
        self._ids = itertools.count(1)
        # _cond guards _pending, _reading (a thread holds the reading role)
        # and _closed; threads waiting for their turn wait on it.
        self._cond = threading.Condition(threading.Lock())
        self._pending = {}
        self._reading = False
        # _idle_reading: the reading thread is the idle one, which reads
        # only what is there and soon lets go.
        self._idle_reading = False
        self._closed = False
        self._on_request = on_request
        self._on_close = on_close
        self._rbuf = bytearray(_SMALL_BODY * 2)
        self._rstart = 0
        self._rend = 0
        self._broken = False
        self._ended = threading.Event()
        if idle_reader is not None:
            # One thread watches many connections (an actor's callers, a
            # caller's actors) instead of a thread each.
            idle_reader.add(self)
        else:
            self._reader = threading.Thread(target=self._idle_loop, name="ray-core-reader", daemon=True)
            self._reader.start()

    # --- sending ---------------------------------------------------------

    def _send(self, header, parts=()):
        sizes = [p.nbytes if isinstance(p, Frames) else len(p) for p in parts]
        if sizes:
            header["b"] = sizes
        total = sum(sizes)
        if total > self.max_body:
            # Refused here, before a byte is sent: the agent would end the
            # whole connection on it.
            raise ValueError(f"{header.get('op', 'reply')}: {total} bytes of values in one message, more than "
                             f"the {self.max_body} bytes one message on this connection carries")
        raw = _HEADER_ENCODER.encode(header).encode()
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
        slot = [None]
        with self._cond:
            if self._closed:
                raise ConnectionClosed("the connection to the node agent is closed")
            self._pending[ident] = slot
        header = {"id": ident, "op": op}
        if body is not None:
            header["body"] = body
        try:
            self._send(header, parts)
            self.pump(lambda: slot[0] is not None)
        finally:
            if slot[0] is None:
                with self._cond:
                    self._pending.pop(ident, None)
        msg = slot[0]
        if msg is None:
            raise ConnectionClosed("the node agent closed the connection")
        header, parts = msg
        if header.get("error"):
            raise RemoteError(header.get("error_type", ""), header["error"])
        return header.get("body"), parts

    def start(self, op, body, parts, on_reply):
        """Sends a request without waiting: on_reply(header, parts) runs
        on whichever thread reads its reply, or on_reply(None, ()) once
        the connection ends first. It must be quick and not block."""
        ident = next(self._ids)
        with self._cond:
            if self._closed:
                raise ConnectionClosed("the connection is closed")
            self._pending[ident] = on_reply
        try:
            self._send({"id": ident, "op": op, "body": body}, parts)
        except ConnectionClosed:
            with self._cond:
                self._pending.pop(ident, None)
            raise

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

    # --- receiving -------------------------------------------------------

    def pump(self, done):
        """Returns once done() holds (checked whenever a message was
        handled) or the connection ended, reading the socket meanwhile
        whenever no other thread does."""
        cond = self._cond
        while True:
            with cond:
                while not done() and self._reading and not self._closed:
                    cond.wait()
                if done() or self._closed:
                    return
                self._reading = True
            self._lead(done, block=True)

    def pump_until(self, done, deadline):
        """pump, giving up at deadline (time.monotonic()); returns done()."""
        cond = self._cond
        while True:
            with cond:
                while not done() and self._reading and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    cond.wait(remaining)
                if done() or self._closed:
                    return done()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._reading = True
            try:
                ready = self._rend > self._rstart or readable([self._sock], remaining)
            except (OSError, ValueError):
                ready = True  # the read that follows reports it
            if ready:
                self._lead(done, block=False)
            else:
                with cond:
                    self._reading = False
                    cond.notify_all()

    def fileno(self):
        return self._sock.fileno()

    def buffered(self):
        """Whether read input waits in the buffer (select does not see it)."""
        return self._rend > self._rstart

    def poll(self):
        """Handles what has arrived, without waiting for more: a worker
        calls it before each call it runs, so that a cancel the agent sent
        before that call's turn came is seen first."""
        with self._cond:
            while self._reading and self._idle_reading:
                self._cond.wait()
            if self._reading or self._closed:
                # Another thread reads as messages arrive.
                return False
            self._reading = True
        self._lead(_never, block=False)
        return True

    def idle_poll(self):
        """poll for a background reader: one that other readers wait for
        rather than miss what it is reading."""
        with self._cond:
            if self._reading or self._closed:
                return
            self._reading = self._idle_reading = True
        self._lead(_never, block=False)

    def wait_reader(self, timeout):
        """Waits up to timeout seconds while another thread holds the
        reading role: a thread watching the socket with poll(2) would
        otherwise spin while that one reads a large message."""
        with self._cond:
            if self._reading and not self._closed:
                self._cond.wait(timeout)

    def _lead(self, done, block):
        """Reads and handles messages, holding the reading role, until
        done() holds (or, unless block, no more input is there)."""
        try:
            while not done() and (block or self._has_input()):
                self._deliver(*self._read_message())
        except (ConnectionClosed, OSError, ValueError):
            self._set_closed()
        finally:
            with self._cond:
                self._reading = self._idle_reading = False
                self._cond.notify_all()

    def _deliver(self, header, parts):
        if header.get("reply"):
            with self._cond:
                slot = self._pending.pop(header.get("id"), None)
                if slot is not None and not callable(slot):
                    slot[0] = (header, parts)
                    self._cond.notify_all()
                    return
            if slot is not None:
                slot(header, parts)
                with self._cond:
                    self._cond.notify_all()
            return
        self._on_request(self, header, parts)
        with self._cond:
            # A request may be what another thread waits for (a worker's
            # next task).
            self._cond.notify_all()

    def _has_input(self):
        if self._rend > self._rstart:
            return True
        try:
            return bool(readable([self._sock], 0))
        except (OSError, ValueError):
            return True  # the read that follows reports it

    def _idle_loop(self):
        # A separate Event: waking this thread on every reply would cost the
        # hand-off the reading role saves.
        while not self._ended.wait(_IDLE_POLL):
            if self._on_idle is not None:
                try:
                    self._on_idle()
                except Exception:  # noqa: BLE001 - the hook's failure must not end the reader
                    pass
            with self._cond:
                if self._reading or self._closed:
                    continue
                self._reading = self._idle_reading = True
            self._lead(_never, block=False)

    def _fill(self, n):
        """Makes n bytes available from _rstart in the buffer."""
        if self._rend - self._rstart >= n:
            return
        buf = self._rbuf
        if self._rstart + n > len(buf):
            have = self._rend - self._rstart
            if n > len(buf):
                grown = bytearray(max(n, 2 * len(buf)))
                grown[:have] = buf[self._rstart:self._rend]
                self._rbuf = buf = grown
            else:
                buf[:have] = buf[self._rstart:self._rend]
            self._rstart, self._rend = 0, have
        view = memoryview(buf)
        while self._rend - self._rstart < n:
            got = self._sock.recv_into(view[self._rend:])
            if not got:
                raise ConnectionClosed("short read")
            self._rend += got

    def _read_message(self):
        if self._broken:
            # An exception (KeyboardInterrupt) cut a large body short.
            raise ConnectionClosed("a read from the node agent was interrupted mid-message")
        self._fill(8)
        hl, bl = _PREFIX.unpack_from(self._rbuf, self._rstart)
        if bl <= _SMALL_BODY:
            self._fill(8 + hl + bl)
            start = self._rstart + 8
            header = json.loads(self._rbuf[start:start + hl])
            body = memoryview(bytes(self._rbuf[start + hl:start + hl + bl]))
            self._rstart = start + hl + bl
        else:
            self._fill(8 + hl)
            start = self._rstart + 8
            header = json.loads(self._rbuf[start:start + hl])
            start += hl
            big = bytearray(bl)
            have = min(self._rend - start, bl)
            big[:have] = self._rbuf[start:start + have]
            view = memoryview(big)
            if have == bl:
                self._rstart = start + bl
            else:
                # The rest straight from the socket; the buffer is empty then.
                self._rstart = self._rend = 0
                self._broken = True  # until the body is complete
                while have < bl:
                    got = self._sock.recv_into(view[have:])
                    if not got:
                        raise ConnectionClosed("short read")
                    have += got
                self._broken = False
            body = view.toreadonly()
        if self._rstart == self._rend:
            self._rstart = self._rend = 0
        parts, off = [], 0
        for n in header.get("b", ()):
            parts.append(body[off:off + n])
            off += n
        return header, parts

    def _set_closed(self):
        with self._cond:
            if self._closed:
                return
            self._closed = True
            pending, self._pending = self._pending, {}
            self._cond.notify_all()
        self._ended.set()
        for slot in pending.values():
            if callable(slot):
                try:
                    slot(None, ())
                except Exception:  # noqa: BLE001 - every waiter must hear of the end
                    pass
        if self._on_close is not None:
            self._on_close()

    @property
    def closed(self):
        return self._closed

    def close(self):
        self._set_closed()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def wait_readable(conns, timeout):
    """Handles what arrives on any of conns, waiting up to timeout seconds
    for something to: a caller waiting on several actors' direct
    connections at once."""
    live = [c for c in conns if not c.closed]
    if not live:
        return
    for c in live:
        if c.buffered():
            c.poll()
            return
    try:
        ready = readable(live, timeout)
    except (OSError, ValueError):
        ready = live
    for c in ready:
        if not c.poll():
            c.wait_reader(0.005)


def readable(objs, timeout):
    """The objects of objs (sockets, connections, file descriptors) with
    input, waiting up to timeout seconds (None: forever). poll(2), unlike
    select(2), takes descriptors past 1024."""
    p = select.poll()
    by_fd = {}
    for o in objs:
        fd = o if isinstance(o, int) else o.fileno()
        by_fd[fd] = o
        p.register(fd, select.POLLIN)
    ms = None if timeout is None else max(0, int(timeout * 1000))
    return [by_fd[fd] for fd, _ in p.poll(ms)]


class IdleReader:
    """Reads, every few milliseconds, what arrived on connections nobody
    is waiting on, with one thread for all of them."""

    def __init__(self):
        self._conns = set()
        self._lock = threading.Lock()
        self._thread = None

    def add(self, conn):
        with self._lock:
            self._conns.add(conn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ray-core-idle-reader", daemon=True)
                self._thread.start()

    def _loop(self):
        while True:
            time.sleep(_IDLE_POLL)
            with self._lock:
                for c in [c for c in self._conns if c.closed]:
                    self._conns.discard(c)
                conns = list(self._conns)
                if not conns:
                    # Nothing left to watch: no wake-ups until add.
                    self._thread = None
                    return
            try:
                ready = readable(conns, 0)
            except (OSError, ValueError):
                ready = conns
            for c in ready:
                c.idle_poll()
