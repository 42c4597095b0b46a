"""@serve.batch and @serve.multiplexed, with an injected clock."""

import asyncio
import os
import sys
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rayk8s import serve  # noqa: E402
from rayk8s.serve import _context  # noqa: E402

# The test's async __del__ is awaited on eviction; the garbage collector
# calls it again later without awaiting, as it would for any object.
warnings.filterwarnings("ignore", message=r"coroutine .*__del__.* was never awaited", category=RuntimeWarning)


class FakeClock:
    """now() only moves when advance() is called; sleepers wake then."""

    def __init__(self):
        self.t = 0.0
        self.sleepers = []

    def now(self):
        return self.t

    async def sleep(self, seconds):
        fut = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.t + seconds, fut))
        await fut

    async def advance(self, seconds):
        self.t += seconds
        for at, fut in list(self.sleepers):
            if at <= self.t and not fut.done():
                fut.set_result(None)
        await settle()


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


class BatchTest(unittest.TestCase):
    def run_async(self, coro):
        return asyncio.run(coro)

    def test_full_batch_runs_at_once_and_results_are_split(self):
        clock = FakeClock()
        calls = []

        class M:
            @serve.batch(max_batch_size=3, batch_wait_timeout_s=10, _clock=clock)
            async def double(self, xs):
                calls.append(list(xs))
                return [x * 2 for x in xs]

        async def main():
            m = M()
            tasks = [asyncio.ensure_future(m.double(i)) for i in range(4)]
            await settle()
            # 3 items fill a batch before any time passes; the 4th waits.
            self.assertEqual(calls, [[0, 1, 2]])
            self.assertEqual([t.done() for t in tasks], [True, True, True, False])
            await clock.advance(9.9)
            self.assertEqual(len(calls), 1)
            await clock.advance(0.2)
            self.assertEqual(calls, [[0, 1, 2], [3]])
            self.assertEqual(await asyncio.gather(*tasks), [0, 2, 4, 6])

        self.run_async(main())

    def test_timeout_flushes_a_partial_batch(self):
        clock = FakeClock()
        calls = []

        @serve.batch(max_batch_size=10, batch_wait_timeout_s=0.5, _clock=clock)
        async def f(xs):
            calls.append(list(xs))
            return xs

        async def main():
            a = asyncio.ensure_future(f("a"))
            await settle()
            await clock.advance(0.3)
            b = asyncio.ensure_future(f("b"))
            await settle()
            self.assertEqual(calls, [])
            # The timeout counts from the batch's first item.
            await clock.advance(0.2)
            self.assertEqual(calls, [["a", "b"]])
            self.assertEqual(await asyncio.gather(a, b), ["a", "b"])

        self.run_async(main())

    def test_batch_size_fn(self):
        clock = FakeClock()
        calls = []

        @serve.batch(max_batch_size=5, batch_wait_timeout_s=1, batch_size_fn=lambda items: sum(len(i) for i in items), _clock=clock)
        async def f(items):
            calls.append(list(items))
            return [len(i) for i in items]

        async def main():
            ts = [asyncio.ensure_future(f(x)) for x in ("aa", "bb", "c", "eeeeee", "dd")]
            await settle()
            # aa+bb+c = 5 fills the first batch; dd waits for more.
            self.assertEqual(calls, [["aa", "bb", "c"]])
            await clock.advance(1)
            self.assertEqual(calls, [["aa", "bb", "c"], ["dd"]])
            ts2 = [asyncio.ensure_future(f(x)) for x in ("ddd", "ee")]
            await settle()
            # ddd+ee = 5: full at once, no wait.
            self.assertEqual(calls[-1], ["ddd", "ee"])
            await asyncio.gather(*ts2)
            res = await asyncio.gather(*ts, return_exceptions=True)
            self.assertEqual(res[:3] + res[4:], [2, 2, 1, 2])
            # An item bigger than the limit alone fails only its caller.
            self.assertIsInstance(res[3], RuntimeError)
            self.assertIn("exceeds max_batch_size", str(res[3]))

        self.run_async(main())

    def test_errors_per_element_and_per_batch(self):
        clock = FakeClock()

        @serve.batch(max_batch_size=3, batch_wait_timeout_s=1, _clock=clock)
        async def f(xs):
            if "all" in xs:
                raise KeyError("whole batch")
            return [ValueError(f"bad {x}") if x < 0 else x for x in xs]

        async def main():
            res = await asyncio.gather(f(1), f(-2), f(3), return_exceptions=True)
            self.assertEqual(res[0], 1)
            self.assertIsInstance(res[1], ValueError)
            self.assertEqual(res[2], 3)
            res = await asyncio.gather(f(1), f("all"), f(2), return_exceptions=True)
            self.assertTrue(all(isinstance(r, KeyError) for r in res), res)

        self.run_async(main())

    def test_wrong_result_length_fails_every_caller(self):
        @serve.batch(max_batch_size=2, batch_wait_timeout_s=1, _clock=FakeClock())
        async def f(xs):
            return [1]

        async def main():
            res = await asyncio.gather(f(1), f(2), return_exceptions=True)
            self.assertTrue(all(isinstance(r, ValueError) for r in res), res)

        self.run_async(main())

    def test_max_concurrent_batches(self):
        clock = FakeClock()
        running = []
        release = None

        @serve.batch(max_batch_size=1, batch_wait_timeout_s=0, max_concurrent_batches=2, _clock=clock)
        async def f(xs):
            running.append(xs[0])
            await release.wait()
            return xs

        async def main():
            nonlocal release
            release = asyncio.Event()
            ts = [asyncio.ensure_future(f(i)) for i in range(3)]
            await settle()
            self.assertEqual(running, [0, 1])
            release.set()
            self.assertEqual(await asyncio.gather(*ts), [0, 1, 2])

        self.run_async(main())

    def test_setters_change_a_running_queue(self):
        clock = FakeClock()
        calls = []

        class M:
            @serve.batch(max_batch_size=4, batch_wait_timeout_s=5, _clock=clock)
            async def f(self, xs):
                calls.append(len(xs))
                return xs

            def reconfigure(self, cfg):
                self.f.set_max_batch_size(cfg["n"])
                self.f.set_batch_wait_timeout_s(cfg["t"])

        async def main():
            m = M()
            m.reconfigure({"n": 2, "t": 1})
            self.assertEqual(m.f._get_max_batch_size(), 2)
            ts = [asyncio.ensure_future(m.f(i)) for i in range(3)]
            await settle()
            self.assertEqual(calls, [2])
            await clock.advance(1)
            self.assertEqual(calls, [2, 1])
            await asyncio.gather(*ts)
            with self.assertRaises(ValueError):
                m.f.set_max_batch_size(0)

        self.run_async(main())

    def test_batched_generator_streams_per_caller(self):
        clock = FakeClock()

        @serve.batch(max_batch_size=3, batch_wait_timeout_s=1, _clock=clock)
        async def tokens(prompts):
            for step in range(3):
                # Each caller's stream ends at its own StopIteration.
                yield [StopIteration if step >= len(p) else f"{p}{step}" for p in prompts]

        async def collect(p):
            return [t async for t in tokens(p)]

        async def main():
            res = await asyncio.gather(collect("a"), collect("bbb"), collect("cc"))
            self.assertEqual(res, [["a0"], ["bbb0", "bbb1", "bbb2"], ["cc0", "cc1"]])

        self.run_async(main())

    def test_plain_method_batched_from_threads(self):
        calls = []

        class M:
            @serve.batch(max_batch_size=3, batch_wait_timeout_s=30)
            def f(self, xs):
                calls.append(list(xs))
                return [x + 1 for x in xs]

        class Runtime:
            max_ongoing = 5

        async def main():
            rt = Runtime()
            rt.loop = asyncio.get_running_loop()
            _context._set_runtime(rt)
            try:
                m = M()
                res = await asyncio.gather(*[asyncio.to_thread(m.f, i) for i in range(3)])
            finally:
                _context._set_runtime(None)
            self.assertEqual(sorted(res), [1, 2, 3])
            self.assertEqual(len(calls), 1)

        self.run_async(main())

    def test_warns_when_batches_cannot_fill(self):
        class Runtime:
            max_ongoing = 4

        @serve.batch(max_batch_size=8)
        async def f(xs):
            return xs

        _context._set_runtime(Runtime())
        try:
            with self.assertLogs("rayk8s.serve", level="WARNING") as logs:
                f._batcher.warn_if_unfillable()
        finally:
            _context._set_runtime(None)
        self.assertIn("max_batch_size (8)", logs.output[0])
        self.assertIn("max_ongoing_requests (4)", logs.output[0])

    def test_invalid_settings_name_the_field(self):
        for kwargs, field in (
            ({"max_batch_size": 0}, "max_batch_size"),
            ({"batch_wait_timeout_s": -1}, "batch_wait_timeout_s"),
            ({"max_concurrent_batches": 0}, "max_concurrent_batches"),
            ({"batch_size_fn": 3}, "batch_size_fn"),
        ):
            with self.assertRaisesRegex(ValueError, field):
                serve.batch(**kwargs)


