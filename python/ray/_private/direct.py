"""Direct actor calls: a caller on the actor's node sends its calls
straight to the actor's process and gets the results back into its own
memory, as Ray's core workers call actors without the raylet: two process
hops per call instead of four through the node agent.

The agent says when a caller may switch to an actor's direct socket
(op actor_direct): only when the actor runs on this node, cannot restart,
and has none of the agent's calls queued or running, so a caller's calls
keep their order. A handle's first call always goes through the agent,
which also waits out the actor's construction. A result stays in this
process until its ref escapes (is pickled): then it is put into the agent's
store under the same id, or, while its call runs, announced there (expect)
and put when it comes. See docs/ray-core.md.
"""

import json
import sys
import threading
import time

from ray._private import wire
from ray._private.object_ref import DirectRef

# How long a caller goes on through the agent before asking again whether
# an actor can be called directly (it was busy or still constructing).
_RECHECK = 0.05
# Ray's error for a call whose actor process died while it ran.
_DIED = b"J" + json.dumps({"type": "RayActorError",
                           "message": "The actor died unexpectedly before finishing this task."}).encode()


class _Route:
    __slots__ = ("conn", "final", "next_check", "calls")

    def __init__(self):
        self.conn = None
        # final: never direct (elsewhere, dead, restartable).
        self.final = False
        self.next_check = 0.0
        self.calls = 0


