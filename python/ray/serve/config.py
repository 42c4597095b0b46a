"""ray.serve.config: the option classes users pass to Serve."""

import enum

from ray.serve._fields import FieldDict


class AutoscalingConfig(FieldDict):
    """A deployment's autoscaling_config; fields and defaults as in Ray."""

    FIELDS = {
        "min_replicas": 1,
        "initial_replicas": None,
        "max_replicas": 1,
        "target_ongoing_requests": 2,
        "metrics_interval_s": 10.0,
        "look_back_period_s": 30.0,
        "smoothing_factor": 1.0,
        "upscale_smoothing_factor": None,
        "downscale_smoothing_factor": None,
        "upscaling_factor": None,
        "downscaling_factor": None,
        "downscale_delay_s": 600.0,
        "downscale_to_zero_delay_s": None,
        "upscale_delay_s": 30.0,
        "aggregation_function": "mean",
    }


class HTTPOptions(FieldDict):
    """The HTTP proxy's options (http_options of a deploy config). Ray's
    fields; serve.start refuses the ones rayk8s does not act on (HONOURED
    lists those it does) when they differ from their default."""

    FIELDS = {
        "host": "0.0.0.0",
        "port": 8000,
        "root_path": "",
        "request_timeout_s": None,
        "keep_alive_timeout_s": 5,
        "middlewares": [],
        "location": None,
        "num_cpus": None,
        "ssl_keyfile": None,
        "ssl_certfile": None,
        "ssl_keyfile_password": None,
        "ssl_ca_certs": None,
    }
    HONOURED = ("host", "port", "root_path", "request_timeout_s", "keep_alive_timeout_s")


class gRPCOptions(FieldDict):  # noqa: N801 - Ray's name
    """The gRPC proxy's options (grpc_options of a deploy config)."""

    FIELDS = {
        "port": 9000,
        "grpc_servicer_functions": [],
        "request_timeout_s": None,
    }
    HONOURED = ("port", "grpc_servicer_functions", "request_timeout_s")


class ProxyLocation(str, enum.Enum):
    """Where Serve runs proxies (proxy_location of a deploy config)."""

    Disabled = "Disabled"
    HeadOnly = "HeadOnly"
    EveryNode = "EveryNode"


def __getattr__(name):
    raise AttributeError(f"ray.serve.config.{name} is not implemented by the rayk8s Serve SDK")


__all__ = ["AutoscalingConfig", "HTTPOptions", "ProxyLocation", "gRPCOptions"]
