"""The state SDK's calls: each one GETs ``/api/v0/<resource>`` from the dashboard.

The dashboard is found as ``ray.autoscaler.sdk`` finds it: the ``address`` argument, else
``RAY_API_SERVER_ADDRESS``, else ``RAY_ADDRESS``, else the GCS address ``ray.init`` connected
to. An ``http(s)://`` address is the dashboard itself; a GCS ``host:port``, ``ray://host:port``,
``"auto"`` or nothing mean port 8265 (the dashboard's default, and what KubeRay's head uses) on
that host or on 127.0.0.1. A dashboard on another port needs its ``http://`` address.
"""

import json
import numbers
import urllib.error
import urllib.parse
import urllib.request
import warnings

from ray._private import auth
from ray._private.dashboard_address import dashboard_url
from ray.util.state.common import (
    DEFAULT_LIMIT,
    DEFAULT_RPC_TIMEOUT,
    ActorState,
    JobState,
    NodeState,
    ObjectState,
    PlacementGroupState,
    TaskState,
    WorkerState,
)
from ray.util.state.exception import RayStateApiException, ServerUnavailable

_PREDICATES = ("=", "!=")
# The server gets less time than the client waits, so that a partial answer
# (some node agents too slow) arrives before the client gives up, as Ray does.
_SERVER_TIMEOUT_SHARE = 0.8

_STATE_CLASSES = {
    "actors": ActorState,
    "tasks": TaskState,
    "nodes": NodeState,
    "jobs": JobState,
    "objects": ObjectState,
    "placement_groups": PlacementGroupState,
    "workers": WorkerState,
}

_ID_COLUMNS = {
    "actors": "actor_id",
    "tasks": "task_id",
    "nodes": "node_id",
    "objects": "object_id",
    "placement_groups": "placement_group_id",
    "workers": "worker_id",
}


_dashboard_url = dashboard_url


def _check_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s should be an int, not %s" % (name, type(value).__name__))
    if value <= 0:
        raise ValueError("%s should be positive, not %d" % (name, value))


def _filter_value(key, value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, numbers.Integral, float)):
        return str(value)
    raise TypeError("filter on %r: the value should be a str, bool, int or float, not %s"
                    % (key, type(value).__name__))


def _params(filters, limit, timeout, detail):
    _check_int("limit", limit)
    _check_int("timeout", timeout)
    if not isinstance(detail, bool):
        raise TypeError("detail should be a bool, not %s" % type(detail).__name__)
    params = [("limit", str(limit)), ("timeout", str(max(1, int(timeout * _SERVER_TIMEOUT_SHARE))))]
    if detail:
        params.append(("detail", "true"))
    if filters is None:
        filters = []
    if not isinstance(filters, (list, tuple)):
        raise TypeError("filters should be a list of (key, predicate, value) tuples, not %s"
                        % type(filters).__name__)
    for f in filters:
        if not isinstance(f, (list, tuple)) or len(f) != 3:
            raise ValueError("the filter %r is not a (key, predicate, value) tuple" % (f,))
        key, predicate, value = f
        if not isinstance(key, str) or not key:
            raise ValueError("the filter %r: the key should be a non-empty str (a column name)" % (f,))
        if predicate not in _PREDICATES:
            raise ValueError("the filter %r: predicate %r is not supported; use = or !=" % (f, predicate))
        params += [("filter_keys", key), ("filter_predicates", predicate),
                   ("filter_values", _filter_value(key, value))]
    return params