class DirectCalls:
    """This process's direct connections to actors and the values of its
    direct calls (Ray's in-process memory store)."""

    def __init__(self, worker):
        self.w = worker
        # route_lock is held from choosing a call's path to sending it, so
        # that no call of another thread reaches the agent after the agent
        # allowed the switch; it may be held across a round trip to the
        # agent.
        self.route_lock = threading.Lock()
        self.routes = {}
        # Guards the values below, never across a wait; reentrant because a
        # ref's __del__ may run (garbage collection) while this thread holds
        # it.
        self.lock = threading.RLock()
        # id -> (data, is_err, job) once the reply came.
        self.values = {}
        # id -> (conn, job) while the call runs.
        self.pending = {}
        # id -> job: put into the agent's store when the reply comes.
        self.promised = {}
        # ids whose value the agent's store has.
        self.shared = set()
        # Reads replies nobody waits for (those of escaped refs must reach
        # the agent) and notices closed connections.
        self.idle = wire.IdleReader()

    def active(self):
        return bool(self.values or self.pending)

    # --- routing -----------------------------------------------------------

    def route(self, actor_id):
        """The direct connection to call actor_id on, or None: through the
        agent. The caller holds route_lock until it sent the call."""
        r = self.routes.get(actor_id)
        if r is None:
            self.routes[actor_id] = _Route()
            return None
        if r.conn is not None:
            return None if r.conn.closed else r.conn
        if r.final:
            return None
        now = time.monotonic()
        if now < r.next_check:
            return None
        route, _ = self.w.call("actor_direct", {"actor_id": actor_id})
        path = route.get("socket")
        if not path:
            r.final = bool(route.get("final"))
            r.next_check = now + _RECHECK
            return None
        try:
            r.conn = wire.Connection(path, self._from_actor, on_close=lambda: self._closed(r), idle_reader=self.idle)
        except OSError:
            r.final = True
            return None
        return r.conn

    def _from_actor(self, conn, header, parts):
        """What an actor's process sends on a direct connection besides
        replies: the output of the calls it runs, ahead of their results.
        A driver prints it; a worker passes it to its agent, which sends it
        to the job's driver after this worker's own output."""
        if header.get("op") != "log":
            _refuse(conn, header)
            return
        body = header.get("body") or {}
        if self.w.mode == "driver":
            self.w.print_worker_output(body)
            return
        try:
            self.w.conn.notify("log", body)
        except Exception:  # noqa: BLE001 - output must never break a call
            pass

    def _closed(self, r):
        # The actor's process ended: it cannot restart (or the agent would
        # not have given its socket), so later calls go to the agent, which
        # answers them with the actor's death.
        r.final = True
        if r.conn is not None:
            r.conn.close()  # its descriptor, not kept per dead actor

    # --- calls -------------------------------------------------------------

    def submit(self, conn, body, args, ids, job, actor_call):
        owner = self.w.node_id
        refs = [DirectRef(i, owner, actor_call, self) for i in ids]
        with self.lock:
            for i in ids:
                self.pending[i] = (conn, job)

        def on_reply(header, parts):
            self._on_reply(ids, header, parts)
        try:
            conn.start("execute", body, args, on_reply)
        except wire.ConnectionClosed:
            self._on_reply(ids, None, ())
        if len(self.pending) & 63 == 0:
            # A long burst of calls: take in the replies that came meanwhile,
            # before they fill the socket and stall the actor's process.
            conn.poll()
        return refs

    def _on_reply(self, ids, header, parts):
        n = len(ids)
        if header is None or header.get("error") or len(parts) != n:
            values = [(_DIED, True)] * n
        else:
            errs = (header.get("body") or {}).get("errors") or [False] * n
            values = list(zip(parts, errs))
        shares = []
        with self.lock:
            for i, (data, is_err) in zip(ids, values):
                held = self.pending.pop(i, None)
                job = self.promised.pop(i, None)
                if job is not None:
                    shares.append((i, job, data, is_err))
                    self.shared.add(i)
                if held is not None:
                    self.values[i] = (data, bool(is_err), held[1])
        for i, job, data, is_err in shares:
            self._put(i, job, data, is_err)

    def _put(self, object_id, job, data, is_err):
        """Makes a value that left this process available in the agent's
        store. When the store does not take it, the object gets an
        ObjectLostError there instead, naming the object and the reason, so
        that every getter raises it rather than waiting for a value that
        never comes; nothing raises here, since the ref has already left.
        When not even that reaches the agent (its connection is gone, and
        with it the node's store), the reason goes to this process's
        stderr."""
        try:
            self.w.call("put", {"object_id": object_id, "job": job, "is_err": bool(is_err)}, [data])
            return
        except Exception as e:  # noqa: BLE001 - reported to the object's getters below
            reason = f"{type(e).__name__}: {e}"
        msg = (f"Failed to store object {object_id}, the result of a direct actor call, in the node's "
               f"object store when its ObjectRef left the caller: {reason}")
        lost = b"J" + json.dumps({"type": "ObjectLostError", "message": msg}).encode()
        try:
            self.w.call("put", {"object_id": object_id, "job": job, "is_err": True}, [lost])
        except Exception as e:  # noqa: BLE001 - nobody but this process's log can hear of it now
            print(f"{msg}; recording that failure for its getters failed too: {type(e).__name__}: {e}",
                  file=sys.stderr, flush=True)

    # --- escaping and freeing -------------------------------------------

    def promote(self, object_id):
        """Makes a value of this process available in the agent's store
        (it is about to be pickled for another process)."""
        with self.lock:
            if object_id in self.shared or object_id in self.promised:
                return
            v = self.values.get(object_id)
            if v is not None:
                self.shared.add(object_id)
            else:
                held = self.pending.get(object_id)
                if held is None:
                    return
                self.promised[object_id] = held[1]
        if v is not None:
            self._put(object_id, v[2], v[0], v[1])
        else:
            self.w.call("expect", {"object_ids": [object_id], "job": held[1]})

    def release(self, object_id):
        """The caller's last ref is gone: its value is freed here (one
        already shared stays in the agent's store, as any object does)."""
        with self.lock:
            self.values.pop(object_id, None)
            self.pending.pop(object_id, None)
            self.shared.discard(object_id)

    # --- reading -------------------------------------------------------------

    def is_direct(self, object_id):
        return object_id in self.values or object_id in self.pending

    def value(self, object_id):
        return self.values.get(object_id)

    def wait_all(self, ids, deadline):
        """Waits until none of ids is pending; False at deadline."""
        pending = self.pending
        by_conn = {}
        for i in ids:
            held = pending.get(i)
            if held is not None:
                by_conn.setdefault(held[0], []).append(i)
        for conn, mine in by_conn.items():
            # Replies mostly come in call order: a cursor over mine keeps
            # the check linear in the number of refs, not quadratic.
            cursor = [0]

            def done(mine=mine, cursor=cursor):
                k = cursor[0]
                while k < len(mine) and mine[k] not in pending:
                    k += 1
                cursor[0] = k
                return k == len(mine)
            if deadline is None:
                conn.pump(done)
            elif not conn.pump_until(done, deadline):
                return False
        return True

    def pending_conns(self, ids):
        out = set()
        for i in ids:
            held = self.pending.get(i)
            if held is not None:
                out.add(held[0])
        return out

    def cancel(self, object_id):
        """ray.cancel of a direct call: told to the actor's process, which
        has recorded it when this returns. False: not a running direct call."""
        held = self.pending.get(object_id)
        if held is None:
            return object_id in self.values
        try:
            held[0].call("cancel", {"task_prefix": object_id[:-8]})
        except (wire.ConnectionClosed, wire.RemoteError):
            pass
        return True


def _refuse(conn, header):
    if header.get("id"):
        conn.reply(header["id"], error=f"a caller does not serve {header.get('op')!r}")
