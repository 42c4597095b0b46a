"""ObjectRef: a reference to a value in the cluster's object stores."""

import asyncio
import os


def new_id():
    # 28 bytes, as long as a Ray ObjectID.
    return os.urandom(28).hex()


class ObjectRef:
    # owner is the node whose agent holds (or will hold) the value; other
    # nodes fetch it from there.
    # actor_call is the actor id on the returns of actor method calls
    # (ray.cancel treats them differently); it is not pickled.
    __slots__ = ("_id", "_owner", "_actor_call")

    def __init__(self, object_id, owner="", actor_call=""):
        self._id = object_id
        self._owner = owner or ""
        self._actor_call = actor_call

    def hex(self):
        return self._id

    def binary(self):
        return bytes.fromhex(self._id)

    def __repr__(self):
        return f"ObjectRef({self._id})"

    def __eq__(self, other):
        return isinstance(other, ObjectRef) and other._id == self._id

    def __hash__(self):
        return hash(self._id)

    def __reduce__(self):
        return (ObjectRef, (self._id, self._owner))

    def __await__(self):
        import ray
        loop = asyncio.get_event_loop()
        return loop.run_in_executor(None, ray.get, self).__await__()

    def future(self):
        import concurrent.futures
        import threading
        import ray
        fut = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(ray.get(self))
            except BaseException as e:  # noqa: BLE001 - handed to the future
                fut.set_exception(e)
        threading.Thread(target=run, daemon=True).start()
        return fut


class DirectRef(ObjectRef):
    """The return of a direct actor call: its value comes back into this
    process (ray._private.direct) and stays here until the ref escapes.
    Pickling it (an argument, a value nested in another, ray.put) first
    makes the value available in the node agent's store under the same id;
    the other side gets a plain ObjectRef."""

    __slots__ = ("_calls",)

    def __init__(self, object_id, owner, actor_call, calls):
        super().__init__(object_id, owner, actor_call)
        self._calls = calls

    def __reduce__(self):
        self._calls.promote(self._id)
        return (ObjectRef, (self._id, self._owner))

    def __del__(self):
        try:
            self._calls.release(self._id)
        except Exception:  # noqa: BLE001 - at interpreter exit the module may be gone
            pass
