# ray.init's address forms and its life cycle.
import os
import sys

import ray

mode = sys.argv[1]
if mode == "gcs":
    ctx = ray.init(address=sys.argv[2])
elif mode == "auto":
    ctx = ray.init(address="auto")
else:
    ctx = ray.init(namespace="ns1")
print("initialized", ray.is_initialized())
print("namespace", ray.get_runtime_context().namespace)
try:
    ray.init()
except RuntimeError:
    print("second init refused")
ray.init(ignore_reinit_error=True)
nodes = ray.nodes()
print("nodes", len(nodes), nodes[0]["Alive"], "node:__internal_head__" in nodes[0]["Resources"])
print("cpus", ray.cluster_resources()["CPU"])
ray.shutdown()
print("after shutdown", ray.is_initialized())
