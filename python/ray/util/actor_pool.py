"""ActorPool: spreads work over a fixed set of actors."""

import ray


class ActorPool:
    """Runs fn(actor, value) on whichever actor of the pool is free.

    submit() queues work when every actor is busy; get_next() returns
    results in submission order, get_next_unordered() as they finish.
    """

    def __init__(self, actors):
        self._idle = list(actors)
        self._future_of_index = {}
        self._index_of_future = {}
        self._actor_of_future = {}
        self._pending = []
        self._next_task = 0
        self._next_return = 0

    def map(self, fn, values):
        # Drain earlier work first, as results come back in order per call.
        while self.has_next():
            self.get_next_unordered()
        for v in values:
            self.submit(fn, v)
        while self.has_next():
            yield self.get_next()

    def map_unordered(self, fn, values):
        while self.has_next():
            self.get_next_unordered()
        for v in values:
            self.submit(fn, v)
        while self.has_next():
            yield self.get_next_unordered()

    def submit(self, fn, value):
        if not self._idle:
            self._pending.append((fn, value))
            return
        actor = self._idle.pop()
        ref = fn(actor, value)
        self._future_of_index[self._next_task] = ref
        self._index_of_future[ref] = self._next_task
        self._actor_of_future[ref] = actor
        self._next_task += 1

    def has_next(self):
        return bool(self._future_of_index)

    def has_free(self):
        return bool(self._idle) and not self._pending

    def _done(self, ref):
        actor = self._actor_of_future.pop(ref)
        del self._future_of_index[self._index_of_future.pop(ref)]
        self._idle.append(actor)
        if self._pending:
            self.submit(*self._pending.pop(0))

    def get_next(self, timeout=None, ignore_if_timedout=False):
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return not in self._future_of_index:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        ref = self._future_of_index[self._next_return]
        if timeout is not None:
            ready, _ = ray.wait([ref], timeout=timeout)
            if not ready:
                if ignore_if_timedout:
                    return None
                raise TimeoutError("Timed out waiting for result")
        self._next_return += 1
        self._done(ref)
        return ray.get(ref)

    def get_next_unordered(self, timeout=None, ignore_if_timedout=False):
        if not self.has_next():
            raise StopIteration("No more results to get")
        ready, _ = ray.wait(list(self._future_of_index.values()), num_returns=1, timeout=timeout)
        if not ready:
            if ignore_if_timedout:
                return None
            raise TimeoutError("Timed out waiting for result")
        ref = ready[0]
        self._next_return = max(self._next_return, self._index_of_future[ref] + 1)
        self._done(ref)
        return ray.get(ref)

    def pop_idle(self):
        return self._idle.pop() if self.has_free() else None

    def push(self, actor):
        if actor in self._idle or actor in self._actor_of_future.values():
            raise ValueError("Actor already belongs to current ActorPool")
        self._idle.append(actor)
        if self._pending:
            self.submit(*self._pending.pop(0))
