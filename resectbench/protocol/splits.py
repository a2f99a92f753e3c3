"""Outer and inner cross-validation splits of a cohort, identical for every model of a benchmark.

Splits depend only on the case ids, labels, groups, the data fingerprint and the seed; case ids are
sorted first so the order in which a reader lists cases changes nothing. The outer test folds can
instead be imported (:func:`read_folds`: nnU-Net's ``splits_final.json`` or a CSV of fold numbers),
so a model is evaluated on the folds its segmenter was trained on. They are saved in
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
from sklearn.model_selection import PredefinedSplit, StratifiedGroupKFold, StratifiedKFold, train_test_split

from ..vocabulary import N_CLASSES, SHORT_CLASS_NAMES, unit_key
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
    #: where imported outer folds came from (:attr:`ImportedFolds.source`); None: made here
    imported: dict | None = None
    #: what the checks of imported folds found without refusing them
    warnings: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        payload = json.dumps(self._body(), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    def _body(self) -> dict:
        body = {
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
        if self.imported is not None:  # splits made here keep the body (and fingerprint) they always had
            # the folds file's content (digest) is fingerprinted, its place is not: moving it changes nothing
            body["imported_folds"] = {k: v for k, v in self.imported.items() if k != "path"}
        return body

    def to_dict(self) -> dict:
        out = {"fingerprint": self.fingerprint, **self._body()}
        if self.imported is not None:
            out.update(imported_folds=self.imported, warnings=self.warnings)
        return out

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
            imported=data.get("imported_folds"),
            warnings=data.get("warnings", []),
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
    outer_folds: int | None = None,
    repeats: int = 1,
    inner: str = "holdout",
    inner_folds: int = 5,
    valid_fraction: float = 0.2,
    seed: int = 0,
    data_fingerprint: str = "",
    imported: ImportedFolds | None = None,
) -> Splits:
    """Stratified (optionally grouped) outer folds (5 unless ``outer_folds``), each with its inner tuning split(s).

    ``groups`` (site or patient per case) keeps every group on one side of every split
    (StratifiedGroupKFold). Repeat ``r`` reshuffles with its own derived seed. ``imported``: the outer test
    folds of a file (:func:`read_folds`), refused unless they partition the cohort, then used as given
    (one repeat; ``outer_folds`` None or their number); the inner splits are made here as always.
    What is odd about imported folds without being wrong is in ``Splits.warnings``.
    """
    if inner not in INNER_MODES:
        raise ProtocolError(f"unknown inner mode {inner!r}; choose one of {', '.join(INNER_MODES)}")
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
    if imported is None:
        outer_folds = 5 if outer_folds is None else outer_folds
        if outer_folds < 2:
            raise ProtocolError(f"outer_folds must be at least 2, got {outer_folds}")
        _check_counts(y, outer_folds, f"outer {outer_folds}-fold split")
    else:
        fold_of = _fold_positions(ids, imported)
        where, n = imported.source["path"], len(imported.folds)
        if repeats != 1:  # also refused by ProtocolConfig.validate, before the cohort is read
            raise ProtocolError(f"repeats must be 1 with imported folds ({where} gives one partition), got {repeats}")
        if outer_folds not in (None, n):
            raise ProtocolError(
                f"outer_folds is {outer_folds} but {where} holds {n} folds; leave outer_folds out (it is the number "
                "of imported folds)"
            )
        outer_folds = n

    splits = Splits(seed=seed, outer_folds=outer_folds, repeats=repeats, inner=inner)
    if imported is not None:
        splits.imported, splits.warnings = imported.source, _fold_warnings(y, g, fold_of, list(imported.folds))
    for r in range(repeats):
        if imported is None:
            outer_seed = derive_seed(seed, data_fingerprint, "outer", r)
            outer = _kfold(outer_folds, outer_seed, g is not None).split(ids, y, g)
        else:
            outer = PredefinedSplit(fold_of).split()  # test fold k: the cases of the file's k-th fold
        for k, (tr, te) in enumerate(outer):
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


# -- imported outer folds ------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportedFolds:
    """Outer test folds read from a file: fold name -> its test case ids, in the file's fold order."""

    folds: dict[str, list[str]]
    #: where they came from (kept in splits.json): path, sha256 of the file, format ("nnunet" or "csv"),
    #: column (csv) and fold_names (the file's name of outer fold k is fold_names[k])
    source: dict


