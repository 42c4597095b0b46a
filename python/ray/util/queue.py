"""ray.util.queue.Queue: a first-in, first-out queue shared by tasks and
actors, kept by an async actor."""

import asyncio
import queue

import ray


class Empty(queue.Empty):
    pass


class Full(queue.Full):
    pass


class Queue:
    """A queue any task or actor holding it can use (the handle pickles).

    maxsize <= 0 means no bound; actor_options are the keeper actor's
    .options() (num_cpus, name, namespace, ...).
    """

    def __init__(self, maxsize=0, actor_options=None):
        if not isinstance(maxsize, int):
            raise TypeError(f"Queue maxsize must be an int, got {maxsize!r}")
        self.maxsize = maxsize
        self.actor = ray.remote(_QueueActor).options(**(actor_options or {})).remote(maxsize)

    def __len__(self):
        return self.size()

    def size(self):
        return ray.get(self.actor.qsize.remote())

    def qsize(self):
        return self.size()

    def empty(self):
        return ray.get(self.actor.empty.remote())

    def full(self):
        return ray.get(self.actor.full.remote())

    def put(self, item, block=True, timeout=None):
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        if not block:
            if not ray.get(self.actor.put_nowait.remote(item)):
                raise Full
            return
        if not ray.get(self.actor.put.remote(item, timeout)):
            raise Full

    async def put_async(self, item, block=True, timeout=None):
        if not block:
            ok = await self.actor.put_nowait.remote(item)
        else:
            ok = await self.actor.put.remote(item, timeout)
        if not ok:
            raise Full

    def get(self, block=True, timeout=None):
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        if not block:
            ok, item = ray.get(self.actor.get_nowait.remote())
        else:
            ok, item = ray.get(self.actor.get.remote(timeout))
        if not ok:
            raise Empty
        return item

    async def get_async(self, block=True, timeout=None):
        if not block:
            ok, item = await self.actor.get_nowait.remote()
        else:
            ok, item = await self.actor.get.remote(timeout)
        if not ok:
            raise Empty
        return item

    def put_nowait(self, item):
        return self.put(item, block=False)

    def get_nowait(self):
        return self.get(block=False)

    def put_nowait_batch(self, items):
        if not isinstance(items, list):
            raise TypeError("Argument 'items' must be a list")
        if not ray.get(self.actor.put_nowait_batch.remote(items)):
            raise Full(f"Cannot add {len(items)} items to queue of size {self.size()} and maxsize {self.maxsize}.")

    def get_nowait_batch(self, num_items):
        if not isinstance(num_items, int) or num_items < 0:
            raise ValueError("'num_items' must be a non-negative int")
        ok, items = ray.get(self.actor.get_nowait_batch.remote(num_items))
        if not ok:
            raise Empty(f"Cannot get {num_items} items from queue of size {self.size()}.")
        return items

    def shutdown(self, force=False, grace_period_s=5):
        if self.actor is not None:
            ray.kill(self.actor, no_restart=True)
        self.actor = None


class _QueueActor:
    def __init__(self, maxsize):
        self.maxsize = maxsize
        self.queue = asyncio.Queue(maxsize)

    async def qsize(self):
        return self.queue.qsize()

    async def empty(self):
        return self.queue.empty()

    async def full(self):
        return self.queue.full()

    async def put(self, item, timeout=None):
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def get(self, timeout=None):
        try:
            return True, await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return False, None

    async def put_nowait(self, item):
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            return False

    async def get_nowait(self):
        try:
            return True, self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return False, None

    async def put_nowait_batch(self, items):
        if self.maxsize > 0 and len(items) + self.queue.qsize() > self.maxsize:
            return False
        for item in items:
            self.queue.put_nowait(item)
        return True

    async def get_nowait_batch(self, num_items):
        if num_items > self.queue.qsize():
            return False, []
        return True, [self.queue.get_nowait() for _ in range(num_items)]
