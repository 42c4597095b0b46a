# A task's or actor's runtime_env: env_vars reach its worker (and the tasks
# it submits); fields this runtime does not set up are refused by name.
import os

import ray

ray.init()


@ray.remote(runtime_env={"env_vars": {"GREETING": "hola"}})
def greet():
    return os.environ.get("GREETING")


@ray.remote
def plain():
    return os.environ.get("GREETING")


print("task env_vars", ray.get(greet.remote()))
print("other tasks unaffected", ray.get(plain.remote()))
print("options env_vars", ray.get(plain.options(runtime_env={"env_vars": {"GREETING": "hi"}}).remote()))


@ray.remote(runtime_env={"env_vars": {"GREETING": "parent"}})
def parent():
    return ray.get(plain.remote())


print("child inherits", ray.get(parent.remote()))


@ray.remote(runtime_env={"env_vars": {"ROLE": "actor"}})
class Env:
    def role(self):
        return os.environ.get("ROLE")


print("actor env_vars", ray.get(Env.remote().role.remote()))

for key, value in (("pip", {"packages": ["requests"], "pip_version": "==23.0"}), ("conda", {"dependencies": ["numpy"]})):
    try:
        plain.options(runtime_env={key: value}).remote()
    except NotImplementedError as e:
        print(f"{key} refused:", type(e).__name__ + ":", e)
try:
    Env.options(runtime_env={"container": {"image": "x"}}).remote()
except NotImplementedError as e:
    print("container refused:", type(e).__name__ + ":", e)
try:
    plain.options(runtime_env={"pipp": []}).remote()
except ValueError as e:
    print("unknown field refused:", type(e).__name__ + ":", e)
