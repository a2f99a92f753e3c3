"""Declarative Optuna search spaces that live next to the component they tune.

A component declares ``search_space={"lr": Float(1e-5, 1e-3, log=True), "width": Categorical([32, 64])}``
when it is registered. The tuning protocol samples it through :func:`suggest` without knowing the
component; recipes nest the spaces of their parts with :func:`prefixed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False
    step: float | None = None
    #: sampled only when other parameters of the space have these values (see :func:`suggest`)
    when: Mapping[str, Any] | None = None

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def __str__(self) -> str:
        return f"float[{self.low:g}, {self.high:g}]" + (" log" if self.log else "") + _condition(self.when)


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False
    step: int = 1
    when: Mapping[str, Any] | None = None

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def __str__(self) -> str:
        return f"int[{self.low}, {self.high}]" + (" log" if self.log else "") + _condition(self.when)


@dataclass(frozen=True)
class Categorical:
    choices: Sequence[Any]
    when: Mapping[str, Any] | None = None

    def suggest(self, trial, name: str):
        return trial.suggest_categorical(name, list(self.choices))

    def __str__(self) -> str:
        return "{" + ", ".join(map(repr, self.choices)) + "}" + _condition(self.when)


Param = Union[Float, Int, Categorical]
SearchSpace = Mapping[str, Param]
# A component may also declare a callable ``space(trial) -> dict`` for conditional spaces.
SearchSpaceLike = Union[SearchSpace, Callable[[Any], dict], None]


def _condition(when) -> str:
    return "" if not when else " if " + ", ".join(f"{k} = {v!r}" for k, v in when.items())


def _applies(param, known: Mapping[str, Any]) -> bool:
    """A conditional parameter applies when every parameter it names has one of the given values; one whose
    value is not known here (neither sampled before it nor fixed) does not rule it out."""
    for key, wanted in (getattr(param, "when", None) or {}).items():
        choices = wanted if isinstance(wanted, (list, tuple, set)) else (wanted,)
        if key in known and known[key] not in choices:
            return False
    return True


def suggest(space: SearchSpaceLike, trial, prefix: str = "", fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Sample one configuration from ``space`` with an Optuna trial (keys without the prefix). A parameter
    declared ``when={"classifier": "logistic"}`` is sampled only in trials where ``classifier`` (sampled
    earlier in the space, or ``fixed``) is "logistic", so a trial carries only the parameters that act."""
    if space is None:
        return {}
    if callable(space):
        return dict(space(trial))
    chosen: dict[str, Any] = {}
    for name, param in space.items():
        if _applies(param, {**(fixed or {}), **chosen}):
            chosen[name] = param.suggest(trial, prefix + name)
    return chosen


def prefixed(space: SearchSpace | None, prefix: str) -> dict[str, Param]:
    """Nest a component's space under ``prefix`` (``"fusion."``) inside a recipe's space."""
    return {prefix + name: param for name, param in (space or {}).items()}


def describe(space: SearchSpaceLike) -> dict[str, str]:
    """Human-readable form used by ``resectbench describe``."""
    if space is None:
        return {}
    if callable(space):
        doc = (space.__doc__ or "conditional search space").strip().splitlines()[0]
        return {"(callable)": doc}
    return {name: str(param) for name, param in space.items()}
