# OMP_NUM_THREADS in workers, as Ray sets it: 1 for tasks, an actor's CPUs
# (rounded up, at least 1) for the actor, and whatever runtime_env sets.
import os

import ray

ray.init()


@ray.remote
def omp():
    return os.environ.get("OMP_NUM_THREADS")


@ray.remote
class Holder:
    def omp(self):
        return os.environ.get("OMP_NUM_THREADS")


print("task", ray.get(omp.remote()))
print("task with env_vars", ray.get(omp.options(runtime_env={"env_vars": {"OMP_NUM_THREADS": "3"}}).remote()))
# Both actors fit on the 2-CPU head at once.
big, small = Holder.options(num_cpus=1.5).remote(), Holder.options(num_cpus=0.5).remote()
print("actor of 1.5 CPUs", ray.get(big.omp.remote()))
print("actor of half a CPU", ray.get(small.omp.remote()))