class MultiplexTest(unittest.TestCase):
    def test_lru_eviction_awaits_del_and_dedupes_loads(self):
        events = []

        class Model:
            def __init__(self, mid):
                self.mid = mid

            async def __del__(self):
                events.append(("unload", self.mid))

        class D:
            @serve.multiplexed(max_num_models_per_replica=2)
            async def get_model(self, model_id):
                events.append(("load", model_id))
                await asyncio.sleep(0)
                return Model(model_id)

        class Runtime:
            model_caches = []

        async def main():
            d = D()
            a, a2 = await asyncio.gather(d.get_model("a"), d.get_model("a"))
            self.assertIs(a, a2)
            await d.get_model("b")
            await d.get_model("a")  # a is now the most recently used
            await d.get_model("c")  # evicts b
            self.assertEqual(events, [("load", "a"), ("load", "b"), ("unload", "b"), ("load", "c")])
            self.assertEqual(sorted(serve._multiplex.loaded_model_ids(Runtime.model_caches)), ["a", "c"])

        _context._set_runtime(Runtime())
        try:
            asyncio.run(main())
        finally:
            _context._set_runtime(None)

    def test_model_id_of_the_request(self):
        from rayk8s.serve import _multiplex

        async def main():
            self.assertEqual(serve.get_multiplexed_model_id(), "")
            _multiplex.set_request_model_id("cust-7")
            self.assertEqual(serve.get_multiplexed_model_id(), "cust-7")

        asyncio.run(main())

    def test_invalid_use(self):
        with self.assertRaisesRegex(ValueError, "max_num_models_per_replica"):
            serve.multiplexed(max_num_models_per_replica=0)
        with self.assertRaisesRegex(TypeError, "async def"):

            @serve.multiplexed
            def load(model_id):
                return model_id


if __name__ == "__main__":
    unittest.main()
