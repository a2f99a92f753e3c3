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

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def __str__(self) -> str:
        return f"float[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False
    step: int = 1

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def __str__(self) -> str:
        return f"int[{self.low}, {self.high}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class Categorical:
    choices: Sequence[Any]

    def suggest(self, trial, name: str):
        return trial.suggest_categorical(name, list(self.choices))

    def __str__(self) -> str:
        return "{" + ", ".join(map(repr, self.choices)) + "}"


Param = Union[Float, Int, Categorical]
SearchSpace = Mapping[str, Param]
# A component may also declare a callable ``space(trial) -> dict`` for conditional spaces.
SearchSpaceLike = Union[SearchSpace, Callable[[Any], dict], None]


def suggest(space: SearchSpaceLike, trial, prefix: str = "") -> dict[str, Any]:
    """Sample one configuration from ``space`` with an Optuna trial (keys without the prefix)."""
    if space is None:
        return {}
    if callable(space):
        return dict(space(trial))
    return {name: param.suggest(trial, prefix + name) for name, param in space.items()}


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
