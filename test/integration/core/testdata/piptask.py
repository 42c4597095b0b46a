# runtime_env pip per task and actor, from a driver that has no venv.
import sys

import ray

ray.init()


@ray.remote(runtime_env={"pip": ["rayk8s-pipdemo"]})
def with_pip():
    import rayk8s_pipdemo
    return rayk8s_pipdemo.__file__, rayk8s_pipdemo.VALUE


@ray.remote
def without_pip():
    try:
        import rayk8s_pipdemo  # noqa: F401
    except ImportError as e:
        return type(e).__name__
    return "imported"


@ray.remote(runtime_env={"pip": {"packages": ["rayk8s-pipdemo"], "pip_check": False}})
class Pipped:
    def file(self):
        import rayk8s_pipdemo
        return rayk8s_pipdemo.__file__


@ray.remote(runtime_env={"pip": ["rayk8s-no-such-package"]}, max_retries=3)
def missing():
    return "ran"


try:
    import rayk8s_pipdemo  # noqa: F401
    print("driver imports it: wrong")
except ImportError:
    print("driver lacks the package")
path, value = ray.get(with_pip.remote())
print("task imports", path, value)
print("plain task", ray.get(without_pip.remote()))
print("actor imports", ray.get(Pipped.remote().file.remote()))
try:
    ray.get(missing.remote())
except ray.exceptions.RuntimeEnvSetupError as e:
    print("missing package:", type(e).__name__)
    print(str(e))
