"""Progress callbacks of a benchmark run. Library code never prints; the CLI subclasses this.

Every method is optional (the base class ignores everything). A ``Unit`` names one
(model, repeat, outer fold); ``trial`` is the Optuna trial number, or ``"refit"`` for the final fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..vocabulary import unit_key


@dataclass(frozen=True)
class Unit:
    label: str
    repeat: int
    fold: int

    @property
    def key(self) -> str:
        return unit_key(self.repeat, self.fold)

    def __str__(self) -> str:
        return f"{self.label} {self.key}"


@dataclass(frozen=True)
class Plan:
    """What a run will do: its units, trials per unit and the epoch budget per fit."""

    units: tuple[Unit, ...]
    trials: int
    max_epochs: int
    refit: bool


class RunListener:
    def run_started(self, plan: Plan, run_dir: str) -> None: ...

    def unit_skipped(self, unit: Unit, reason: str) -> None:
        """``reason``: "done" (finished earlier), "claimed" (another worker runs it)."""

    def unit_started(self, unit: Unit) -> None: ...

    def trial_started(self, unit: Unit, trial: int | str) -> None: ...

    def epoch(self, unit: Unit, trial: int | str, epoch: int, metrics: dict) -> None: ...

    def trial_finished(self, unit: Unit, trial: int | str, value: float | None, state: str) -> None: ...

    def trial_failed(self, unit: Unit, trial: int, error: str) -> None:
        """A configuration made the recipe raise (the trial is marked failed; tuning goes on)."""

    def unit_finished(self, unit: Unit, metrics: dict) -> None: ...

    def waiting(self, units: list[Unit]) -> None:
        """Units held by other workers that this process waits for."""

    def message(self, text: str) -> None: ...
