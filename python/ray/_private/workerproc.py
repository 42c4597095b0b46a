"""A Ray core worker process: the node agent starts it, and it runs tasks
(pooled workers) or one actor, on requests from the agent."""

import asyncio
import base64
import collections
import concurrent.futures
import json
import os
import signal
import socket
import sys
import threading
import traceback

import cloudpickle

import ray
from ray import exceptions
from ray._private import wire
from ray._private import worker as state
from ray._private.object_ref import ObjectRef
from ray.actor import TERMINATE, TERMINATED

_ERR = b"P"
# The pickle of None, which most actor methods return.
_NONE = cloudpickle.dumps(None, protocol=5)


class DriverStream:
    """Stands in for sys.stdout/sys.stderr in a worker: writes go to the
    worker's log file and, line by line, to the driver of the job whose
    task wrote them (Ray's log_to_driver)."""

    def __init__(self, orig, stderr):
        self._orig = orig
        self._stderr = stderr
        self._buf = ""
        self._lock = threading.Lock()
        self.encoding = getattr(orig, "encoding", "utf-8")

    def write(self, s):
        self._orig.write(s)
        with self._lock:
            self._buf += s
            if "\n" not in self._buf:
                return len(s)
            *lines, self._buf = self._buf.split("\n")
        self._send(lines)
        return len(s)

    def flush(self):
        self._orig.flush()
        with self._lock:
            rest, self._buf = self._buf, ""
        if rest:
            self._send([rest])

    def _send(self, lines):
        w = state.global_worker
        job = state.current_job.get()
        if not job or not w.connected:
            return
        body = {"job": job, "name": state.current_name.get() or "worker", "pid": os.getpid(),
                "stderr": self._stderr, "lines": lines}
        caller = state.current_caller.get()
        if caller is not None:
            # A direct call's result goes straight to its caller; output sent
            # the same way arrives first, so a driver that exits right after
            # the result has printed it (the caller passes it on otherwise).
            try:
                caller.notify("log", body)
                return
            except Exception:  # noqa: BLE001 - the caller left: the agent takes it
                pass
        try:
            w.conn.notify("log", body)
        except Exception:  # noqa: BLE001 - output must never break the task
            pass

    def isatty(self):
        return False

    def fileno(self):
        return self._orig.fileno()

    def __getattr__(self, name):
        return getattr(self._orig, name)


