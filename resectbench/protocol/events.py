"""Progress callbacks of a benchmark run. Library code never prints; the CLI subclasses this.

Every method is optional (the base class ignores everything). A ``Unit`` names one
(model, repeat, outer fold); ``trial`` is the Optuna trial number, or ``"refit"`` for the final fit.

:func:`hooked` puts a :class:`HookListener` in front of the caller's listener: it also hands the work
events, as plain dicts, to the plugins' ``run_event`` hook (trackers such as the MLflow logger,
docs/tracking.md). ``run_benchmark`` and ``run_worker`` use it, so every process that computes units
(the run, ``--jobs`` workers, storage workers) reports the units it computes.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..vocabulary import RunFiles as F, unit_key


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
    benchmark: str = ""
    profile: str = ""


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

    def run_finished(self, status: str) -> None:
        """The run (or worker) stops: ``status`` is "finished", "failed" or "interrupted"."""


class HookListener:
    """Passes every event on to ``inner`` (the caller's listener, which may be duck-typed like the CLI's)
    and the work events, as plain dicts, to each plugin's ``run_event`` hook, one plugin at a time.

    Trackers watch a run, they never change it: each gets its own copy of a payload, and one whose hook
    raises is warned about once and gets no more events of this run (a tracker whose server is down then
    costs one timeout, not one per event).
    """

    def __init__(self, inner=None):
        self.inner = inner or RunListener()
        self.run_dir = ""
        self.computed: list[Unit] = []
        self.hooks: dict = {}  # plugin name -> its run_event hook alone; from run_started on

    def run_started(self, plan: Plan, run_dir: str) -> None:
        self.inner.run_started(plan, run_dir)
        self.run_dir, self.hooks = run_dir, _hook_callers()
        units = [_unit(u) for u in plan.units]
        self._emit(
            "run_started",
            benchmark=plan.benchmark,
            profile=plan.profile,
            units=units,
            trials=plan.trials,
            max_epochs=plan.max_epochs,
            refit=plan.refit,
        )

    # process chatter, for the caller's listener only
    def unit_skipped(self, unit: Unit, reason: str) -> None:
        self.inner.unit_skipped(unit, reason)

    def waiting(self, units: list[Unit]) -> None:
        self.inner.waiting(units)

    def message(self, text: str) -> None:
        self.inner.message(text)

    def unit_started(self, unit: Unit) -> None:
        self.inner.unit_started(unit)
        self._emit("unit_started", **_unit(unit))

    def trial_started(self, unit: Unit, trial: int | str) -> None:
        self.inner.trial_started(unit, trial)
        self._emit("trial_started", **_unit(unit), trial=trial)

    def epoch(self, unit: Unit, trial: int | str, epoch: int, metrics: dict) -> None:
        self.inner.epoch(unit, trial, epoch, metrics)
        self._emit("epoch", **_unit(unit), trial=trial, epoch=epoch, metrics=metrics)

    def trial_finished(self, unit: Unit, trial: int | str, value: float | None, state: str) -> None:
        self.inner.trial_finished(unit, trial, value, state)
        self._emit("trial_finished", **_unit(unit), trial=trial, value=value, state=state)

    def trial_failed(self, unit: Unit, trial: int, error: str) -> None:
        self.inner.trial_failed(unit, trial, error)
        self._emit("trial_failed", **_unit(unit), trial=trial, error=error)

    def unit_finished(self, unit: Unit, metrics: dict) -> None:
        self.inner.unit_finished(unit, metrics)
        self.computed.append(unit)
        # the unit's files are written before this event: its parameters and timings come from there
        folder = Path(self.run_dir) / F.MODELS_DIR / unit.label / unit.key if self.run_dir else None
        files = sorted(str(p) for p in folder.iterdir() if p.name != F.DONE) if folder and folder.is_dir() else []
        params, timings = _read(folder, F.BEST_PARAMS), _read(folder, F.TIMINGS)
        self._emit("unit_finished", **_unit(unit), metrics=metrics, params=params, timings=timings, files=files)

    def run_finished(self, status: str) -> None:
        finished = getattr(self.inner, "run_finished", None)
        if finished is not None:  # a duck-typed listener need not know this event
            finished(status)
        self._emit("run_finished", status=status, units=[_unit(u) for u in self.computed])

    def _emit(self, event: str, **fields) -> None:
        from ..plugins import PluginWarning

        payload = {"event": event, "run_dir": self.run_dir, **fields}
        for name, hook in list(self.hooks.items()):
            try:
                hook(event=event, payload=copy.deepcopy(payload))
            except Exception as exc:  # noqa: BLE001 - a tracker may raise anything; the run goes on
                del self.hooks[name]
                warnings.warn(
                    f"plugin {name!r} failed on run event {event}: {type(exc).__name__}: {exc}; "
                    "it gets no more events of this run",
                    PluginWarning,
                    stacklevel=2,
                )


@contextmanager
def hooked(listener=None) -> Iterator[HookListener]:
    """``listener`` and the plugins' ``run_event`` hook for the block, which ends with ``run_finished``."""
    events = HookListener(listener)
    try:
        yield events
    except KeyboardInterrupt:
        events.run_finished("interrupted")
        raise
    except BaseException:
        events.run_finished("failed")
        raise
    events.run_finished("finished")


def _hook_callers() -> dict:
    """Each plugin's ``run_event``, to be called alone. Asked for when the run starts: the plugins are loaded
    by then (the run has resolved its models), so their loading stays in the run's setup time."""
    from ..plugins import plugin_manager
    from ..tracking import enable_from_environment

    pm = plugin_manager()
    enable_from_environment(pm)
    return {
        impl.plugin_name: pm.subset_hook_caller(
            "run_event", remove_plugins=[p for p in pm.get_plugins() if p is not impl.plugin]
        )
        for impl in pm.hook.run_event.get_hookimpls()
    }


def _unit(unit: Unit) -> dict:
    return {"label": unit.label, "repeat": unit.repeat, "fold": unit.fold, "key": unit.key}


def _read(folder: Path | None, name: str) -> dict:
    path = folder / name if folder is not None else None
    return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.exists() else {}
