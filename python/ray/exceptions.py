"""Ray's exception types, raised by ray.get and friends."""


class RayError(Exception):
    """Base of every Ray error."""


class RaySystemError(RayError):
    """The runtime itself failed."""


class RayTaskError(RayError):
    """A task or actor method raised: ray.get raises this wrapped error.

    as_instanceof_cause() returns an error that is both a RayTaskError and
    an instance of the original exception's class, so user code catches it
    by its own type, as in Ray.
    """

    def __init__(self, function_name, traceback_str, cause, pid=None, ip=None):
        super().__init__(traceback_str)
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.pid = pid
        self.ip = ip

    def __reduce__(self):
        return (RayTaskError, (self.function_name, self.traceback_str, self.cause, self.pid, self.ip))

    def __str__(self):
        header = f"ray::{self.function_name}() (pid={self.pid}, ip={self.ip})"
        return header + "\n" + self.traceback_str.rstrip()

    def as_instanceof_cause(self):
        cause_cls = type(self.cause)
        if self.cause is None or issubclass(cause_cls, RayTaskError):
            return self
        message = str(self)
        base = self

        def _init(err, cause):
            err.cause = cause
            err.args = (cause,)
            err.function_name = base.function_name
            err.traceback_str = base.traceback_str
            err.pid, err.ip = base.pid, base.ip

        def _getattr(err, name):
            return getattr(err.cause, name)

        def _reduce(err):
            return (RayTaskError, (base.function_name, base.traceback_str, err.cause, base.pid, base.ip))

        name = f"RayTaskError({cause_cls.__name__})"
        try:
            dual = type(name, (RayTaskError, cause_cls), {
                "__init__": _init,
                "__getattr__": _getattr,
                "__str__": lambda err: message,
                "__reduce__": _reduce,
            })
            dual.__qualname__ = name
            return dual(self.cause)
        except TypeError:
            # Classes that cannot be combined (layout conflicts) keep the
            # plain wrapper.
            return self


class RayActorError(RayError):
    """The actor died (or never started) before finishing the call."""

    def __init__(self, message="The actor died unexpectedly before finishing this task."):
        super().__init__(message)


class ActorDiedError(RayActorError):
    pass


class WorkerCrashedError(RayError):
    """The worker running the task died, and no retries were left."""


class GetTimeoutError(RayError, TimeoutError):
    """ray.get's timeout passed before the objects were ready."""


class ObjectLostError(RayError):
    """The object's value is gone (its job or node ended)."""


class OwnerDiedError(ObjectLostError):
    """The object's owner (here: the node whose store held it) died."""


class TaskCancelledError(RayError):
    """The task was cancelled."""


class RuntimeEnvSetupError(RayError):
    """The task's runtime environment could not be set up."""
