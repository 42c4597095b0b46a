"""Where a client of the dashboard's REST API (state API, autoscaler SDK) finds it."""

import os

# The dashboard's port on a KubeRay head (and Ray's default): a driver learns
# the GCS address from ray.init, not the dashboard's.
DEFAULT_DASHBOARD_PORT = 8265


def dashboard_url(address=None):
    """The dashboard's base URL: an http(s) address as given; otherwise the
    host of address, RAY_API_SERVER_ADDRESS, RAY_ADDRESS or the cluster this
    process connected to, on the dashboard's default port."""
    if address is None:
        address = os.environ.get("RAY_API_SERVER_ADDRESS", "").strip() or None
    if address is None:
        address = os.environ.get("RAY_ADDRESS", "").strip() or None
    if not isinstance(address, (str, type(None))):
        raise TypeError("address should be a str, not %s" % type(address).__name__)
    if address and address.startswith(("http://", "https://")):
        return address.rstrip("/")
    if not address or address == "auto":
        address = _connected_gcs_address() or ""
    if address.startswith("ray://"):
        address = address[len("ray://"):]
    host = address.rsplit(":", 1)[0] if address else "127.0.0.1"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        host = "[%s]" % host
    return "http://%s:%d" % (host or "127.0.0.1", DEFAULT_DASHBOARD_PORT)


def _connected_gcs_address():
    """The GCS address ``ray.init`` connected this process to, if it did."""
    try:
        from ray._private import worker
    except ImportError:
        return None
    w = getattr(worker, "global_worker", None)
    if w is None or not w.connected:
        return None
    return w.gcs_address
