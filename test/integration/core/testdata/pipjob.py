# A job whose runtime_env pip installs rayk8s-pipdemo: the driver, its tasks
# and its actors all import it from the job's venv.
import sys

import ray
import rayk8s_pipdemo

print("driver prefix", sys.prefix)
print("driver imports", rayk8s_pipdemo.__file__, rayk8s_pipdemo.VALUE)
ray.init()


@ray.remote
def where():
    import rayk8s_pipdemo as m
    return m.__file__, sys.executable


@ray.remote
class Where:
    def file(self):
        import rayk8s_pipdemo as m
        return m.__file__


path, exe = ray.get(where.remote())
print("task imports", path)
print("task python", exe)
print("actor imports", ray.get(Where.remote().file.remote()))
