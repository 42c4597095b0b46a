"""The process-wide Ray core state of a driver or worker: its connection
to the node agent and the API functions that use it."""

import atexit
import contextvars
import glob
import ipaddress
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import cloudpickle

from ray import exceptions
from ray._private import wire
from ray._private.direct import DirectCalls
from ray._private.object_ref import ObjectRef, new_id
from ray._private.runtime_env import pip_spec

# The job a task runs for; nested submissions inherit it.
current_job = contextvars.ContextVar("ray_current_job", default=None)
current_task = contextvars.ContextVar("ray_current_task", default=None)
# The name worker output is prefixed with on the driver: the task's
# function or the actor's class.
current_name = contextvars.ContextVar("ray_current_name", default=None)
# The resources the running task or actor was granted.
current_resources = contextvars.ContextVar("ray_current_resources", default=None)
# The direct connection of the actor call being run, None for a call that
# came through the agent: its output goes back the way the call came, so it
# reaches the caller before the call's result does.
current_caller = contextvars.ContextVar("ray_current_caller", default=None)

_ERR_PICKLED = b"P"
_ERR_JSON = b"J"


class Worker:
    """Holds the connection of this process (one per process, like Ray)."""

    def __init__(self):
        self.conn = None
        self.mode = None  # "driver" or "worker"
        self.job_id = None
        self.namespace = None
        self.node_id = None
        self.node_ip = None
        self.gcs_address = None
        self.actor_id = None
        self.local_head = None
        self.log_to_driver = True
        self.lock = threading.RLock()
        self.on_request = None
        # Direct actor calls of this process and their values.
        self.direct = DirectCalls(self)

    @property
    def connected(self):
        return self.conn is not None and not self.conn.closed

    def check_connected(self):
        if not self.connected:
            raise exceptions.RaySystemError(
                "Ray has not been started yet. You can start Ray with 'ray.init()'.")

    def call(self, op, body=None, parts=()):
        self.check_connected()
        try:
            return self.conn.call(op, body, parts)
        except wire.RemoteError as e:
            raise _remote_error(e) from None
        except wire.ConnectionClosed as e:
            raise exceptions.RaySystemError(f"lost the connection to the Ray node agent: {e}") from None

    def notify(self, op, body, parts=()):
        """Sends a request the agent queues in order without answering."""
        self.check_connected()
        try:
            self.conn.notify(op, body, parts)
        except wire.ConnectionClosed as e:
            raise exceptions.RaySystemError(f"lost the connection to the Ray node agent: {e}") from None

    def job(self):
        return current_job.get() or self.job_id

    def print_worker_output(self, body):
        """Prints a worker's output on this driver (log_to_driver)."""
        _print_worker_output(body)


global_worker = Worker()


def _remote_error(e):
    builtin = {"ValueError": ValueError, "TypeError": TypeError, "RuntimeError": RuntimeError,
               "NotImplementedError": NotImplementedError}
    cls = builtin.get(e.type_name) or getattr(exceptions, e.type_name, None) or exceptions.RaySystemError
    return cls(e.message)


# --- finding the node -------------------------------------------------------

def _temp_root():
    base = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
    return os.path.join(base, "ray")


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _local_nodes(root):
    nodes = []
    for path in glob.glob(os.path.join(root, "rayk8s-core-nodes", "*.json")):
        try:
            with open(path) as f:
                n = json.load(f)
        except (OSError, ValueError):
            continue
        if _alive(n.get("pid", 0)) and os.path.exists(n.get("socket", "")):
            nodes.append(n)
    nodes.sort(key=lambda n: not n.get("is_head"))
    return nodes


def _same_address(a, b):
    """Whether GCS addresses a and b, one of them a local node's, are the same.

    A loopback host matches a local node by port alone: KubeRay sets
    RAY_ADDRESS=127.0.0.1:6379 on the head, whose node records its pod IP."""
    if a == b:
        return True
    try:
        ha, pa = a.rsplit(":", 1)
        hb, pb = b.rsplit(":", 1)
        if pa != pb:
            return False
        ia, ib = socket.gethostbyname(ha), socket.gethostbyname(hb)
        return ia == ib or ipaddress.ip_address(ia).is_loopback or ipaddress.ip_address(ib).is_loopback
    except (ValueError, OSError):
        return False


