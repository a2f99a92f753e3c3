"""Exception types. Every error a user can trigger says what went wrong and, where it applies,
which case, component or plugin it concerns."""
from __future__ import annotations


class ResectbenchError(Exception):
    """Base class for errors raised on purpose by resectbench."""


class RegistryError(ResectbenchError, KeyError):
    """Unknown component, duplicate registration or invalid arguments to a factory."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class PluginError(ResectbenchError):
    """A plugin could not be imported or failed while registering its components."""


class DataError(ResectbenchError):
    """Bad input data. ``case_id`` names the offending case when there is one."""

    def __init__(self, message: str, case_id: str | None = None):
        self.case_id = case_id
        super().__init__(f"case {case_id!r}: {message}" if case_id else message)


class TrainingError(ResectbenchError):
    """Training stopped because something went wrong (non-finite loss or input, ...)."""