def _request(address, resource, params, timeout):
    base = _dashboard_url(address)
    url = "%s/api/v0/%s?%s" % (base, resource, urllib.parse.urlencode(params))
    req = auth.add_header(urllib.request.Request(url, method="GET"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ServerUnavailable(
            "could not reach the Ray dashboard at %s: %s; pass address='http://<head>:<dashboard port>' "
            "or set RAY_API_SERVER_ADDRESS" % (base, reason)) from None
    try:
        reply = json.loads(body)
    except ValueError:
        raise RayStateApiException("the dashboard at %s answered HTTP %d without a state API reply: %.200r"
                                   % (base, status, body)) from None
    if not isinstance(reply, dict) or not reply.get("result"):
        msg = reply.get("msg") if isinstance(reply, dict) else reply
        raise RayStateApiException("the state API refused to list %s: %s" % (resource, msg))
    return reply["data"]["result"]


def _warn_or_raise(resource, answer, raise_on_missing_output, explain):
    warning = answer.get("partial_failure_warning")
    total, after = answer.get("total", 0), answer.get("num_after_truncation", 0)
    if raise_on_missing_output:
        if warning:
            raise RayStateApiException(
                "could not list every one of the cluster's %s: %s; pass raise_on_missing_output=False "
                "to get what could be listed" % (resource, warning))
        if total != after:
            raise RayStateApiException(
                "only %d of the cluster's %d %s were read; pass raise_on_missing_output=False to get them"
                % (after, total, resource))
    if explain:
        if warning:
            warnings.warn(warning)
        shown, matching = len(answer.get("result") or []), answer.get("num_filtered", 0)
        if matching > shown:
            warnings.warn("returned the first %d of %d %s; narrow the filters or raise the limit"
                          % (shown, matching, resource))


def _list(resource, address, filters, limit, timeout, detail, raise_on_missing_output, _explain):
    params = _params(filters, limit, timeout, detail)
    answer = _request(address, resource, params, timeout)
    _warn_or_raise(resource, answer, raise_on_missing_output, _explain)
    cls = _STATE_CLASSES[resource]
    return [cls(**row) for row in answer.get("result") or []]


def _get(resource, id, address, timeout, _explain):
    if not isinstance(id, str) or not id:
        raise TypeError("id should be a non-empty str, not %r" % (id,))
    _check_int("timeout", timeout)
    params = _params([(_ID_COLUMNS[resource], "=", id)], DEFAULT_LIMIT, timeout, True)
    answer = _request(address, resource, params, timeout)
    _warn_or_raise(resource, answer, False, _explain)
    cls = _STATE_CLASSES[resource]
    return [cls(**row) for row in answer.get("result") or []]


def list_actors(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT,
                detail=False, raise_on_missing_output=True, _explain=False):
    """The cluster's actors as ActorState objects, at most ``limit``, sorted by ID."""
    return _list("actors", address, filters, limit, timeout, detail, raise_on_missing_output, _explain)


def list_tasks(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT,
               detail=False, raise_on_missing_output=True, _explain=False):
    """The cluster's task attempts as TaskState objects, at most ``limit``, sorted by ID."""
    return _list("tasks", address, filters, limit, timeout, detail, raise_on_missing_output, _explain)


def list_nodes(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT,
               detail=False, raise_on_missing_output=True, _explain=False):
    """The cluster's nodes, alive and dead, as NodeState objects."""
    return _list("nodes", address, filters, limit, timeout, detail, raise_on_missing_output, _explain)


def list_jobs(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT,
              detail=False, raise_on_missing_output=True, _explain=False):
    """The cluster's submitted jobs and connected drivers as JobState objects."""
    return _list("jobs", address, filters, limit, timeout, detail, raise_on_missing_output, _explain)


def list_objects(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT,
                 detail=False, raise_on_missing_output=True, _explain=False):
    """The objects in the nodes' object stores as ObjectState objects."""
    return _list("objects", address, filters, limit, timeout, detail, raise_on_missing_output, _explain)


def list_placement_groups(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT,
                          detail=False, raise_on_missing_output=True, _explain=False):
    """The cluster's placement groups as PlacementGroupState objects."""
    return _list("placement_groups", address, filters, limit, timeout, detail, raise_on_missing_output,
                 _explain)


def list_workers(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT,
                 detail=False, raise_on_missing_output=True, _explain=False):
    """The cluster's worker processes as WorkerState objects. This runtime's head does not list
    them and answers with RayStateApiException saying so."""
    return _list("workers", address, filters, limit, timeout, detail, raise_on_missing_output, _explain)


def _one(resource, id, rows):
    if not rows:
        return None
    if len(rows) > 1:
        raise RayStateApiException("%d %s have the id %s" % (len(rows), resource, id))
    return rows[0]


def get_actor(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    """The actor with this ID, with every column, or None."""
    return _one("actors", id, _get("actors", id, address, timeout, _explain))


def get_task(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    """The task with this ID, with every column: one TaskState, a list of them when the task
    ran more than once (one per attempt), or None."""
    rows = _get("tasks", id, address, timeout, _explain)
    if not rows:
        return None
    return rows[0] if len(rows) == 1 else rows


def get_node(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    """The node with this ID, with every column, or None."""
    return _one("nodes", id, _get("nodes", id, address, timeout, _explain))


def get_placement_group(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    """The placement group with this ID (hex), with every column, or None."""
    return _one("placement_groups", id, _get("placement_groups", id, address, timeout, _explain))


def get_objects(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    """The rows of the object with this ID (a list, empty when there is none)."""
    return _get("objects", id, address, timeout, _explain)


def get_worker(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    """The worker process with this ID (None when no node runs it)."""
    return _one("workers", id, _get("workers", id, address, timeout, _explain))