def _find_socket(address):
    """The core socket of this machine's node for address (None: any)."""
    inside = os.environ.get("RAYK8S_CORE_SOCKET")
    if inside:
        return inside, None
    job_dir = os.environ.get("RAYK8S_SERVE_SOCKET_DIR")
    if job_dir and os.path.exists(os.path.join(job_dir, "core.sock")):
        # A process the node agent started (a job entrypoint).
        return os.path.join(job_dir, "core.sock"), None
    root = _temp_root()
    nodes = _local_nodes(root)
    if address is None:
        try:
            with open(os.path.join(root, "ray_current_cluster")) as f:
                address = f.read().strip() or None
        except OSError:
            pass
    for n in nodes:
        if address is None or _same_address(n["gcs_address"], address):
            return n["socket"], n["gcs_address"]
    return None, address


# --- init / shutdown -----------------------------------------------------------

_UNSUPPORTED_INIT = ("object_store_memory", "local_mode", "_system_config", "_temp_dir", "storage",
                     "dashboard_host", "dashboard_port", "include_dashboard", "job_config",
                     "resources", "labels", "_node_ip_address", "logging_level", "configure_logging",
                     "log_to_driver_level", "runtime_env_setup", "_plasma_directory", "num_gpus")


class _LocalHead:
    """A head started by ray.init() with our `ray` binary, stopped at exit."""

    def __init__(self, num_cpus):
        ray_bin = os.environ.get("RAYK8S_RAY_BIN") or shutil.which("ray")
        if not ray_bin:
            raise ConnectionError("ray.init() found no running Ray instance and no `ray` executable on PATH to start one")
        self.tmp = tempfile.mkdtemp(prefix="ray-local-")
        ports = [_free_port() for _ in range(4)]
        args = [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                f"--port={ports[0]}", f"--dashboard-port={ports[1]}",
                f"--dashboard-agent-listen-port={ports[2]}", f"--metrics-export-port={ports[3]}",
                "--include-dashboard=false"]
        if num_cpus is not None:
            args.append(f"--num-cpus={num_cpus}")
        env = dict(os.environ, RAY_TMPDIR=self.tmp)
        env.pop("RAY_ADDRESS", None)
        self.log = open(os.path.join(self.tmp, "ray-start.log"), "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        root = os.path.join(self.tmp, "ray")
        while True:
            nodes = _local_nodes(root)
            if nodes:
                self.socket, self.gcs_address = nodes[0]["socket"], nodes[0]["gcs_address"]
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ConnectionError(f"starting a local Ray head with {ray_bin} failed; see {self.log.name}")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _job_runtime_env():
    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not raw:
        return {}
    try:
        return (json.loads(raw) or {}).get("runtime_env") or {}
    except ValueError:
        return {}


def init(address=None, *, namespace=None, runtime_env=None, ignore_reinit_error=False,
         log_to_driver=True, num_cpus=None, **kwargs):
    w = global_worker
    with w.lock:
        if w.connected:
            if ignore_reinit_error:
                return RayContext(w)
            raise RuntimeError("Maybe you called ray.init twice by accident? This error can be suppressed by "
                               "passing in 'ignore_reinit_error=True' or by calling 'ray.shutdown()' prior to 'ray.init()'.")
        for k in kwargs:
            if k in _UNSUPPORTED_INIT:
                raise NotImplementedError(f"ray.init({k}=...) is not implemented by this Ray runtime")
            raise TypeError(f"ray.init() got an unexpected keyword argument '{k}'")
        w.log_to_driver = bool(log_to_driver)
        job_env = _job_runtime_env()
        env_vars = dict((job_env.get("env_vars") or {}))
        pip = pip_spec(job_env.get("pip"), "the job")
        for key, value in (runtime_env or {}).items():
            if key == "pip":
                pip = pip_spec(value, "ray.init")
                continue
            if key != "env_vars":
                raise NotImplementedError(f"ray.init(runtime_env={{'{key}': ...}}) is not implemented by this Ray runtime; only env_vars and pip are")
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise TypeError("runtime_env['env_vars'] must be a dict of strings")
            env_vars.update(value)
        if address is None:
            address = os.environ.get("RAY_ADDRESS") or None
        if isinstance(address, str) and address.startswith("ray://"):
            raise NotImplementedError(f"Ray Client addresses ({address}) are not implemented by this Ray runtime")
        if isinstance(address, str) and "://" in address:
            raise ValueError(f"ray.init(address={address!r}): expected 'auto', 'local' or a GCS address host:port")
        sock, gcs = None, None
        if address != "local":
            sock, gcs = _find_socket(None if address in (None, "auto") else address)
        if sock is not None and num_cpus is not None:
            raise ValueError("When connecting to an existing cluster, num_cpus and num_gpus must not be provided.")
        if sock is None:
            if address == "auto":
                raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to "
                                      "by setting `--address` flag or `RAY_ADDRESS` environment variable.")
            if address not in (None, "local"):
                raise ConnectionError(f"Could not find a Ray node on this machine connected to the cluster at {address}; "
                                      "start one with `ray start --address=...` or check the address")
            w.local_head = _LocalHead(num_cpus)
            sock, gcs = w.local_head.socket, w.local_head.gcs_address
        _connect(w, sock, "driver", namespace=namespace, env_vars=env_vars, pip=pip)
        atexit.register(shutdown)
        if w.local_head is not None:
            _wait_registered(w, w.local_head)
        return RayContext(w)


