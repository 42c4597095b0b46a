"""Tests of ray._private.gcs_utils against a real redis-server:
python3 -m unittest discover -s python/tests"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(PYTHON_DIR)
sys.path.insert(0, PYTHON_DIR)
sys.dont_write_bytecode = True  # keep python/ free of __pycache__

from ray._private import gcs_utils  # noqa: E402

REDIS_SERVER = shutil.which("redis-server")
SKIP_REASON = "redis-server is not installed; install the Debian package redis-server (hack/install-deps.sh does)"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server on a free loopback port in a temp dir, without persistence."""

    def __init__(self, password=None):
        self.dir = tempfile.mkdtemp(prefix="redis-test-")
        self.port = free_port()
        self.password = password
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "no", "--protected-mode", "no"]
        if password:
            args += ["--requirepass", password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited during startup")
            try:
                self.client().close()
                return
            except OSError:
                time.sleep(0.025)
        raise RuntimeError("redis-server did not answer")

    def client(self):
        c = gcs_utils._RespClient("127.0.0.1", self.port, False, timeout=5)
        if self.password:
            c.call("AUTH", self.password)
        return c

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def hash_name(namespace, table):
    """The head's key for a table (internal/runtime/gcs/redis.go)."""
    return "RAY" + namespace + "@" + table.replace("%", "%25").replace("@", "%40")


def seed(client, namespace, tables=("jobs", "@rayk8s_nodes", "serve")):
    for table in tables:
        client.call("HSET", hash_name(namespace, table), "k", "v of " + namespace)


def all_keys(client):
    return sorted(k.decode() for k in client.call("KEYS", "*"))


@unittest.skipIf(REDIS_SERVER is None, SKIP_REASON)
class CleanupRedisStorageTest(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        self.client = self.redis.client()
        self.addCleanup(self.client.close)

    def test_removes_exactly_one_namespace(self):
        seed(self.client, "cluster-a")
        seed(self.client, "cluster-b")
        # Namespaces that start like cluster-a, and keys that are not the head's at all.
        seed(self.client, "cluster-a@x", tables=("jobs",))
        seed(self.client, "cluster-ab", tables=("jobs",))
        self.client.call("SET", "unrelated", "1")
        self.client.call("SET", "cluster-a@jobs", "1")

        self.assertIs(gcs_utils.cleanup_redis_storage(
            host="127.0.0.1", port=self.redis.port, password=None, use_ssl=False,
            storage_namespace="cluster-a"), True)

        self.assertEqual(all_keys(self.client), sorted([
            hash_name("cluster-b", "jobs"), hash_name("cluster-b", "@rayk8s_nodes"), hash_name("cluster-b", "serve"),
            hash_name("cluster-a@x", "jobs"), hash_name("cluster-ab", "jobs"), "unrelated", "cluster-a@jobs",
        ]))
        self.assertEqual(self.client.call("HGET", hash_name("cluster-b", "jobs"), "k"), b"v of cluster-b")

    def test_many_keys_and_glob_characters(self):
        ns = "c*[1]?"
        for i in range(2500):
            self.client.call("HSET", hash_name(ns, "t%d" % i), "k", "v")
        seed(self.client, "c1")
        self.assertTrue(gcs_utils.cleanup_redis_storage("127.0.0.1", self.redis.port, None, False, ns))
        self.assertEqual(all_keys(self.client), sorted(hash_name("c1", t) for t in ("jobs", "@rayk8s_nodes", "serve")))

    def test_empty_namespace_is_refused(self):
        seed(self.client, "x")
        for ns in (None, ""):
            with self.assertRaises(ValueError):
                gcs_utils.cleanup_redis_storage("127.0.0.1", self.redis.port, None, False, ns)
        self.assertEqual(len(all_keys(self.client)), 3)

    def test_unreachable_redis_raises_after_retries(self):
        env = {"RAY_redis_db_connect_retries": "2", "RAY_redis_db_connect_wait_milliseconds": "1"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            with self.assertRaisesRegex(ConnectionError, "after 2 attempts"):
                gcs_utils.cleanup_redis_storage("127.0.0.1", free_port(), None, False, "x")
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@unittest.skipIf(REDIS_SERVER is None, SKIP_REASON)
class CleanupWithPasswordTest(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer(password="s3cret")
        self.addCleanup(self.redis.stop)
        self.client = self.redis.client()
        self.addCleanup(self.client.close)
        seed(self.client, "a")
        seed(self.client, "b")

    def test_password_and_username(self):
        with self.assertRaises(gcs_utils.RedisError):
            gcs_utils.cleanup_redis_storage("127.0.0.1", self.redis.port, "wrong", False, "a")
        self.assertEqual(len(all_keys(self.client)), 6)
        self.assertTrue(gcs_utils.cleanup_redis_storage("127.0.0.1", self.redis.port, "s3cret", False, "a", username="default"))
        self.assertEqual(all_keys(self.client), sorted(hash_name("b", t) for t in ("jobs", "@rayk8s_nodes", "serve")))

    def test_the_operators_cleanup_job_command(self):
        """Runs the exact script the operator's Redis clean-up Job runs (redisCleanupScript)."""
        source = os.path.join(REPO, "internal", "controller", "raycluster", "resources", "gcs.go")
        if not os.path.exists(source):
            self.skipTest("the operator's source is not next to python/")
        with open(source) as f:
            m = re.search(r"const redisCleanupScript = ((?:`[^`]*`\s*\+?\s*)+)", f.read())
        self.assertIsNotNone(m, "redisCleanupScript not found in " + source)
        script = "".join(re.findall(r"`([^`]*)`", m.group(1)))
        self.assertIn("cleanup_redis_storage", script)
        # The Job runs `python`; the image provides it (python-is-python3).
        bindir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, bindir, True)
        os.symlink(sys.executable, os.path.join(bindir, "python"))
        env = {
            "PATH": bindir + os.pathsep + "/usr/bin:/bin",
            "PYTHONPATH": PYTHON_DIR,
            "PYTHONDONTWRITEBYTECODE": "1",
            "RAY_REDIS_ADDRESS": "redis://127.0.0.1:%d,redis://unused:1" % self.redis.port,
            "REDIS_PASSWORD": "s3cret",
            "RAY_external_storage_namespace": "b",
            "RAY_redis_db_connect_retries": "3",
            "RAY_redis_db_connect_wait_milliseconds": "10",
        }
        out = subprocess.run(["/bin/bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(all_keys(self.client), sorted(hash_name("a", t) for t in ("jobs", "@rayk8s_nodes", "serve")))


if __name__ == "__main__":
    unittest.main()
