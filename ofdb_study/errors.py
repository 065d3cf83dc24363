"""The one error type the command line turns into a one-line message and exit code 2."""

from __future__ import annotations


class ParamError(ValueError):
    """Bad user input. The message names the parameter and what is allowed.

    Raised before anything is written, so that a failed command leaves no partial output.
    """

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param


def check_positive_int(param: str, value: int, minimum: int = 1) -> int:
    """Return ``value`` as int when it is an integer >= ``minimum``; raise ParamError otherwise."""
    try:
        ivalue = int(value)
    except (TypeError, ValueError):
        raise ParamError(param, f"must be an integer >= {minimum}, got {value!r}") from None
    if ivalue != value or ivalue < minimum:
        raise ParamError(param, f"must be an integer >= {minimum}, got {value!r}")
    return ivalue
