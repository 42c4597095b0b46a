"""The examples' code, run in-process (the iris one only where scikit-learn
is importable, as in the image with Debian's python3-sklearn)."""

import importlib.util
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

from rayk8s.serve import _http  # noqa: E402

HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None


def post(body):
    return _http.Request({"method": "POST", "path": "/iris", "route_prefix": "/iris"}, body.encode())


@unittest.skipUnless(HAVE_SKLEARN, f"scikit-learn is not importable by {sys.executable} (Debian: apt-get install python3-sklearn)")
class IrisTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import iris

        cls.iris = iris
        cls.model = iris.IrisClassifier.func_or_class()

    def test_classifies_lists_and_objects(self):
        cases = {
            "[5.1, 3.5, 1.4, 0.2]": "setosa",
            '{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}': "virginica",
        }
        for body, want in cases.items():
            out = self.model(post(body))
            self.assertEqual(out["class"], want, body)
            self.assertAlmostEqual(sum(out["probabilities"].values()), 1.0, places=2)
        json.dumps(out)  # the answer must be JSON as is

    def test_bad_input_is_400(self):
        for body in ("[1, 2]", '{"petal_width": 1}', '["a", 1, 2, 3]', "nope", '"str"'):
            out = self.model(post(body))
            self.assertIsInstance(out, _http.Response, body)
            self.assertEqual(out.status_code, 400, body)

    def test_get_describes_the_model(self):
        info = self.model(_http.Request({"method": "GET", "path": "/iris"}, b""))
        self.assertEqual(info["classes"], ["setosa", "versicolor", "virginica"])
        self.assertGreater(info["training_accuracy"], 0.9)


class TextGenTest(unittest.TestCase):
    def test_generator_yields_tokens(self):
        import asyncio

        import textgen

        gen = textgen.Generator.func_or_class()
        gen.reconfigure({"token_delay_s": 0})

        async def main():
            return [t async for t in gen.generate("a b", 3)]

        self.assertEqual(asyncio.run(main()), ["a-0 ", "b-1 ", "a-2 "])


class ClassifierTest(unittest.TestCase):
    def test_concurrent_texts_are_one_batch(self):
        import asyncio

        import classifier

        model = classifier.Classifier.func_or_class()
        model.reconfigure({"max_batch_size": 3, "batch_wait_timeout_s": 30})

        async def main():
            return await asyncio.gather(
                model.classify("a great day"), model.classify("an awful day"), model.classify(7), return_exceptions=True
            )

        good, bad, wrong = asyncio.run(main())
        self.assertEqual((good["label"], good["batch_size"]), ("positive", 3))
        self.assertEqual(bad["label"], "negative")
        self.assertIsInstance(wrong, ValueError)


class CustomerModelsTest(unittest.TestCase):
    def test_models_are_cached_per_customer(self):
        import asyncio

        import customer_models

        d = customer_models.CustomerModels.func_or_class()

        async def main():
            a = await d.get_model("customer-1")
            again = await d.get_model("customer-1")
            b = await d.get_model("customer-2")
            return a, again, b

        a, again, b = asyncio.run(main())
        self.assertIs(a, again)
        self.assertNotEqual(a.predict(2), b.predict(2))


if __name__ == "__main__":
    unittest.main()
