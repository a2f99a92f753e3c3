"""Errors raised while reading run directories or building leaderboards and reports."""

from ..errors import ResectbenchError


class LeaderboardError(ResectbenchError):
    """A run directory cannot be read, or several cannot be compared (the message says why)."""
