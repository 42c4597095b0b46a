"""Ray Serve's import paths for the rayk8s Serve SDK.

`from ray import serve` and `import rayk8s.serve` give one module object, so
code written for Ray Serve runs unchanged. The Ray-only submodules
(ray.serve.handle, .config, .schema, .grpc_util,
.generated) are loaded from this package first and
then hung off that shared module; see docs/serve.md.
"""

import sys

import rayk8s.serve as _serve
from ray.serve import _driver  # noqa: F401 - loaded before the swap below, see there
from ray.serve import config as _config
from ray.serve import generated as _generated
from ray.serve import grpc_util as _grpc_util
from ray.serve import scripts  # noqa: F401 - the `serve` CLI, loaded before the swap too
from ray.serve import handle as _handle
from ray.serve import schema as _schema

for _name, _mod in (("config", _config), ("generated", _generated), ("grpc_util", _grpc_util),
                    ("handle", _handle), ("schema", _schema)):
    setattr(_serve, _name, _mod)
sys.modules["ray.serve.exceptions"] = _serve.exceptions
# After the swap `ray.serve.X` resolves against rayk8s.serve's files, so
# every module of this package is imported above, while it still can be;
# later imports of ray.serve.X find them in sys.modules.
# The import system binds ray.serve to whatever sys.modules holds once this
# body finishes, so the swap makes `ray.serve is rayk8s.serve`.
sys.modules[__name__] = _serve
