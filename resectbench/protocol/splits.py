"""Outer and inner cross-validation splits of a cohort, identical for every model of a benchmark.

Splits depend only on the case ids, labels, groups, the data fingerprint and the seed; case ids are
sorted first so the order in which a reader lists cases changes nothing. They are saved in
``splits.json`` with a fingerprint that the run directory checks before resuming.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from ..vocabulary import unit_key
from .errors import ProtocolError
from .seeding import derive_seed

INNER_MODES = ("holdout", "kfold")


@dataclass(frozen=True)
class InnerSplit:
    train: tuple[str, ...]
    valid: tuple[str, ...]


@dataclass(frozen=True)
class OuterSplit:
    repeat: int
    fold: int
    train: tuple[str, ...]
    test: tuple[str, ...]
    inner: tuple[InnerSplit, ...]

    @property
    def key(self) -> str:
        """Name of the unit folder: ``fold_<repeat>_<fold>``."""
        return unit_key(self.repeat, self.fold)


@dataclass
class Splits:
    seed: int
    outer_folds: int
    repeats: int
    inner: str
    outer: list[OuterSplit] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        payload = json.dumps(self._body(), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    def _body(self) -> dict:
        return {
            "seed": self.seed,
            "outer_folds": self.outer_folds,
            "repeats": self.repeats,
            "inner_mode": self.inner,
            "outer": [
                {
                    "repeat": o.repeat,
                    "fold": o.fold,
                    "train": list(o.train),
                    "test": list(o.test),
                    "inner": [{"train": list(i.train), "valid": list(i.valid)} for i in o.inner],
                }
                for o in self.outer
            ],
        }

    def to_dict(self) -> dict:
        return {"fingerprint": self.fingerprint, **self._body()}

    def save(self, path: Path) -> None:
        from .store import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> "Splits":
        outer = [
            OuterSplit(
                o["repeat"],
                o["fold"],
                tuple(o["train"]),
                tuple(o["test"]),
                tuple(InnerSplit(tuple(i["train"]), tuple(i["valid"])) for i in o["inner"]),
            )
            for o in data["outer"]
        ]
        splits = cls(
            seed=data["seed"],
            outer_folds=data["outer_folds"],
            repeats=data["repeats"],
            inner=data["inner_mode"],
            outer=outer,
        )
        if "fingerprint" in data and data["fingerprint"] != splits.fingerprint:
            raise ProtocolError("splits.json was edited: its fingerprint does not match its content")
        return splits

    @classmethod
    def load(cls, path: Path) -> "Splits":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def get(self, repeat: int, fold: int) -> OuterSplit:
        for o in self.outer:
            if (o.repeat, o.fold) == (repeat, fold):
                return o
        raise KeyError((repeat, fold))


def _kfold(n_splits: int, seed: int, grouped: bool):
    if grouped:
        return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def _check_counts(labels: np.ndarray, n_splits: int, what: str) -> None:
    values, counts = np.unique(labels, return_counts=True)
    if len(values) < 2:
        raise ProtocolError(f"{what}: needs at least two classes, found only class {values.tolist()}")
    if counts.min() < n_splits:
        detail = ", ".join(f"class {v}: {c}" for v, c in zip(values, counts))
        raise ProtocolError(
            f"{what}: {n_splits} stratified folds need at least {n_splits} cases of every class "
            f"({detail}); use fewer folds or more data"
        )


def _inner_splits(
    ids: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None,
    mode: str,
    inner_folds: int,
    valid_fraction: float,
    seed: int,
    where: str,
) -> tuple[InnerSplit, ...]:
    if mode == "kfold":
        _check_counts(labels, inner_folds, f"inner {inner_folds}-fold split of {where}")
        folds = _kfold(inner_folds, seed, groups is not None).split(ids, labels, groups)
        return tuple(InnerSplit(tuple(ids[tr]), tuple(ids[va])) for tr, va in folds)
    # holdout: one stratified split; at least one validation case per class when there are enough cases
    n_classes = len(np.unique(labels))
    n_valid = max(math.ceil(valid_fraction * len(ids)), n_classes)
    _check_counts(labels, 2, f"inner holdout split of {where}")
    if groups is not None:
        n_splits = max(2, round(1 / valid_fraction))
        tr, va = next(_kfold(n_splits, seed, True).split(ids, labels, groups))
        return (InnerSplit(tuple(ids[tr]), tuple(ids[va])),)
    tr, va = train_test_split(np.arange(len(ids)), test_size=n_valid, stratify=labels, random_state=seed)
    return (InnerSplit(tuple(ids[np.sort(tr)]), tuple(ids[np.sort(va)])),)


def make_splits(
    case_ids: Sequence[str],
    labels: Sequence[int],
    *,
    groups: Sequence | None = None,
    outer_folds: int = 5,
    repeats: int = 1,
    inner: str = "holdout",
    inner_folds: int = 5,
    valid_fraction: float = 0.2,
    seed: int = 0,
    data_fingerprint: str = "",
) -> Splits:
    """Stratified (optionally grouped) outer folds, each with its inner tuning split(s).

    ``groups`` (site or patient per case) keeps every group on one side of every split
    (StratifiedGroupKFold). Repeat ``r`` reshuffles with its own derived seed.
    """
    if inner not in INNER_MODES:
        raise ProtocolError(f"unknown inner mode {inner!r}; choose one of {', '.join(INNER_MODES)}")
    if outer_folds < 2:
        raise ProtocolError(f"outer_folds must be at least 2, got {outer_folds}")
    if repeats < 1:
        raise ProtocolError(f"repeats must be at least 1, got {repeats}")
    if not 0 < valid_fraction < 1:
        raise ProtocolError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    ids = np.asarray([str(c) for c in case_ids], dtype=object)
    y = np.asarray(labels, dtype=int)
    if len(set(ids)) != len(ids):
        raise ProtocolError("case ids are not unique")
    order = np.argsort(ids, kind="stable")
    ids, y = ids[order], y[order]
    g = None if groups is None else np.asarray([str(v) for v in groups], dtype=object)[order]
    _check_counts(y, outer_folds, f"outer {outer_folds}-fold split")

    splits = Splits(seed=seed, outer_folds=outer_folds, repeats=repeats, inner=inner)
    for r in range(repeats):
        outer_seed = derive_seed(seed, data_fingerprint, "outer", r)
        for k, (tr, te) in enumerate(_kfold(outer_folds, outer_seed, g is not None).split(ids, y, g)):
            inner_seed = derive_seed(seed, data_fingerprint, "inner", r, k)
            inner_parts = _inner_splits(
                ids[tr],
                y[tr],
                None if g is None else g[tr],
                inner,
                inner_folds,
                valid_fraction,
                inner_seed,
                f"outer fold {k} (repeat {r})",
            )
            splits.outer.append(OuterSplit(r, k, tuple(ids[tr]), tuple(ids[te]), inner_parts))
    return splits


#: the repeat/fold numbers of the development split (the whole cohort, for the final model)
DEVELOPMENT = -1


def development_split(
    case_ids: Sequence[str],
    labels: Sequence[int],
    *,
    groups: Sequence | None = None,
    inner: str = "holdout",
    inner_folds: int = 5,
    valid_fraction: float = 0.2,
    seed: int = 0,
    data_fingerprint: str = "",
) -> OuterSplit:
    """The whole development cohort as one "outer training part" (nothing to test), with the inner tuning
    split(s) the protocol uses in every outer fold: what the final model is tuned and fitted on."""
    ids = np.asarray(sorted(str(c) for c in case_ids), dtype=object)
    order = np.argsort(np.asarray([str(c) for c in case_ids], dtype=object), kind="stable")
    y = np.asarray(labels, dtype=int)[order]
    g = None if groups is None else np.asarray([str(v) for v in groups], dtype=object)[order]
    parts = _inner_splits(
        ids,
        y,
        g,
        inner,
        inner_folds,
        valid_fraction,
        derive_seed(seed, data_fingerprint, "inner", "final"),
        "the development cohort",
    )
    return OuterSplit(DEVELOPMENT, DEVELOPMENT, tuple(ids), (), parts)