class Executor:
    def __init__(self, w):
        self.w = w
        self.functions = {}
        # Calls for the main thread, in order: whichever thread reads the
        # connection appends them (usually the main thread itself, waiting
        # in serve).
        self.queue = collections.deque()
        self.actor = None
        self.loop = None
        self.threads = None
        self.ip = w.node_ip or socket.gethostname()
        # current is the task the main thread runs; cancel_requested the one
        # ray.cancel asked to interrupt.
        self.current = None
        self.cancel_requested = None
        self.actor_resources = {}
        # Actor calls ray.cancel named (by task id prefix), and the running
        # async ones by prefix.
        self.cancelled_calls = set()
        self.async_tasks = {}
        # An actor's own socket, where callers on this node send calls
        # directly (ray._private.direct), and their connections.
        self.listener = None
        self.direct_conns = set()
        # Finished direct calls not yet reported to the agent (state API);
        # the agent connection's own thread sends them in batches.
        self.done_calls = collections.deque()
        self.main_ident = threading.get_ident()
        # Wakes the main thread waiting in select when another thread
        # queued a call for it.
        self.idle = wire.IdleReader()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def on_sigint(self, signum, frame):
        # Only a cancel of the task running now interrupts it.
        if self.cancel_requested is not None and self.cancel_requested == self.current:
            raise KeyboardInterrupt

    # Runs on the thread reading the connection: never blocks.
    def on_request(self, conn, header, parts):
        if header.get("op") == "cancel":
            task_id = (header.get("body") or {}).get("task_id")
            prefix = (header.get("body") or {}).get("task_prefix")
            if prefix:
                self.cancelled_calls.add(prefix)
                if self.loop is not None:
                    self.loop.call_soon_threadsafe(self.cancel_async, prefix)
                # The agent waits for this: once ray.cancel returns, the call
                # can no longer start.
                if header.get("id"):
                    conn.reply(header["id"])
                return
            if task_id and task_id == self.current:
                self.cancel_requested = task_id
                os.kill(os.getpid(), signal.SIGINT)
            return
        if header.get("op") != "execute":
            if header.get("id"):
                conn.reply(header["id"], error=f"a worker does not serve {header.get('op')!r}")
            return
        body = header.get("body") or {}
        # __ray_terminate__ always runs on the main thread, which waits for
        # the calls of the loop or the pool that came before it.
        concurrent_call = body.get("kind") == "actor_call" and body.get("method") != TERMINATE
        if concurrent_call and self.loop is not None:
            asyncio.run_coroutine_threadsafe(self.run_async(header, parts, conn), self.loop)
            return
        if concurrent_call and self.threads is not None:
            try:
                self.threads.submit(self.execute, header, parts, conn)
            except RuntimeError:
                pass  # the actor is ending: the caller learns it from the agent or its lost connection
            return
        self.queue.append((header, parts, conn))
        if self.listener is not None and threading.get_ident() != self.main_ident:
            try:
                os.write(self.wake_w, b"x")
            except OSError:
                pass  # full: the main thread is being woken anyway

    def serve(self):
        conn = self.w.conn
        pending = self.queue
        while True:
            if not pending:
                if self.listener is None:
                    conn.pump(lambda: bool(pending))
                else:
                    self.wait_input()
                if not pending and conn.closed:
                    # The agent closed the connection: the process ends with it.
                    os._exit(0)
                if not pending:
                    continue
            # A cancel that arrived behind this call is already there to see.
            conn.poll()
            for dc in list(self.direct_conns):
                dc.poll()
            header, parts, from_conn = pending.popleft()
            self.execute(header, parts, from_conn)

    def listen(self):
        """Serves callers on this node directly on a socket beside the
        agent's; returns its path, or "" when there is none."""
        path = os.path.join(os.path.dirname(os.environ.get("RAYK8S_CORE_SOCKET", "")), f"actor-{os.getpid()}.sock")
        if len(path.encode()) > 100:
            return ""  # past the length a Unix socket path may have
        try:
            os.unlink(path)
        except OSError:
            pass
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lst.bind(path)
            os.chmod(path, 0o600)
            lst.listen(64)
        except OSError:
            lst.close()
            return ""
        lst.setblocking(False)
        self.listener = lst
        self.w.conn._on_idle = self.report_done
        return path

    def wait_input(self):
        """The main thread's wait for calls: on the agent's connection,
        the direct ones, new callers and the wake pipe at once."""
        conns = [self.w.conn, *self.direct_conns]
        for c in conns:
            if c.buffered():
                c.poll()
                return
        try:
            ready = wire.readable([*conns, self.listener, self.wake_r], None)
        except (OSError, ValueError):
            ready = conns
        for x in ready:
            if x is self.listener:
                self.accept()
            elif x is self.wake_r:
                try:
                    while os.read(self.wake_r, 4096):
                        pass
                except OSError:
                    pass
            elif not x.poll():
                x.wait_reader(0.005)

    def accept(self):
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        sock.setblocking(True)
        holder = []

        def gone():
            if holder:
                self.direct_conns.discard(holder[0])
                holder[0].close()
        c = wire.Connection(None, self.on_request, on_close=gone, sock=sock, idle_reader=self.idle)
        holder.append(c)
        self.direct_conns.add(c)

    def record_direct(self, conn, body, name, error_type):
        if conn is self.w.conn:
            return
        self.done_calls.append({"task_id": body.get("task_id"), "actor_id": self.w.actor_id, "name": name, "job": body.get("job"),
                                **({"error_type": error_type} if error_type else {})})

    def report_done(self):
        calls = []
        while self.done_calls:
            calls.append(self.done_calls.popleft())
        if calls:
            self.w.conn.notify("direct_done", {"calls": calls})

    def resolve(self, args, kwargs):
        refs = [a for a in args if isinstance(a, ObjectRef)] + [v for v in kwargs.values() if isinstance(v, ObjectRef)]
        if not refs:
            return args, kwargs
        values = dict(zip(refs, ray.get(refs)))
        args = tuple(values[a] if isinstance(a, ObjectRef) else a for a in args)
        kwargs = {k: values[v] if isinstance(v, ObjectRef) else v for k, v in kwargs.items()}
        return args, kwargs

    def error_blob(self, name, e):
        if isinstance(e, exceptions.RayTaskError):
            err = exceptions.RayTaskError(e.function_name, e.traceback_str, e.cause, e.pid, e.ip)
        else:
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            err = exceptions.RayTaskError(name, tb, e, os.getpid(), self.ip)
        try:
            return _ERR + cloudpickle.dumps(err)
        except Exception:  # noqa: BLE001 - an unpicklable exception travels as its text
            err.cause = exceptions.RayError(f"{type(e).__name__}: {e}")
            return _ERR + cloudpickle.dumps(err)

    def results(self, name, n, result):
        if n == 1:
            values = [result]
        elif n == 0:
            values = [None]
        else:
            values = list(result)
            if len(values) != n:
                raise ValueError(f"Task {name} returned {len(values)} objects, but num_returns={n}.")
        return [_NONE if v is None else state.serialize(v, f"return value of {name}:") for v in values]

    def cancel_async(self, prefix):
        task = self.async_tasks.get(prefix)
        if task is not None:
            task.cancel()

    def cancelled_reply(self, header, name, conn):
        body = header["body"]
        n = max(body.get("num_returns", 1), 1)
        err = exceptions.TaskCancelledError(f"Task: TaskID({body.get('task_id')}) ({name}) was cancelled.")
        self.reply(header, {"errors": [True] * n, "app_error": True, "cancelled": True},
                   [_ERR + cloudpickle.dumps(err)] * n, conn)
        self.record_direct(conn, body, name, "TASK_CANCELLED")

    def direct_caller(self, conn):
        """conn when a call came over a direct connection, None when it came
        through the agent."""
        return None if conn is None or conn is self.w.conn else conn

    def reply(self, header, body, parts, conn=None):
        if self.direct_caller(conn) is None:
            try:
                self.w.conn.reply(header["id"], body, parts)
            except Exception:  # noqa: BLE001 - the agent is gone; the process ends with it
                os._exit(1)
            return
        try:
            conn.reply(header["id"], body, parts)
        except Exception:  # noqa: BLE001 - a direct caller that left gets no answer
            pass

    def execute(self, header, parts, conn=None):
        body = header["body"]
        kind, n = body["kind"], max(body.get("num_returns", 1), 1)
        token_job = state.current_job.set(body.get("job"))
        token_task = state.current_task.set(body.get("task_id"))
        token_res = state.current_resources.set(body.get("resources") or self.actor_resources)
        if kind == "task":
            self.current = body.get("task_id")
        name = body.get("name") or body.get("method") or "task"
        token_name = state.current_name.set(type(self.actor).__name__ if kind == "actor_call" else name)
        token_caller = state.current_caller.set(self.direct_caller(conn))
        try:
            if kind == "task":
                fn = self.functions.get(body["fn_id"])
                if fn is None:
                    fn = state.deserialize(parts[0])
                    self.functions[body["fn_id"]] = fn
                args, kwargs = self.resolve(*state.deserialize(parts[1]))
                out = self.results(name, body.get("num_returns", 1), fn(*args, **kwargs))
            elif kind == "actor_init":
                cls = state.deserialize(parts[0])
                args, kwargs = self.resolve(*state.deserialize(parts[1]))
                self.w.actor_id = body.get("actor_id")
                self.w.job_id = body.get("job")
                self.w.namespace = body.get("namespace")
                self.actor_resources = body.get("resources") or {}
                self.actor = cls(*args, **kwargs)
                if body.get("is_async"):
                    self.start_loop()
                elif body.get("max_concurrency", 1) > 1:
                    self.threads = concurrent.futures.ThreadPoolExecutor(body["max_concurrency"])
                out = [b""]
                direct = self.listen()
                self.current = None
                self.reply(header, {"errors": [False], "direct_socket": direct}, out)
                return
            else:
                name = f"{type(self.actor).__name__}.{body['method']}"
                prefix = body.get("task_id", "")[:-8]
                if prefix in self.cancelled_calls:
                    self.cancelled_calls.discard(prefix)
                    self.cancelled_reply(header, name, conn)
                    return
                if body["method"] == TERMINATE:
                    self.terminate(header, parts, conn, name)
                    return
                method = getattr(self.actor, body["method"])
                args, kwargs = self.resolve(*state.deserialize(parts[0]))
                out = self.results(name, body.get("num_returns", 1), method(*args, **kwargs))
            self.current = None
            self.reply(header, {"errors": [False] * len(out)}, out, conn)
            if kind == "actor_call":
                self.record_direct(conn, body, name, None)
        except KeyboardInterrupt:
            if self.cancel_requested is None or self.cancel_requested != body.get("task_id"):
                raise
            self.current = None
            err = exceptions.TaskCancelledError(f"Task: TaskID({body.get('task_id')}) ({name}) was cancelled.")
            blob = _ERR + cloudpickle.dumps(err)
            self.reply(header, {"errors": [True] * n, "app_error": True, "cancelled": True}, [blob] * n, conn)
        except Exception as e:  # noqa: BLE001 - user code raised: the caller gets it
            self.current = None
            blob = self.error_blob(name, e)
            msg = "".join(traceback.format_exception_only(type(e), e)).strip()
            self.reply(header, {"errors": [True] * n, "app_error": True, "message": msg,
                                "retryable": _retryable(body, e)}, [blob] * n, conn)
            if kind == "actor_call":
                self.record_direct(conn, body, name, "TASK_EXECUTION_EXCEPTION")
        finally:
            self.current = None
            self.cancel_requested = None
            state.current_resources.reset(token_res)
            sys.stdout.flush()
            sys.stderr.flush()
            state.current_job.reset(token_job)
            state.current_task.reset(token_task)
            state.current_name.reset(token_name)
            state.current_caller.reset(token_caller)

    def terminate(self, header, parts, conn, name):
        """__ray_terminate__ (Ray's graceful end of an actor, which Ray also
        sends when every handle of the actor is gone): the calls that came
        before it finish, its caller gets its answer, and the agent ends the
        actor for good (no restart); calls after it fail as for ray.kill."""
        reason = header["body"].get("reason") or TERMINATED
        if self.threads is not None:
            self.threads.shutdown(wait=True)
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self.calls_done(), self.loop).result()
        self.reply(header, {"errors": [False]}, [_NONE], conn)
        self.record_direct(conn, header["body"], name, None)
        self.report_done()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            self.w.conn.call("kill_actor", {"actor_id": self.w.actor_id, "no_restart": True, "reason": reason})
        except Exception:  # noqa: BLE001 - the agent ended the process first, or is gone
            pass
        os._exit(0)

    async def calls_done(self):
        """Waits for the async actor's calls that started before this."""
        running = [t for t in self.async_tasks.values() if t is not asyncio.current_task()]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def start_loop(self):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()
        threading.Thread(target=run, name="ray-actor-loop", daemon=True).start()
        ready.wait()

    async def run_async(self, header, parts, conn=None):
        body = header["body"]
        n = max(body.get("num_returns", 1), 1)
        state.current_job.set(body.get("job"))
        state.current_task.set(body.get("task_id"))
        state.current_name.set(type(self.actor).__name__)
        state.current_resources.set(self.actor_resources)
        state.current_caller.set(self.direct_caller(conn))
        name = f"{type(self.actor).__name__}.{body['method']}"
        prefix = body.get("task_id", "")[:-8]
        if prefix in self.cancelled_calls:
            self.cancelled_calls.discard(prefix)
            self.cancelled_reply(header, name, conn)
            return
        self.async_tasks[prefix] = asyncio.current_task()
        try:
            method = getattr(self.actor, body["method"])
            args, kwargs = state.deserialize(parts[0])
            args, kwargs = await asyncio.get_running_loop().run_in_executor(None, self.resolve, args, kwargs)
            result = method(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            out = self.results(name, body.get("num_returns", 1), result)
            self.reply(header, {"errors": [False] * len(out)}, out, conn)
            self.record_direct(conn, body, name, None)
        except asyncio.CancelledError:
            self.cancelled_calls.discard(prefix)
            self.cancelled_reply(header, name, conn)
        except Exception as e:  # noqa: BLE001 - user code raised: the caller gets it
            self.reply(header, {"errors": [True] * n, "app_error": True}, [self.error_blob(name, e)] * n, conn)
            self.record_direct(conn, body, name, "TASK_EXECUTION_EXCEPTION")
        finally:
            self.async_tasks.pop(prefix, None)


def _retryable(body, e):
    """Whether e is one of the task's retry_exceptions types (when it lists them)."""
    raw = body.get("retry_exception_types")
    if not raw:
        return False
    try:
        return isinstance(e, cloudpickle.loads(base64.b64decode(raw)))
    except Exception:  # noqa: BLE001 - types that cannot load retry nothing
        return False


def main():
    for p in json.loads(os.environ.get("RAYK8S_CORE_SYS_PATH") or "[]"):
        if p not in sys.path:
            sys.path.append(p)
    sys.stdout = DriverStream(sys.stdout, False)
    sys.stderr = DriverStream(sys.stderr, True)
    w = state.global_worker
    ex = Executor(w)
    signal.signal(signal.SIGINT, ex.on_sigint)
    w.on_request = ex.on_request
    # The agent closing the connection ends the process.
    state._connect(w, os.environ["RAYK8S_CORE_SOCKET"], "worker", worker_id=os.environ["RAYK8S_CORE_WORKER_ID"],
                   on_close=lambda: os._exit(0))
    ex.ip = w.node_ip
    ex.serve()


if __name__ == "__main__":
    main()
