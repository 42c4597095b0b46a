"""The Request a deployment receives over HTTP and the conversion of what
it returns to an HTTP response."""

import inspect
import json
from urllib.parse import parse_qsl, quote


class _Headers:
    """Case-insensitive, read-only headers (first value wins on get)."""

    def __init__(self, pairs):
        self._pairs = [(k.lower(), v) for k, v in pairs]

    def get(self, key, default=None):
        key = key.lower()
        for k, v in self._pairs:
            if k == key:
                return v
        return default

    def getlist(self, key):
        key = key.lower()
        return [v for k, v in self._pairs if k == key]

    def __getitem__(self, key):
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __contains__(self, key):
        return self.get(key) is not None

    def keys(self):
        return [k for k, _ in self._pairs]

    def items(self):
        return list(self._pairs)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self._pairs)

    def __repr__(self):
        return f"Headers({self._pairs!r})"


class _Awaitable:
    """A value usable both directly and with await, so `await request.json()`
    (Starlette style) and `request.json()` in sync handlers both work."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value

    def __await__(self):
        if False:  # pragma: no cover - makes this a generator
            yield
        return self._value

    def __getattr__(self, name):
        return getattr(self._value, name)

    def __getitem__(self, key):
        return self._value[key]

    def __iter__(self):
        return iter(self._value)

    def __len__(self):
        return len(self._value)

    def __contains__(self, item):
        return item in self._value

    def __eq__(self, other):
        if isinstance(other, _Awaitable):
            other = other._value
        return self._value == other

    def __hash__(self):
        return hash(self._value)

    def __bool__(self):
        return bool(self._value)

    def __str__(self):
        return str(self._value)

    def __repr__(self):
        return repr(self._value)

    def __bytes__(self):
        return bytes(self._value)


# Request's attributes that come straight from the call's metadata: (key,
# default) in the OPEN frame.
_META_FIELDS = {
    "method": ("method", "GET"),
    "path": ("path", "/"),
    "query_string": ("query", ""),
    "route_prefix": ("route_prefix", ""),
    "request_id": ("request_id", ""),
    "client": ("client", ""),
}


class Request:
    """An HTTP request, with the parts of Starlette's Request that Serve
    deployments use."""

    _headers = None
    _query_params = None
    _url = None

    def __init__(self, meta, body):
        self._meta = meta
        self._body = body

    def __getattr__(self, name):
        # method, path, query_string, route_prefix, request_id and client
        # are read from the metadata on first use (and kept, so they can
        # be set like any attribute): most handlers read few of them, and
        # every call builds a Request.
        field = _META_FIELDS.get(name)
        meta = self.__dict__.get("_meta")
        if field is None or meta is None:
            raise AttributeError(f"'Request' object has no attribute '{name}'")
        value = meta.get(*field)
        self.__dict__[name] = value
        return value

    @property
    def _raw_headers(self):
        return self._meta.get("headers")

    # headers, query_params and url are built on first use: most handlers
    # read none of them, and every call builds a Request.
    @property
    def headers(self):
        if self._headers is None:
            self._headers = _Headers(self._raw_headers or [])
        return self._headers

    @headers.setter
    def headers(self, value):
        self._headers = value

    @property
    def query_params(self):
        if self._query_params is None:
            self._query_params = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query_params

    @query_params.setter
    def query_params(self, value):
        self._query_params = value

    @property
    def url(self):
        if self._url is None:
            host = self.headers.get("host", "localhost")
            self._url = f"http://{host}{quote(self.path)}" + (f"?{self.query_string}" if self.query_string else "")
        return self._url

    @url.setter
    def url(self, value):
        self._url = value

    def body(self):
        return _Awaitable(self._body)

    def json(self):
        return _Awaitable(json.loads(self._body or b"null"))

    def text(self):
        return _Awaitable(self._body.decode("utf-8", errors="replace"))

    def __repr__(self):
        return f"Request({self.method} {self.path})"


class Response:
    """An explicit response: body (bytes, str, or anything JSON-encodable),
    status code, headers and media type."""

    media_type = None

    def __init__(self, content=b"", status_code=200, headers=None, media_type=None):
        self.status_code = status_code
        self.headers = dict(headers or {})
        if media_type is not None:
            self.media_type = media_type
        self.body = self.render(content)

    def render(self, content):
        if content is None:
            return b""
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode()
        return json.dumps(content).encode()


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content):
        return json.dumps(content, separators=(",", ":")).encode()


class PlainTextResponse(Response):
    media_type = "text/plain; charset=utf-8"


class StreamingResponse:
    """A response whose body is produced chunk by chunk: content is a
    generator, async generator or other iterable of str or bytes; each
    chunk reaches the client as it is produced."""

    media_type = None

    def __init__(self, content, status_code=200, headers=None, media_type=None):
        self.body_iterator = content
        self.status_code = status_code
        self.headers = dict(headers or {})
        if media_type is not None:
            self.media_type = media_type


def is_streaming(result):
    """Whether what a deployment returned is streamed: a generator, an
    async generator or a StreamingResponse (ours or Starlette's)."""
    return inspect.isgenerator(result) or inspect.isasyncgen(result) or hasattr(result, "body_iterator")


def stream_head(result):
    """(status, [(header, value)], iterator) of a streamed result."""
    if hasattr(result, "body_iterator"):
        headers = _headers_of(result)
        media = getattr(result, "media_type", None)
        if media and not any(k == "content-type" for k, _ in headers):
            headers.append(("content-type", media))
        return int(result.status_code), headers, result.body_iterator
    return 200, [("content-type", "text/plain; charset=utf-8")], result


def encode_chunk(item):
    """The bytes of one streamed item: bytes as they are, str as UTF-8,
    anything else as JSON."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode()
    return json.dumps(item).encode()


def _headers_of(result):
    raw = getattr(result, "raw_headers", None)
    if raw:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
    return [(str(k).lower(), str(v)) for k, v in dict(getattr(result, "headers", {}) or {}).items()]


def to_http(result):
    """(status, [(header, value)], body) of what a deployment returned:
    dict/list/numbers/None as JSON, str as text, bytes as they are, or a
    Response (ours or a Starlette-like one with status_code/body/headers)."""
    if hasattr(result, "status_code") and hasattr(result, "body"):
        headers = []
        raw = getattr(result, "raw_headers", None)
        if raw:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        else:
            headers = [(str(k).lower(), str(v)) for k, v in dict(getattr(result, "headers", {}) or {}).items()]
        media = getattr(result, "media_type", None)
        if media and not any(k == "content-type" for k, _ in headers):
            headers.append(("content-type", media))
        body = result.body
        if isinstance(body, str):
            body = body.encode()
        return int(result.status_code), headers, bytes(body or b"")
    if isinstance(result, bytes):
        return 200, [("content-type", "application/octet-stream")], result
    if isinstance(result, str):
        return 200, [("content-type", "text/plain; charset=utf-8")], result.encode()
    return 200, [("content-type", "application/json")], json.dumps(result).encode()
