"""Tests of ray.autoscaler.sdk that need no cluster (the calls against a real head are in
internal/runtime/autoscaler/requestapi): python3 -m unittest discover -s python/tests"""

import os
import sys
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.dont_write_bytecode = True  # keep python/ free of __pycache__

from ray.autoscaler import sdk  # noqa: E402


class DashboardAddressTest(unittest.TestCase):
    def url(self, env):
        with mock.patch.dict(os.environ, env, clear=True):
            return sdk._dashboard_url()

    def test_resolution_order(self):
        self.assertEqual(self.url({}), "http://127.0.0.1:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "auto"}), "http://127.0.0.1:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "10.0.0.1:6379"}), "http://10.0.0.1:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "ray://head-svc:10001"}), "http://head-svc:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "http://head:8265/"}), "http://head:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "[fd00::1]:6379"}), "http://[fd00::1]:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "10.0.0.1:6379", "RAY_API_SERVER_ADDRESS": "http://dash:1"}),
                         "http://dash:1")


class ArgumentsTest(unittest.TestCase):
    def test_bad_arguments_name_the_argument_and_send_nothing(self):
        cases = [
            (dict(num_cpus="2"), TypeError, "num_cpus"),
            (dict(num_cpus=True), TypeError, "num_cpus"),
            (dict(num_cpus=-3), ValueError, "num_cpus"),
            (dict(bundles=({"CPU": 1},)), TypeError, "bundles should be of type list"),
            (dict(bundles=[{"CPU": 1}, "GPU"]), TypeError, r"bundles\[1\]"),
            (dict(bundles=[{1: 1}]), TypeError, r"bundles\[0\]"),
            (dict(bundles=[{"CPU": None}]), TypeError, r"bundles\[0\]\['CPU'\]"),
            (dict(bundles=[{"CPU": -0.5}]), ValueError, r"bundles\[0\]\['CPU'\]"),
        ]
        with mock.patch.object(sdk, "_post") as post:
            for kwargs, exc, msg in cases:
                with self.subTest(kwargs=kwargs):
                    with self.assertRaisesRegex(exc, msg):
                        sdk.request_resources(**kwargs)
            post.assert_not_called()


if __name__ == "__main__":
    unittest.main()
