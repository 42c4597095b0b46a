# The owner of a direct call's result dies before the result reaches the
# node's store: an actor calls another actor directly, passes the running
# call's ref on (so the node's store expects it), and is killed (SIGKILL,
# then ray.kill). Every getter raises OwnerDiedError (an ObjectLostError)
# naming the object, a result it had already passed on stays readable, and
# the cluster keeps working. Prints one line per check.
import os
import signal
import time

import ray

ray.init()


def direct_calls():
    # This process's direct calls (imported where it runs: a class of the
    # script is pickled by value, with what its methods refer to).
    from ray._private.worker import global_worker
    return global_worker.direct


@ray.remote
class Target:
    def echo(self, x):
        return x

    def block(self, path):
        while not os.path.exists(path):
            time.sleep(0.01)
        return "finished"


@ray.remote
class Caller:
    def __init__(self, target):
        self.t = target

    def go_direct(self):
        # The agent lets a caller switch to the direct path once none of
        # its calls to the actor are in flight there; it is asked again
        # every 50 ms.
        deadline = time.monotonic() + 30
        while not self._direct() and time.monotonic() < deadline:
            ray.get(self.t.echo.remote(0))
            time.sleep(0.06)
        return self._direct(), os.getpid()

    def _direct(self):
        r = direct_calls().routes.get(self.t._ray_actor_id)
        return r is not None and r.conn is not None and not r.conn.closed

    def finished_and_passed_on(self):
        ref = self.t.echo.remote("delivered")
        ray.get(ref)
        return [ref]

    def running_and_passed_on(self, path):
        ref = self.t.block.remote(path)
        from ray._private.object_ref import DirectRef
        running = isinstance(ref, DirectRef) and ref.hex() in direct_calls().pending
        # Returning the ref inside a list pickles it while its call runs.
        return running, [ref]


@ray.remote
def get_in_task(refs):
    try:
        ray.get(refs[0], timeout=30)
        return "no error"
    except ray.exceptions.OwnerDiedError as e:
        return f"OwnerDiedError names it {refs[0].hex() in str(e)}"


@ray.remote
def plus_one(x):
    return x + 1


target = Target.remote()


def run(how, kill):
    caller = Caller.remote(target)
    direct, pid = ray.get(caller.go_direct.remote())
    [kept] = ray.get(caller.finished_and_passed_on.remote())
    path = os.path.join(os.environ.get("RAY_TMPDIR", "/tmp"), f"ownerdied-{how}-{os.getpid()}")
    running, [ref] = ray.get(caller.running_and_passed_on.remote(path))
    print(how, "direct and running", direct and running, flush=True)
    waiting = get_in_task.remote([ref])
    kill(caller, pid)
    try:
        ray.get(ref, timeout=30)
        print(how, "driver got a value", flush=True)
    except ray.exceptions.OwnerDiedError as e:
        print(how, "driver OwnerDiedError", isinstance(e, ray.exceptions.ObjectLostError),
              ref.hex() in str(e), "owner has exited" in str(e), flush=True)
    print(how, "task", ray.get(waiting), flush=True)
    print(how, "passed on before", ray.get(kept), flush=True)
    # The target's call finishes; its reply has nowhere to go.
    open(path, "w").close()


run("sigkill", lambda caller, pid: os.kill(pid, signal.SIGKILL))
run("ray.kill", lambda caller, pid: ray.kill(caller))
print("target still answers", ray.get(target.echo.remote(7)), flush=True)
print("tasks still run", ray.get(plus_one.remote(1)), flush=True)
