# Retries: a task whose worker dies runs again (max_retries), exceptions
# listed in retry_exceptions are retried, and an actor call lost to a dying
# process runs again on the restarted actor (max_task_retries).
import os
import tempfile

import ray

ray.init()
d = tempfile.mkdtemp()


def attempt(path):
    """Counts this call's attempts in a file, returns the count."""
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as f:
        f.write(str(n))
    return n


@ray.remote(max_retries=2, resources={"b": 1})
def dies_once(path):
    if attempt(path) == 1:
        os._exit(1)
    return "recovered"


print("retried on the worker node after its worker died", ray.get(dies_once.remote(os.path.join(d, "dies"))))


@ray.remote(max_retries=3, retry_exceptions=[ConnectionError])
def flaky(path):
    n = attempt(path)
    if n < 3:
        raise ConnectionError(f"attempt {n} failed")
    return n


print("retry_exceptions list retried until", ray.get(flaky.remote(os.path.join(d, "flaky"))))


@ray.remote(max_retries=3, retry_exceptions=[ConnectionError])
def wrong(path):
    attempt(path)
    raise ValueError("not retryable")


wrong_path = os.path.join(d, "wrong")
try:
    ray.get(wrong.remote(wrong_path))
except ValueError as e:
    print("other exceptions not retried:", type(e).__name__.replace("RayTaskError(", "").rstrip(")"),
          "after", open(wrong_path).read())


@ray.remote(max_retries=1, retry_exceptions=True)
def any_error(path):
    n = attempt(path)
    if n == 1:
        raise RuntimeError("first try")
    return n


print("retry_exceptions True retried until", ray.get(any_error.remote(os.path.join(d, "any"))))


@ray.remote(max_restarts=1, max_task_retries=1)
class Survivor:
    def __init__(self):
        self.calls = 0

    def crash_once(self, path):
        self.calls += 1
        if attempt(path) == 1:
            os._exit(1)
        return "survived", self.calls


s = Survivor.remote()
result, calls = ray.get(s.crash_once.remote(os.path.join(d, "actor")))
print("actor call retried after restart", result, calls)


@ray.remote(max_restarts=1)
class Fragile:
    def crash(self):
        os._exit(1)


f = Fragile.remote()
try:
    ray.get(f.crash.remote())
except ray.exceptions.RayActorError as e:
    print("no max_task_retries:", type(e).__name__)
