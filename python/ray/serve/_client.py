"""The Serve REST API of one cluster (the dashboard's /api/serve/applications/),
as serve.run, serve.status and the `serve` CLI use it."""

import json
import time
import urllib.error
import urllib.request

from ray._private import auth

APPLICATIONS = "/api/serve/applications/"


class ServeAPIError(RuntimeError):
    """The REST API answered with an error."""


class ServeClient:
    def __init__(self, dashboard_url, timeout_s=30):
        self.url = dashboard_url.rstrip("/")
        if "://" not in self.url:
            self.url = "http://" + self.url
        self.timeout_s = timeout_s

    def _request(self, method, path, body=None, timeout_s=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        auth.add_header(req)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", errors="replace").strip()
            raise ServeAPIError(f"{method} {self.url}{path} failed with status {e.code}: {text}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConnectionError(f"Could not reach the Ray dashboard at {self.url}: {reason}") from None

    def details(self):
        """GET /api/serve/applications/: the Serve instance and its applications."""
        return json.loads(self._request("GET", APPLICATIONS + "?api_type=declarative") or b"{}")

    def deploy(self, config):
        """PUT the whole declarative config (every application)."""
        self._request("PUT", APPLICATIONS, config)

    def shutdown(self):
        self._request("DELETE", APPLICATIONS, timeout_s=180)

    def wait_ready(self, timeout_s=60):
        """Waits for the dashboard to answer (a head that just started)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._request("GET", "/api/version", timeout_s=5)
                return
            except ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def current_config(self):
        """The declarative config now deployed: the options Serve started
        with plus each application's deployed config."""
        d = self.details()
        apps = []
        for app in (d.get("applications") or {}).values():
            cfg = app.get("deployed_app_config")
            if cfg:
                apps.append(cfg)
        out = {"applications": apps}
        for key in ("http_options", "grpc_options", "proxy_location"):
            if d.get(key):
                out[key] = d[key]
        return out, d
