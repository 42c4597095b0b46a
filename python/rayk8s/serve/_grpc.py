"""gRPC calls in Python replicas.

The proxy forwards request messages as bytes. The replica decodes them with
the user's generated classes: grpc_options.grpc_servicer_functions names the
generated ``add_<Service>Servicer_to_server`` functions, and calling one with
a recording server reveals each method's deserializer, serializer and
whether it streams. Answers are length-prefixed messages (see the wire
package's KindGRPC), and the call's ``grpc_context`` status, details and
trailing metadata travel in END.
"""

import importlib
import inspect
import struct
import threading

try:
    import grpc
except ImportError:  # the replica still serves HTTP and handle calls
    grpc = None


class MethodNotFound(Exception):
    """The deployment has no method of the RPC's name."""


class _AnyServicer:
    """Stands in for the user's servicer: every method exists."""

    def __getattr__(self, name):
        return lambda *a, **k: None


class _RecordingServer:
    """Records the handlers an add_<Service>Servicer_to_server registers."""

    def __init__(self):
        self.handlers = {}

    def add_generic_rpc_handlers(self, generic_handlers):
        for h in generic_handlers:
            methods = getattr(h, "_method_handlers", None)
            if methods:
                self.handlers.update(methods)

    def add_registered_method_handlers(self, service, method_handlers):
        for name, h in method_handlers.items():
            self.handlers[f"/{service}/{name}"] = h


_lock = threading.Lock()
_cache = {}


def handlers(servicer_functions):
    """Method handlers by full method name ("/pkg.Service/Method")."""
    key = tuple(servicer_functions or ())
    with _lock:
        if key in _cache:
            return _cache[key]
    server = _RecordingServer()
    for path in key:
        module_name, _, fn_name = path.rpartition(".")
        if not module_name:
            raise ValueError(f"grpc_servicer_functions: {path!r} is not a module.function import path")
        fn = getattr(importlib.import_module(module_name), fn_name, None)
        if fn is None:
            raise ValueError(f"grpc_servicer_functions: module {module_name!r} has no {fn_name!r}")
        fn(_AnyServicer(), server)
    with _lock:
        _cache[key] = server.handlers
    return server.handlers


def status_code(code):
    """The numeric gRPC status of a grpc.StatusCode (or an int)."""
    if isinstance(code, int):
        return code
    return code.value[0]


class RayServegRPCContext:
    """What a deployment method sees of its gRPC call, as Ray's
    ray.serve.grpc_util.RayServegRPCContext: request metadata in, status
    code, details and trailing metadata out."""

    def __init__(self, metadata):
        self._metadata = tuple((k, v) for k, v in metadata if not k.startswith(":"))
        self._code = grpc.StatusCode.OK if grpc is not None else 0
        self._details = ""
        self._trailing = ()

    def invocation_metadata(self):
        return self._metadata

    def set_code(self, code):
        self._code = code

    def code(self):
        return self._code

    def set_details(self, details):
        self._details = details

    def details(self):
        return self._details

    def set_trailing_metadata(self, trailing_metadata):
        self._trailing = tuple(trailing_metadata)

    def trailing_metadata(self):
        return self._trailing

    def end_status(self):
        """END's "grpc" entry."""
        return {"code": status_code(self._code), "details": self._details or "", "trailers": [[k, v] for k, v in self._trailing]}


def wants_context(fn):
    try:
        return "grpc_context" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def frame(message):
    """One length-prefixed message of an answer."""
    return struct.pack(">I", len(message)) + message
