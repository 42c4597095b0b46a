# Placement by resources: what does not fit waits, infeasible shapes are
# reported, both stay queued as demand.
import ray

ray.init()


@ray.remote(num_cpus=2)
class Hog:
    def ping(self):
        return "pong"


@ray.remote(num_cpus=1)
def one():
    return "ran"


hog = Hog.remote()
print("hog", ray.get(hog.ping.remote()))
print("cpu left", ray.available_resources().get("CPU", 0))
waiting = one.remote()
ready, _ = ray.wait([waiting], timeout=1)
print("pending while full", len(ready) == 0)
ray.kill(hog)
print("after kill", ray.get(waiting))

huge = one.options(num_cpus=64).remote()
ready, _ = ray.wait([huge], timeout=1)
print("infeasible pending", len(ready) == 0)
