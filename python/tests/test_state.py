"""Tests of ray.util.state that need no cluster (the calls against a real head are in
test/integration/core/state_test.go, which runs testdata/state_sdk.py):
python3 -m unittest discover -s python/tests"""

import os
import pickle
import sys
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.dont_write_bytecode = True  # keep python/ free of __pycache__

import ray.util.state as state  # noqa: E402
from ray.util.state import api  # noqa: E402


class StateObjectTest(unittest.TestCase):
    def test_attribute_and_dict_access(self):
        a = state.ActorState(actor_id="a1", state="ALIVE", extra=3)
        self.assertEqual(a.state, "ALIVE")
        self.assertEqual(a["actor_id"], "a1")
        self.assertEqual(a.get("state"), "ALIVE")
        self.assertEqual(a.extra, 3)
        # A column of Ray's schema that the answer lacks reads as None, as in Ray.
        self.assertIsNone(a.is_detached)
        self.assertIsNone(a["pid"])
        self.assertEqual(a.asdict()["state"], "ALIVE")
        with self.assertRaisesRegex(AttributeError, "no column 'colour'"):
            a.colour
        with self.assertRaises(KeyError):
            a["colour"]
        self.assertEqual(pickle.loads(pickle.dumps(a)), a)


class ArgumentsTest(unittest.TestCase):
    def test_bad_arguments_name_the_argument_and_send_nothing(self):
        cases = [
            (dict(filters=[("state", ">", "ALIVE")]), ValueError, "predicate '>' is not supported"),
            (dict(filters=[("state", "=")]), ValueError, r"not a \(key, predicate, value\) tuple"),
            (dict(filters=[("", "=", "x")]), ValueError, "the key should be a non-empty str"),
            (dict(filters=[("state", "=", None)]), TypeError, "str, bool, int or float"),
            (dict(filters="state=ALIVE"), TypeError, "filters should be a list"),
            (dict(limit=0), ValueError, "limit should be positive"),
            (dict(limit="10"), TypeError, "limit should be an int"),
            (dict(timeout=True), TypeError, "timeout should be an int"),
            (dict(detail=1), TypeError, "detail should be a bool"),
        ]
        with mock.patch.object(api, "_request") as request:
            for kwargs, exc, msg in cases:
                with self.subTest(kwargs=kwargs):
                    with self.assertRaisesRegex(exc, msg):
                        state.list_actors(**kwargs)
            with self.assertRaisesRegex(TypeError, "unexpected keyword argument 'exclude_driver'"):
                state.list_tasks(exclude_driver=False)
            with self.assertRaisesRegex(TypeError, "id should be a non-empty str"):
                state.get_actor(None)
            request.assert_not_called()

    def test_query_parameters(self):
        answer = {"total": 1, "num_after_truncation": 1, "num_filtered": 1, "partial_failure_warning": "",
                  "result": [{"node_id": "n1", "is_head_node": True}]}
        with mock.patch.object(api, "_request", return_value=answer) as request:
            nodes = state.list_nodes(filters=[("is_head_node", "=", True), ("state", "!=", "DEAD")],
                                     limit=5, timeout=10, detail=True)
        self.assertEqual([n.node_id for n in nodes], ["n1"])
        self.assertIsInstance(nodes[0], state.NodeState)
        _, resource, params, timeout = request.call_args[0]
        self.assertEqual((resource, timeout), ("nodes", 10))
        self.assertEqual(params, [("limit", "5"), ("timeout", "8"), ("detail", "true"),
                                  ("filter_keys", "is_head_node"), ("filter_predicates", "="), ("filter_values", "true"),
                                  ("filter_keys", "state"), ("filter_predicates", "!="), ("filter_values", "DEAD")])

    def test_missing_output(self):
        partial = {"total": 2, "num_after_truncation": 2, "num_filtered": 1, "partial_failure_warning": "node n2: down",
                   "result": [{"actor_id": "a1"}]}
        with mock.patch.object(api, "_request", return_value=partial):
            with self.assertRaisesRegex(state.RayStateApiException, "node n2: down"):
                state.list_actors()
            self.assertEqual(len(state.list_actors(raise_on_missing_output=False)), 1)


class DashboardAddressTest(unittest.TestCase):
    def url(self, env, address=None):
        with mock.patch.dict(os.environ, env, clear=True):
            return api._dashboard_url(address)

    def test_resolution_order(self):
        self.assertEqual(self.url({}), "http://127.0.0.1:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "10.0.0.1:6379"}), "http://10.0.0.1:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "ray://head-svc:10001"}), "http://head-svc:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "http://head:8265/"}), "http://head:8265")
        self.assertEqual(self.url({"RAY_ADDRESS": "10.0.0.1:6379", "RAY_API_SERVER_ADDRESS": "http://dash:1"}),
                         "http://dash:1")
        self.assertEqual(self.url({"RAY_API_SERVER_ADDRESS": "http://dash:1"}, address="http://other:2"),
                         "http://other:2")
        self.assertEqual(self.url({}, address="auto"), "http://127.0.0.1:8265")


class UnimplementedTest(unittest.TestCase):
    def test_missing_names_are_named(self):
        with self.assertRaisesRegex(AttributeError, "summarize_tasks.*does not implement"):
            state.summarize_tasks


if __name__ == "__main__":
    unittest.main()
