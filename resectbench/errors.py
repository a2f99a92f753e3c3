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


class InvalidCohortError(DataError):
    """A cohort refused because of the problems its checks found; the message lists every one of them.

    ``problems`` holds them as ``(case_id or None, problem)``; ``case_id`` is set when a single case fails.
    """

    def __init__(self, where: str, problems: list[tuple[str | None, str]], hint: str = ""):
        self.problems = list(problems)
        by_case: dict[str | None, list[str]] = {}
        for case_id, problem in self.problems:
            by_case.setdefault(case_id, []).append(problem)
        lines = [(f"case {cid!r}: " if cid is not None else "") + "; ".join(msgs) for cid, msgs in by_case.items()]
        cases = [cid for cid in by_case if cid is not None]
        if len(by_case) == 1 and cases:
            message = lines[0]
        else:
            what = f"{len(cases)} invalid case(s)" + (" and problems of the whole dataset" if None in by_case else "")
            message = f"{where}: {what}:\n" + "\n".join(f"  {ln}" for ln in lines)
        Exception.__init__(self, message + (f"\n{hint}" if hint else ""))
        self.case_id = cases[0] if len(by_case) == 1 and cases else None


class TrainingError(ResectbenchError):
    """Training stopped because something went wrong (non-finite loss or input, ...)."""


class OutputError(ResectbenchError):
    """A place resectbench must write to cannot take the output: a file where a folder is expected (or the
    other way round), a read-only location, a full disk. The message names the path."""


class DiskFullError(OutputError):
    """The disk filled up while writing ``path``; nothing half-written was left in its place."""

    def __init__(self, path):
        self.path = path
        super().__init__(
            f"the disk is full: could not write {path} (nothing half-written was left in its place); free space "
            "on that disk and run the same command again: a run resumes where it stopped, keeping every finished unit"
        )