def _wait_registered(w, head):
    """Returns once the new local head's node is alive in the control service: its agent
    answers before it has registered, and a program's first call may read the cluster's
    resources."""
    deadline = time.monotonic() + 60
    while True:
        body, _ = w.call("nodes")
        if any(n["node_id"] == w.node_id and n["alive"] for n in body):
            return
        if head.proc.poll() is not None or time.monotonic() > deadline:
            raise ConnectionError(f"the local Ray head did not register its node; see {head.log.name}")
        time.sleep(0.05)


def _connect(w, sock, role, namespace=None, env_vars=None, worker_id=None, pip=None, on_close=None):
    try:
        w.conn = wire.Connection(sock, _dispatch, on_close)
    except OSError as e:
        raise ConnectionError(f"connecting to the Ray node agent at {sock}: {e}") from None
    sys_path = []
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main_file:
        sys_path.append(os.path.dirname(os.path.abspath(main_file)))
    sys_path.append(os.getcwd())
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    body = {"role": role, "namespace": namespace or "", "env_vars": env_vars or {},
            "sys_path": sys_path, "py_path": os.path.dirname(pkg_root), "worker_id": worker_id or "", "pip": pip}
    w.mode = role
    reply, _ = w.call("hello", body)
    w.node_id, w.node_ip, w.gcs_address = reply["node_id"], reply["node_ip_address"], reply["gcs_address"]
    w.job_id = reply.get("job_id")
    w.namespace = reply.get("namespace", namespace)


def _dispatch(conn, header, parts):
    op = header.get("op")
    if op == "warning":
        print(f"(raylet) Warning: {header.get('body', {}).get('message', '')}", file=sys.stderr, flush=True)
        return
    if op == "log":
        _print_worker_output(header.get("body") or {})
        return
    handler = global_worker.on_request
    if handler is None:
        if header.get("id"):
            conn.reply(header["id"], error=f"this process does not serve {op!r}")
        return
    handler(conn, header, parts)


def _print_worker_output(b):
    w = global_worker
    if not w.log_to_driver:
        return
    where = f"pid={b.get('pid')}"
    if b.get("ip") and b.get("ip") != w.node_ip:
        where += f", ip={b['ip']}"
    out = sys.stderr if b.get("stderr") else sys.stdout
    prefix = f"({b.get('name') or 'worker'} {where}) "
    out.write("".join(prefix + line + "\n" for line in b.get("lines") or ()))
    out.flush()


def is_initialized():
    return global_worker.connected


