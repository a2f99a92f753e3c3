"""Errors of the evaluation protocol (bad configuration, a run directory that cannot be resumed)."""

from ..errors import ResectbenchError


class ProtocolError(ResectbenchError):
    """The benchmark cannot run as configured (the message says what to change)."""
