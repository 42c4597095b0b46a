# ray.init() with no cluster running starts one and stops it at exit.
import os

import ray

ray.init(num_cpus=3)
print("local cpus", ray.cluster_resources()["CPU"])


@ray.remote
def hello():
    return "hello"


print(ray.get(hello.remote()))
print("head pid", ray._private.worker.global_worker.local_head.proc.pid)
