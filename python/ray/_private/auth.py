"""The cluster's authentication token, for the REST calls a driver makes to
the dashboard when the cluster runs with token authentication."""

import os


def token():
    """RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else
    ~/.ray/auth_token when RAY_AUTH_MODE is "token" (Ray's order); None when
    there is none."""
    t = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if t:
        return t
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if not path and os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        path = os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    if path:
        try:
            with open(path) as f:
                return f.read().strip() or None
        except OSError as e:
            raise RuntimeError(f"Could not read the Ray authentication token from {path}: {e.strerror}; "
                               "set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH") from None
    return None


def add_header(req):
    """Adds the token to a urllib request as Authorization: Bearer."""
    t = token()
    if t:
        req.add_header("Authorization", "Bearer " + t)
    return req
