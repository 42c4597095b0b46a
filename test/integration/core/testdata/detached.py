# Named, detached actors outlive the driver that made them; names live in
# namespaces.
import sys

import ray

step = sys.argv[1]
ray.init(namespace="accounts")


@ray.remote
class Ledger:
    def __init__(self):
        self.entries = []

    def add(self, x):
        self.entries.append(x)
        return len(self.entries)


if step == "create":
    ledger = Ledger.options(name="ledger", lifetime="detached").remote()
    print("created", ray.get(ledger.add.remote("a")))
    temp = Ledger.options(name="scratch").remote()
    print("scratch", ray.get(temp.add.remote("x")))
else:
    ledger = ray.get_actor("ledger")
    print("still there", ray.get(ledger.add.remote("b")))
    try:
        ray.get_actor("scratch")
    except ValueError:
        print("non-detached actor gone with its driver")
    try:
        ray.get_actor("ledger", namespace="other")
    except ValueError:
        print("other namespace does not see it")
    ray.kill(ledger)
