"""Ctrl-C (SIGINT) and ``kill`` (SIGTERM) stop a command the same way, however the process was started.

Python installs its SIGINT -> KeyboardInterrupt handler only when SIGINT was not ignored at start, and a
background job (``nohup make test &``, many CI shells) starts with SIGINT ignored; SIGTERM kills Python
on the spot, with no cleanup. The CLI therefore installs both handlers itself. The first signal raises
:class:`Interrupted`, a KeyboardInterrupt, so the code that releases a unit in flight (and Optuna, which
marks its running trial failed) runs exactly as for Ctrl-C; a second signal while stopping exits at once.
"""

from __future__ import annotations

import os
import signal

HANDLED = (signal.SIGINT, signal.SIGTERM)

_received: int | None = None


class Interrupted(KeyboardInterrupt):
    """A handled signal arrived; ``exit_code`` is the shell convention 128 + signal number."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handle(signum, _frame) -> None:
    global _received
    if _received is not None:  # the user insists: stop without the clean-up (a resume recovers the unit)
        os.write(2, f"\n{signal.Signals(signum).name} again: stopping now\n".encode())
        os._exit(128 + signum)
    _received = signum
    raise Interrupted(signum)


def install() -> None:
    """Handle SIGINT and SIGTERM in this (main) thread, whatever the dispositions inherited at start."""
    global _received
    _received = None
    for sig in HANDLED:
        signal.signal(sig, _handle)


def received() -> int | None:
    """The first handled signal of this process, or None."""
    return _received


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for a plain Ctrl-C, 128 + signal for one the handlers raised."""
    return getattr(exc, "exit_code", 128 + signal.SIGINT)
