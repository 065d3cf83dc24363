"""The errors the command line turns into one line on stderr: ``ParamError`` (bad input, exit code
2) and ``TrainingError`` (a run that cannot go on, exit code 1)."""

from __future__ import annotations


class ParamError(ValueError):
    """Bad user input. The message names the parameter and what is allowed.

    Raised before anything is written, so that a failed command leaves no partial output.
    """

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message

    def __reduce__(self):  # a worker process's error reaches the parent as itself
        return _rebuild, (type(self), self.param, self.message)


def _rebuild(cls: type, param: str, message: str) -> ParamError:
    """A ``ParamError`` (or subclass, whatever its own arguments) unpickled from its parts."""
    error = ParamError.__new__(cls)
    ParamError.__init__(error, param, message)
    return error


class TrainingError(RuntimeError):
    """A training run that cannot continue (the loss became NaN or infinite). The message names
    the step; the run folder keeps its last checkpoint and gets no summary.json."""


def check_positive_int(param: str, value: int, minimum: int = 1) -> int:
    """Return ``value`` as int when it is an integer >= ``minimum``; raise ParamError otherwise."""
    try:
        ivalue = int(value)
    except (TypeError, ValueError):
        raise ParamError(param, f"must be an integer >= {minimum}, got {value!r}") from None
    if ivalue != value or ivalue < minimum:
        raise ParamError(param, f"must be an integer >= {minimum}, got {value!r}")
    return ivalue
