# Every public name of ray.serve a driver uses, against the local head this
# script starts (the test runs it without RAY_ADDRESS): each line printed is
# asserted by test_serve_compat.PublicAPITest.
import os

import ray
import requests
from ray import serve
from ray.serve import Application
from ray.serve.config import AutoscalingConfig, HTTPOptions
from ray.serve.exceptions import RayServeException
from ray.serve.handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator
from ray.serve.schema import LoggingConfig

# serve.start's port, not the local head's default (RAYK8S_SERVE_HTTP_PORT).
PORT = int(os.environ["SERVE_START_PORT"])


@serve.deployment(autoscaling_config=AutoscalingConfig(min_replicas=1, max_replicas=2))
class Models:
    @serve.multiplexed(max_num_models_per_replica=2)
    async def get_model(self, model_id: str):
        return f"model:{model_id}"

    async def __call__(self, x: int) -> str:
        model = await self.get_model(serve.get_multiplexed_model_id())
        return f"{model}:{x}"

    def where(self) -> str:
        ctx = serve.get_replica_context()
        return f"{ctx.app_name}/{ctx.deployment}"

    def fail(self):
        raise ValueError("no such model")

    def count(self, n: int):
        yield from range(n)


@serve.deployment
class Front:
    def __init__(self, models: DeploymentHandle):
        self.models = models

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def double(self, xs):
        return [x * 2 for x in xs]

    async def __call__(self, x: int) -> str:
        sibling = serve.get_deployment_handle("Models")
        return await sibling.options(multiplexed_model_id="b").remote(await self.double(x))


if __name__ == "__main__":
    serve.start(http_options=HTTPOptions(port=PORT, host="127.0.0.1"))
    app: Application = Front.bind(Models.bind())
    handle = serve.run(app, name="api", route_prefix="/api", logging_config=LoggingConfig(log_level="INFO"))
    print("ray initialized:", ray.is_initialized())
    response = handle.remote(3)
    print("response:", isinstance(response, DeploymentResponse), response.result())
    models = serve.get_deployment_handle("Models", "api")
    print("multiplexed:", models.options(multiplexed_model_id="a").remote(1).result())
    print("replica context:", models.where.remote().result())
    gen = models.options(stream=True).count.remote(3)
    print("generator:", isinstance(gen, DeploymentResponseGenerator), list(gen))
    try:
        models.fail.remote().result()
    except ValueError as e:
        print("error:", type(e).__name__, "no such model" in str(e))
    print("exceptions:", issubclass(serve.exceptions.BackPressureError, RayServeException))
    print("app handle:", serve.get_app_handle("api").remote(5).result())
    print("http:", requests.get(f"http://127.0.0.1:{PORT}/-/routes").json())
    st = serve.status()
    print("status:", st.applications["api"].status, sorted(st.applications["api"].deployments))
    serve.delete("api")
    print("after delete:", sorted(serve.status().applications))
    serve.shutdown()
    ray.shutdown()
    print("ray initialized:", ray.is_initialized())
