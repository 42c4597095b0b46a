"""Exceptions of the Serve API, named as in ray.serve.exceptions."""


class RayServeException(Exception):
    """Base of Serve's errors."""


class BackPressureError(RayServeException):
    """The caller's queue for a deployment is full (max_queued_requests)."""


class DeploymentUnavailableError(RayServeException):
    """The deployment cannot take calls (for example it failed to deploy)."""


class RequestCancelledError(RayServeException):
    """The call was cancelled."""


class RayTaskError(RayServeException):
    """A handle call failed in the called replica; str() is the traceback."""


class GetTimeoutError(TimeoutError, RayServeException):
    """DeploymentResponse.result(timeout_s=...) ran out of time."""
