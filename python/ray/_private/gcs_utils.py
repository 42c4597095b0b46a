"""Helpers for the GCS's external storage (Redis), standard library only.

The head (internal/runtime/gcs/redis.go) keeps each cluster's tables in Redis as one hash per
table, named ``RAY<storage namespace>@<table>``, with ``%`` and ``@`` in the table name
written as ``%25`` and ``%40``. A key therefore belongs to storage namespace N exactly when it
starts with ``RAY<N>@`` and has no ``@`` after that prefix: namespace ``a`` never claims the
keys of namespace ``a@b``.
"""

import os
import socket
import ssl
import time

__all__ = ["cleanup_redis_storage"]

_DEFAULT_PORT = 6379
_SCAN_COUNT = 1000


class RedisError(Exception):
    """An error reply from Redis."""


class _RespClient:
    """A minimal RESP2 client: enough for AUTH, SCAN and UNLINK."""

    def __init__(self, host, port, use_ssl, timeout):
        raw = socket.create_connection((host, port), timeout=timeout)
        if use_ssl:
            raw = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        self._sock = raw
        self._buf = raw.makefile("rb")

    def close(self):
        try:
            self._buf.close()
        finally:
            self._sock.close()

    def call(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self._sock.sendall(b"".join(parts))
        return self._read()

    def _line(self):
        line = self._buf.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("Redis closed the connection")
        return line[:-2]

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._buf.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionError("Redis closed the connection")
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RedisError("unexpected reply from Redis: %r" % line[:80])


def _glob_escape(s):
    out = bytearray()
    for ch in s:
        if ch in b"*?[]\\":
            out += b"\\"
        out.append(ch)
    return bytes(out)


def _env_int(name, default):
    v = os.environ.get(name, "")
    if not v:
        return default
    try:
        n = int(v)
    except ValueError:
        raise ValueError("invalid %s %r: want a whole number" % (name, v)) from None
    if n < 0:
        raise ValueError("invalid %s %r: want a non-negative number" % (name, v))
    return n


def _connect(host, port, use_ssl, username, password):
    """Connects and authenticates, retrying as the head does at start (RAY_redis_db_connect_*)."""
    attempts = max(1, _env_int("RAY_redis_db_connect_retries", 120))
    wait = _env_int("RAY_redis_db_connect_wait_milliseconds", 100) / 1000.0
    for attempt in range(1, attempts + 1):
        client = None
        try:
            client = _RespClient(host, port, use_ssl, timeout=10)
            if password:
                if username:
                    client.call("AUTH", username, password)
                else:
                    client.call("AUTH", password)
            client.call("PING")
            return client
        except (OSError, ConnectionError) as e:
            if client is not None:
                client.close()
            if attempt == attempts:
                raise ConnectionError(
                    "cannot reach Redis at %s:%s after %d attempts: %s" % (host, port, attempts, e)
                ) from e
            time.sleep(wait)
        except RedisError:
            if client is not None:
                client.close()
            raise


def cleanup_redis_storage(host, port, password, use_ssl, storage_namespace, username=None):
    """Deletes every key of one cluster's storage namespace from Redis and returns True.

    Keys of other namespaces, including namespaces that merely start with this one, stay.
    Errors (Redis unreachable, wrong password, Redis Cluster redirects) raise.
    """
    if not isinstance(storage_namespace, str) or not storage_namespace:
        raise ValueError("storage_namespace must be a non-empty string; refusing to guess which keys to delete")
    if not host:
        raise ValueError("host is required")
    port = int(port) if port else _DEFAULT_PORT
    prefix = b"RAY" + storage_namespace.encode() + b"@"
    pattern = _glob_escape(prefix) + b"*"
    client = _connect(host, port, bool(use_ssl), username, password)
    try:
        cursor = b"0"
        while True:
            cursor, keys = client.call("SCAN", cursor, "MATCH", pattern, "COUNT", _SCAN_COUNT)
            ours = [k for k in keys if k.startswith(prefix) and b"@" not in k[len(prefix):]]
            if ours:
                client.call("UNLINK", *ours)
            if cursor == b"0":
                return True
    finally:
        client.close()
