"""ray.serve.schema: the parts of Serve's schemas user code imports."""

from ray.serve._fields import FieldDict


class LoggingConfig(FieldDict):
    """A deployment's or application's logging_config."""

    FIELDS = {
        "encoding": "TEXT",
        "log_level": "INFO",
        "logs_dir": None,
        "enable_access_log": True,
        "additional_log_standard_attrs": [],
    }


def __getattr__(name):
    raise AttributeError(f"ray.serve.schema.{name} is not implemented by the rayk8s Serve SDK")


__all__ = ["LoggingConfig"]