#: a test fold whose share of a class is this far (absolute) from the cohort's, and more than one case
#: off its expected count, is "not stratified". A stratified split keeps every class within one case of
#: its expected count; beyond that and 10 points, the fold's scores are measured on a visibly different
#: class mix (its accuracy and macro-F1 shift with the mix), so per-fold scores spread more.
STRATIFICATION_TOLERANCE = 0.10


def read_folds(path: str | Path, column: str = "") -> ImportedFolds:
    """The outer test folds of a file: nnU-Net's ``splits_final.json`` (a ``.json`` file; fold k's "val"
    list is test fold k and its "train" list must be every case of the other folds) or a CSV keyed by
    ``case_id`` whose ``column`` (default ``fold``) holds each case's fold (folds in ascending order, numbers
    numerically; a blank cell: in no fold)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProtocolError(f"folds file {path} does not exist (protocol.folds / --folds)") from None
    except OSError as exc:
        raise ProtocolError(f"folds file {path} cannot be read: {exc.strerror or exc}") from None
    source = {"path": str(path.resolve()), "sha256": hashlib.sha256(raw).hexdigest()}
    if path.suffix.lower() == ".json":
        if column:
            raise ProtocolError(
                f"protocol.folds_column {column!r} names a CSV column, but {path} is an nnU-Net splits_final.json"
            )
        data = _nnunet_splits(raw, path)
        folds, source["format"] = {str(k): list(f["val"]) for k, f in enumerate(data)}, "nnunet"
        _check_disjoint(folds, path)  # first: a case in two val lists also upsets the train lists
        _check_nnunet_train(data, path)
    else:
        column = column or "fold"
        folds, source["format"], source["column"] = _csv_folds(path, column), "csv", column
        _check_disjoint(folds, path)
    return ImportedFolds(folds, {**source, "fold_names": list(folds)})


def _nnunet_splits(raw: bytes, path: Path) -> list[dict]:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"folds file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, list) or not all(
        isinstance(f, dict)
        and all(isinstance(f.get(k), list) and all(isinstance(c, str) for c in f[k]) for k in ("train", "val"))
        for f in data
    ):
        raise ProtocolError(
            f'folds file {path} is not an nnU-Net splits_final.json (a list of {{"train": [case ids], '
            '"val": [case ids]}, one per fold)'
        )
    return data


def _check_disjoint(folds: dict[str, list[str]], path: Path) -> None:
    seen: dict[str, list[str]] = {}
    for name, cases in folds.items():
        for case in cases:
            seen.setdefault(case, []).append(name)
    twice = [f"{c} (folds {', '.join(names)})" for c, names in sorted(seen.items()) if len(names) > 1]
    if twice:
        raise ProtocolError(f"{len(twice)} case(s) in more than one test fold of {path}: {_listing(twice)}")


def _check_nnunet_train(data: list[dict], path: Path) -> None:
    """nnU-Net trains fold k on every case of the other folds; any other train list is not a K-fold partition
    (a case in both lists of a fold is a leak)."""
    for k, fold in enumerate(data):
        train, val = set(fold["train"]), set(fold["val"])
        both = sorted(train & val)
        if both:
            raise ProtocolError(f"fold {k} of {path}: case(s) {_listing(both)} are in both its train and val lists")
        others = set().union(*(f["val"] for j, f in enumerate(data) if j != k))
        if train != others:
            lacks, extra = sorted(others - train), sorted(train - others)
            raise ProtocolError(
                f"fold {k} of {path}: its train list must be every case of the other folds' val lists, but "
                + " and ".join(
                    [f"lacks {_listing(lacks)}"] * bool(lacks)
                    + [f"holds {_listing(extra)}, in no other val list"] * bool(extra)
                )
            )


def _csv_folds(path: Path, column: str) -> dict[str, list[str]]:
    from ..data.readers.assemble import read_case_table

    table = read_case_table(path)  # the raw text of every cell (the cohort reader ignores a fold column)
    if column not in table.columns:
        raise ProtocolError(
            f"folds file {path} has no fold column {column!r} (columns: {', '.join(table.columns)}); "
            "name it with protocol.folds_column"
        )
    cells = table[column].str.strip()
    names = sorted(set(cells) - {""}, key=lambda v: (0, int(v), v) if v.lstrip("-").isdigit() else (1, 0, v))
    return {name: table.loc[cells == name, "case_id"].tolist() for name in names}


def _fold_positions(ids: np.ndarray, imported: ImportedFolds) -> np.ndarray:
    """Each case's outer fold (the position of its fold in the file), once the (disjoint) folds are known to
    put every case of the cohort in a test fold."""
    where = imported.source["path"]
    seen = {case: k for k, cases in enumerate(imported.folds.values()) for case in cases}
    unknown = sorted(set(seen) - set(ids))
    if unknown:
        raise ProtocolError(f"{where} names {len(unknown)} case(s) that are not in the cohort: {_listing(unknown)}")
    missing = [c for c in ids if c not in seen]
    if missing:
        raise ProtocolError(
            f"{len(missing)} case(s) of the cohort in no test fold of {where}: {_listing(missing)}; "
            "every case must be tested exactly once"
        )
    empty = [name for name, cases in imported.folds.items() if not cases]
    if empty:
        raise ProtocolError(f"fold(s) {', '.join(empty)} of {where} hold no case of the cohort")
    if len(imported.folds) < 2:
        raise ProtocolError(f"{where} holds {len(imported.folds)} fold; cross-validation needs at least 2")
    return np.asarray([seen[c] for c in ids])


def _fold_warnings(y: np.ndarray, groups: np.ndarray | None, fold_of: np.ndarray, names: list[str]) -> list[str]:
    """Imported folds that are not stratified, or that split a group: allowed (the file is what the
    segmenter was trained on), but worth knowing when reading the scores."""
    share = np.bincount(y, minlength=N_CLASSES) / len(y)
    off = []
    for k, name in enumerate(names):
        counts = np.bincount(y[fold_of == k], minlength=N_CLASSES)
        mine = counts / counts.sum()
        if np.any((np.abs(counts - share * counts.sum()) > 1) & (np.abs(mine - share) > STRATIFICATION_TOLERANCE)):
            off.append(f"fold {name} {_shares(mine)}")
    warnings = []
    if off:
        warnings.append(
            f"the imported folds are not stratified: {'; '.join(off)} against {_shares(share)} in the cohort "
            f"(a class more than {100 * STRATIFICATION_TOLERANCE:.0f} percentage points and more than one case off "
            "its share); per-fold scores spread more than with stratified folds"
        )
    if groups is not None:
        folds_of = {}
        for group, k in zip(groups, fold_of):
            folds_of.setdefault(group, set()).add(k)
        split = [
            f"{gr} (folds {', '.join(names[k] for k in sorted(ks))})"
            for gr, ks in sorted(folds_of.items())
            if len(ks) > 1
        ]
        if split:
            warnings.append(
                f"the imported folds split {len(split)} group(s) of protocol.group_by over test folds: "
                f"{_listing(split)}; a case of such a group is tested by a model trained on other cases of its group"
            )
    return warnings


def _shares(share: np.ndarray) -> str:
    return f"{'/'.join(SHORT_CLASS_NAMES)} {'/'.join(f'{100 * v:.0f}' for v in share)} %"


def _listing(items: Sequence[str], most: int = 10) -> str:
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


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
