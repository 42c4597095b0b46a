"""starlette Requests for handlers that ask for one.

A handler whose request parameter is type-hinted starlette.requests.Request
receives a real one (when starlette is installed), built from the same
request over an ASGI scope; other handlers receive the SDK's own Request,
which needs no third-party package. starlette Responses that handlers
return need nothing here: they carry status_code, body or body_iterator and
raw_headers, which _http serves as they are."""

import inspect
import typing

from rayk8s.serve import _http


def _starlette_request_class():
    try:
        from starlette.requests import Request
    except ImportError:
        return None
    return Request


def wants_starlette(fn, request_cls):
    """Whether fn's first parameter is annotated with request_cls (or a subclass)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if not params:
        return False
    ann = params[0].annotation
    if isinstance(ann, str):
        try:
            ann = typing.get_type_hints(getattr(fn, "__func__", fn)).get(params[0].name)
        except Exception:  # noqa: BLE001 - an unresolvable hint is not starlette's Request
            return False
    return inspect.isclass(ann) and issubclass(ann, request_cls)


def _client(meta):
    host, _, port = (meta.get("client") or "").rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def wants_starlette_request(fn):
    """Whether fn asks for a starlette Request (and starlette is installed)."""
    cls = _starlette_request_class()
    return cls is not None and wants_starlette(fn, cls)


def request_for(fn, meta, body, wants=None):
    """The request object fn receives for this HTTP call. wants, when not
    None, is wants_starlette_request(fn) computed before (the replica keeps
    it per handler: inspecting a signature costs more than the rest of a
    call)."""
    if wants is None:
        wants = wants_starlette_request(fn)
    if not wants:
        return _http.Request(meta, body)
    cls = _starlette_request_class()
    path = meta.get("path", "/")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": meta.get("method", "GET"),
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": (meta.get("query") or "").encode("latin-1"),
        "root_path": "",
        "headers": [(str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in meta.get("headers") or []],
        "client": _client(meta),
        "server": None,
    }
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body or b"", "more_body": False}

    return cls(scope, receive)
