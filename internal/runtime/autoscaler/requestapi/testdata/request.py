"""Calls ray.autoscaler.sdk.request_resources with the JSON arguments in argv[1] and prints
"ok", or the exception's type and message."""

import json
import sys

from ray.autoscaler.sdk import request_resources

try:
    request_resources(**json.loads(sys.argv[1]))
except Exception as e:  # noqa: BLE001 - the test reads what was raised
    print("%s: %s" % (type(e).__name__, e))
else:
    print("ok")
