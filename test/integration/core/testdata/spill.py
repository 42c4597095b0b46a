# Objects past the node's object store memory spill to disk and read back
# unchanged, as in Ray's object spilling guide.
import glob
import os

import numpy as np
import ray

ray.init()

N, SIZE = 10, 20 * 1024 * 1024  # ten 20 MiB arrays against an 80 MiB store


def array(i):
    return np.arange(SIZE // 8, dtype=np.float64) + i


refs = [ray.put(array(i)) for i in range(N)]

spill_dirs = glob.glob(os.path.join(os.environ["RAY_TMPDIR"], "ray", "session_2*", "ray_spilled_objects_*"))
files = [f for d in spill_dirs for f in os.listdir(d)]
# At most 3 of the 10 fit in memory, so at least 7 are on disk.
print("spilled at least 7:", len(files) >= 7, len(files))

equal = sum(np.array_equal(ray.get(ref), array(i)) for i, ref in enumerate(refs))
print("equal after spilling:", equal)


@ray.remote
def first_and_last(a):
    return float(a[0]), float(a[-1])


# A spilled object as a task's argument.
print("task on a spilled object:", ray.get(first_and_last.remote(refs[0])) == (0.0, SIZE // 8 - 1.0))
