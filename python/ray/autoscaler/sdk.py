"""``request_resources``: ask the cluster autoscaler to keep capacity up, standard library only.

The call goes to the head's dashboard (``POST /api/autoscaler/request_resources``), which keeps
the bundles until the next call replaces them; the autoscaler sidecar (``ray kuberay-autoscaler``)
counts them against the cluster's total resources, so it scales up at once and scales nothing
down that they hold. See
https://docs.ray.io/en/latest/cluster/running-applications/autoscaling/reference.html.

The dashboard is found the way Ray's job SDK finds it: ``RAY_API_SERVER_ADDRESS``, else an
``http(s)://`` ``RAY_ADDRESS``; a ``ray://host:port`` address, a GCS ``host:port`` (``RAY_ADDRESS``
or the address ``ray.init`` connected to) and nothing at all mean port 8265, the dashboard's
default, on that host or on 127.0.0.1.
"""

import json
import numbers
import urllib.error
import urllib.request

from ray._private import auth
from ray._private.dashboard_address import dashboard_url

__all__ = ["request_resources"]

_PATH = "/api/autoscaler/request_resources"
_TIMEOUT_S = 30


def request_resources(num_cpus=None, bundles=None):
    """Keep capacity for ``num_cpus`` CPUs (as that many ``{"CPU": 1}`` bundles) and each bundle
    of ``bundles`` (a list of ``{resource: amount}`` dicts) in the cluster until the next call.

    Each call replaces the previous request; ``request_resources()`` withdraws it. Returns None.
    Raises TypeError or ValueError naming the argument at fault, and ConnectionError when the
    dashboard cannot be reached.
    """
    body = {}
    if num_cpus is not None:
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, int):
            raise TypeError("num_cpus should be of type int, not %s" % type(num_cpus).__name__)
        if num_cpus < 0:
            raise ValueError("num_cpus should not be negative: %d" % num_cpus)
        body["num_cpus"] = num_cpus
    if bundles is not None:
        if not isinstance(bundles, list):
            raise TypeError("bundles should be of type list, not %s" % type(bundles).__name__)
        for i, bundle in enumerate(bundles):
            if not isinstance(bundle, dict):
                raise TypeError("bundles[%d] should be a dict, not %s" % (i, type(bundle).__name__))
            for key, value in bundle.items():
                if not isinstance(key, str) or not key:
                    raise TypeError("bundles[%d]: each resource name should be a non-empty str, not %r" % (i, key))
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise TypeError("bundles[%d][%r] should be a number, not %s" % (i, key, type(value).__name__))
                if value < 0:
                    raise ValueError("bundles[%d][%r] should not be negative: %r" % (i, key, value))
        body["bundles"] = bundles
    _post(_dashboard_url(), body)


def _post(base, body):
    data = json.dumps(body).encode()
    req = urllib.request.Request(base + _PATH, data=data, method="POST", headers={"Content-Type": "application/json"})
    auth.add_header(req)
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
            resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace").strip()
        if e.code == 400:
            raise ValueError("request_resources refused: %s" % detail) from None
        raise RuntimeError("request_resources: the dashboard at %s answered %d: %s" % (base, e.code, detail)) from None
    except urllib.error.URLError as e:
        raise ConnectionError("request_resources: could not reach the dashboard at %s: %s" % (base, e.reason)) from None


def _dashboard_url():
    return dashboard_url(None)
