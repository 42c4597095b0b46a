# Tasks the way Ray's docs write them: remote functions, options, objects,
# nested tasks, ray.wait loops and errors caught by their own type.
import time

import ray

ray.init()


@ray.remote
def square(x):
    return x * x


print("squares", ray.get([square.remote(i) for i in range(4)]))

obj = ray.put(7)
print("put arg", ray.get(square.remote(obj)))


@ray.remote(num_returns=2)
def pair(x):
    return x, x + 1


a, b = pair.remote(1)
print("num_returns", ray.get([a, b]))
print("options", ray.get(square.options(num_cpus=0.5, max_retries=0).remote(3)))


@ray.remote
def outer(n):
    return sum(ray.get([square.remote(i) for i in range(n)]))


print("nested", ray.get(outer.remote(4)))


class InsufficientFunds(Exception):
    pass


@ray.remote
def withdraw():
    raise InsufficientFunds("balance is 0")


try:
    ray.get(withdraw.remote())
except InsufficientFunds as e:
    print("caught", type(e).__name__, isinstance(e, ray.exceptions.RayTaskError), "balance is 0" in str(e))


@ray.remote
def sleepy(s):
    time.sleep(s)
    return s


try:
    ray.get(sleepy.options(num_cpus=0).remote(30), timeout=0.5)
except ray.exceptions.GetTimeoutError:
    print("get timeout raised")

refs = [sleepy.remote(0), sleepy.remote(0), sleepy.remote(0)]
done = []
while refs:
    ready, refs = ray.wait(refs, num_returns=1)
    done += ray.get(ready)
print("wait loop", len(done))
ready, rest = ray.wait([sleepy.options(num_cpus=0).remote(30)], timeout=0.2)
print("wait timeout", len(ready), len(rest))

try:
    square(1)
except TypeError as e:
    print("direct call refused")
try:
    square.options(accelerator_type="A100").remote(1)
except NotImplementedError as e:
    print("not implemented:", e)


@ray.remote
def chatty():
    print("hello from a task")
    return 1


ray.get(chatty.remote())


@ray.remote
class Talker:
    def say(self, what):
        print(what)


talker = Talker.remote()
ray.get(talker.say.remote("hello from an actor"))
# The handle's second call goes straight to the actor's process (a direct
# call); its output is printed before the script ends all the same.
ray.get(talker.say.remote("hello again from an actor"))