def shutdown(_exiting_interpreter=False):
    w = global_worker
    with w.lock:
        if w.conn is not None:
            if w.mode == "driver" and not w.conn.closed:
                try:
                    # Returns once the node released the job's actors and objects.
                    w.conn.call("goodbye")
                except (wire.RemoteError, wire.ConnectionClosed):
                    pass
            w.conn.close()
            w.conn = None
        for r in list(w.direct.routes.values()):
            if r.conn is not None:
                r.conn.close()
        w.direct = DirectCalls(w)
        if w.local_head is not None:
            w.local_head.stop()
            w.local_head = None
        w.job_id = None
        w.namespace = None


class RayContext(dict):
    """What ray.init returns: a dict of the connection, like Ray's context."""

    def __init__(self, w):
        super().__init__(address=w.gcs_address, node_id=w.node_id, node_ip_address=w.node_ip,
                         namespace=w.namespace, job_id=w.job_id)
        self.address_info = dict(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutdown()

    def disconnect(self):
        shutdown()


# --- objects -------------------------------------------------------------------

# A value whose pickle has out-of-band buffers is sent as: magic, buffer
# count, the lengths of the pickle and of each buffer, the pickle, the
# buffers. Large contiguous buffers (numpy arrays) so go from the sender's
# memory to the socket, and come back as views of the received bytes,
# without being copied into or out of a pickle stream.
_OOB_MAGIC = b"\x00RK5"
_OOB_HEAD = struct.Struct("<4sI")
_OOB_MIN = 64 << 10


def dumps(value):
    """Pickles value with protocol 5: bytes, or a wire.Frames when large
    buffers travel out of band."""
    buffers = []

    def out_of_band(buf):
        try:
            raw = buf.raw()
        except BufferError:
            return True  # not contiguous: stays in the pickle
        if raw.nbytes < _OOB_MIN:
            return True
        buffers.append(raw)
        return False

    data = cloudpickle.dumps(value, protocol=5, buffer_callback=out_of_band)
    if not buffers:
        return data
    lens = [len(data)] + [b.nbytes for b in buffers]
    head = _OOB_HEAD.pack(_OOB_MAGIC, len(buffers)) + struct.pack(f"<{len(lens)}Q", *lens)
    return wire.Frames([head, data, *buffers])


def loads(data):
    """Inverse of dumps; out-of-band buffers become views of data."""
    mv = memoryview(data)
    if mv[:4] != _OOB_MAGIC:
        return cloudpickle.loads(data)
    _, n = _OOB_HEAD.unpack_from(mv)
    off = _OOB_HEAD.size
    lens = struct.unpack_from(f"<{n + 1}Q", mv, off)
    off += 8 * (n + 1)
    pickled = mv[off:off + lens[0]]
    off += lens[0]
    buffers = []
    for size in lens[1:]:
        buffers.append(mv[off:off + size])
        off += size
    return cloudpickle.loads(pickled, buffers=buffers)


def serialize(value, what="value"):
    try:
        return dumps(value)
    except Exception as e:  # noqa: BLE001 - any pickling failure is the user's input
        raise TypeError(f"Could not serialize the {what} {value!r}: {type(e).__name__}: {e}") from None


def deserialize(data):
    return loads(data)


def decode_error(data):
    data = bytes(data)
    if data[:1] == _ERR_PICKLED:
        err = cloudpickle.loads(data[1:])
        if isinstance(err, exceptions.RayTaskError):
            return err.as_instanceof_cause()
        return err
    if data[:1] == _ERR_JSON:
        d = json.loads(data[1:])
        cls = getattr(exceptions, d.get("type", ""), exceptions.RaySystemError)
        return cls(d.get("message", ""))
    return exceptions.RaySystemError("undecodable error object")


def put(value, *, _owner=None):
    if isinstance(value, ObjectRef):
        raise TypeError("Calling 'put' on an ray.ObjectRef is not allowed. If you really want to do this, "
                        "you can wrap the ray.ObjectRef in a list and call 'put' on it.")
    if _owner is not None:
        raise NotImplementedError("ray.put(_owner=...) is not implemented by this Ray runtime")
    w = global_worker
    w.check_connected()
    ref = ObjectRef(new_id(), w.node_id)
    w.call("put", {"object_id": ref.hex(), "job": w.job()}, [serialize(value)])
    return ref


def _timeout_ms(timeout):
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError(f"'timeout' must be a non-negative number or None, got {timeout}")
    return int(timeout * 1000)


def get(object_refs, *, timeout=None):
    w = global_worker
    w.check_connected()
    single = isinstance(object_refs, ObjectRef)
    refs = [object_refs] if single else object_refs
    if not single and not isinstance(refs, (list, tuple)):
        raise TypeError(f"Attempting to call `get` on the value {object_refs!r}, which is not an ray.ObjectRef.")
    for r in refs:
        if not isinstance(r, ObjectRef):
            raise TypeError(f"Attempting to call `get` on the value {r!r}, which is not an ray.ObjectRef.")
    if not refs:
        return []
    if w.direct.active():
        return _get_mixed(w, refs, single, timeout)
    body, parts = w.call("get", {"object_ids": [r.hex() for r in refs], "owners": [r._owner for r in refs],
                                 "job": w.job(), "timeout_ms": _timeout_ms(timeout)})
    values = []
    for data, is_err in zip(parts, body["errors"]):
        if is_err:
            raise decode_error(data)
        values.append(deserialize(data))
    return values[0] if single else values


def _deadline(timeout):
    if timeout is None:
        return None
    _timeout_ms(timeout)  # validates it
    return time.monotonic() + timeout


def _remaining_ms(deadline):
    if deadline is None:
        return -1
    return max(0, int((deadline - time.monotonic()) * 1000))


def _get_mixed(w, refs, single, timeout):
    """get over refs some of which are direct calls' returns: those are
    read from this process, the rest from the agent."""
    dc = w.direct
    deadline = _deadline(timeout)
    mine = [r._id for r in refs if dc.is_direct(r._id)]
    if not dc.wait_all(mine, deadline):
        raise exceptions.GetTimeoutError("Get timed out: some object(s) not ready.")
    results = {}
    for i in mine:
        v = dc.value(i)
        if v is not None:
            results[i] = (v[0], v[1])
    rest = [r for r in refs if r._id not in results]
    if rest:
        body, parts = w.call("get", {"object_ids": [r.hex() for r in rest], "owners": [r._owner for r in rest],
                                     "job": w.job(), "timeout_ms": _remaining_ms(deadline)})
        for r, data, is_err in zip(rest, parts, body["errors"]):
            results[r._id] = (data, is_err)
    values = []
    for r in refs:
        data, is_err = results[r._id]
        if is_err:
            raise decode_error(data)
        values.append(deserialize(data))
    return values[0] if single else values


def _wait_mixed(w, object_refs, num_returns, timeout):
    """wait over refs some of which are direct calls' returns: those are
    watched on their connections, the agent asked about the rest."""
    dc = w.direct
    deadline = _deadline(timeout)
    agent_idx = [i for i, r in enumerate(object_refs) if not dc.is_direct(r._id)]
    while True:
        ready = {i for i, r in enumerate(object_refs) if dc.value(r._id) is not None}
        conns = dc.pending_conns([r._id for r in object_refs])
        need = num_returns - len(ready)
        if agent_idx and need > 0:
            ms = 0 if conns else _remaining_ms(deadline)
            body, _ = w.call("wait", {"object_ids": [object_refs[i].hex() for i in agent_idx],
                                      "owners": [object_refs[i]._owner for i in agent_idx], "job": w.job(),
                                      "num_returns": min(need, len(agent_idx)), "timeout_ms": ms})
            ready.update(agent_idx[j] for j in body["ready"] or ())
        left = None if deadline is None else deadline - time.monotonic()
        if len(ready) >= num_returns or not conns or (left is not None and left <= 0):
            break
        # With objects of the agent's to watch too, it is asked again soon.
        slice_ = 0.01 if agent_idx else 0.05
        wire.wait_readable(conns, slice_ if left is None else min(left, slice_))
    ready_idx = set(sorted(ready)[:num_returns])
    return ([r for i, r in enumerate(object_refs) if i in ready_idx],
            [r for i, r in enumerate(object_refs) if i not in ready_idx])


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    w = global_worker
    w.check_connected()
    if isinstance(object_refs, ObjectRef) or not isinstance(object_refs, (list, tuple)):
        raise TypeError(f"wait() expected a list of ray.ObjectRef, got {type(object_refs)}")
    for r in object_refs:
        if not isinstance(r, ObjectRef):
            raise TypeError(f"wait() expected a list of ray.ObjectRef, got list containing {type(r)}")
    if len(set(object_refs)) != len(object_refs):
        raise ValueError("Wait requires a list of unique object refs.")
    if num_returns <= 0:
        raise ValueError("Invalid number of objects to return %d." % num_returns)
    if num_returns > len(object_refs):
        raise ValueError("num_returns cannot be greater than the number of objects provided to ray.wait.")
    if not object_refs:
        return [], []
    if w.direct.active():
        return _wait_mixed(w, object_refs, num_returns, timeout)
    body, _ = w.call("wait", {"object_ids": [r.hex() for r in object_refs], "owners": [r._owner for r in object_refs],
                              "job": w.job(), "num_returns": num_returns,
                              "timeout_ms": _timeout_ms(timeout)})
    ready_idx = set(body["ready"][:num_returns] if body["ready"] else [])
    ready = [r for i, r in enumerate(object_refs) if i in ready_idx]
    rest = [r for i, r in enumerate(object_refs) if i not in ready_idx]
    return ready, rest


def cancel(object_ref, *, force=False, recursive=True):
    """Cancels the task that returns object_ref: a queued task is dropped, a
    running one gets KeyboardInterrupt (force=True kills its worker); ray.get
    then raises TaskCancelledError. recursive cancels the tasks it submitted.
    An actor call is dropped while queued and cancelled while running on an
    async actor."""
    w = global_worker
    w.check_connected()
    if not isinstance(object_ref, ObjectRef):
        raise TypeError("ray.cancel() only supported for object refs. For actors, try ray.kill(). "
                        f"Got: {type(object_ref)}.")
    if object_ref._actor_call:
        if force:
            raise ValueError("force=True is not supported for actor tasks.")
        if w.direct.cancel(object_ref._id):
            return
        # A queued call is dropped, a running async one cancelled; a running
        # sync one finishes (Ray does not interrupt those either).
        w.call("cancel_actor_call", {"actor_id": object_ref._actor_call, "task_id": object_ref.hex()[:-8]})
        return
    w.call("cancel", {"object_id": object_ref.hex(), "owner": object_ref._owner,
                      "force": bool(force), "recursive": bool(recursive)})


def get_gpu_ids():
    """The GPU ids of this worker: none unless the task or actor asked for GPUs."""
    global_worker.check_connected()
    res = current_resources.get() or {}
    if not res.get("GPU"):
        return []
    raise NotImplementedError("ray.get_gpu_ids() for a task or actor with num_gpus is not implemented by this "
                              "Ray runtime: it assigns no GPU devices")


# --- cluster state -----------------------------------------------------------

def nodes():
    w = global_worker
    body, _ = w.call("nodes")
    out = []
    for n in body:
        out.append({
            "NodeID": n["node_id"],
            "Alive": n["alive"],
            "NodeManagerAddress": n["node_ip_address"],
            "NodeManagerHostname": n["hostname"],
            "NodeManagerPort": n["agent_port"],
            "MetricsExportPort": n["metrics_port"],
            "NodeName": n["node_ip_address"],
            "alive": n["alive"],
            "Resources": dict(n.get("resources_total") or {}) if n["alive"] else {},
            "Labels": dict(n.get("labels") or {}),
            "DeathReason": 0 if n["alive"] else 1,
            "DeathReasonMessage": n.get("death_reason", ""),
            "IsHeadNode": n["is_head"],
            "_available": dict(n.get("resources_available") or {}),
        })
    return out


def _sum(key):
    total = {}
    for n in nodes():
        if not n["Alive"]:
            continue
        for k, v in n[key].items():
            total[k] = total.get(k, 0.0) + v
    return total


def cluster_resources():
    return _sum("Resources")


def available_resources():
    return {k: v for k, v in _sum("_available").items() if v > 0}


def public_nodes():
    out = nodes()
    for n in out:
        n.pop("_available", None)
    return out
