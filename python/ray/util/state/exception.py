"""Errors of the state API client."""


class RayStateApiException(Exception):
    """The dashboard refused a state query, answered without a state reply, or the answer is
    incomplete while ``raise_on_missing_output`` is True."""


class ServerUnavailable(RayStateApiException):
    """The dashboard could not be reached."""
