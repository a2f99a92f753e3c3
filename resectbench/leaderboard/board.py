"""The leaderboard: one row per model with fold statistics, pooled intervals and comparisons.

``build_leaderboard(runs)`` is a pure function of the run directories' files:

- per model, mean and SD (ddof=1) over the finished outer folds of every metric in metrics.json;
- pooled out-of-fold point estimates with percentile intervals from a patient-level stratified
  bootstrap (seeded, :mod:`.stats.bootstrap`);
- against a reference model (default: the best-ranked model that is neither chance nor an
  oracle-mask upper bound): the Nadeau-Bengio corrected resampled t-test on the ranking metric's
  fold scores, a paired test of the pooled one-vs-rest macro AUC (DeLong by default, or a paired
  bootstrap), each Holm-adjusted over the comparisons of its family, and optionally the Bayesian
  correlated t-test with a ROPE;
- flags: chance rows, oracle-mask rows, the Bayes-optimal ceiling of a synthetic cohort, models
  whose predictions collapse to one class, and models with unfinished folds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..vocabulary import CLASS_NAMES, PROB_COLUMNS, macro_f1
from . import metrics as M
from .errors import LeaderboardError
from .runs import ModelResults, RunResults
from .stats import (
    BayesianComparison,
    Interval,
    bootstrap_intervals,
    corrected_resampled_ttest,
    correlated_bayesian_ttest,
    delong_ovr_macro_test,
    holm,
    paired_bootstrap_test,
)

AUC_TESTS = ("delong", "bootstrap")


@dataclass
class Row:
    label: str
    recipe: str
    kind: str  # "model" | "chance" | "oracle" | "ceiling"
    mask_source: str = "none"
    tags: list[str] = field(default_factory=list)
    n_folds: int = 0
    n_expected: int = 0
    mean: dict[str, float] = field(default_factory=dict)  # over outer folds
    sd: dict[str, float] = field(default_factory=dict)
    pooled: dict[str, Interval] = field(default_factory=dict)
    n_parameters: float | None = None
    train_seconds: float | None = None  # mean per outer fold
    infer_seconds_per_case: float | None = None
    flags: list[str] = field(default_factory=list)
    rank: int | None = None
    collapsed: bool = False
    #: external cohort -> {"n_cases", "pooled": {metric: Interval} (point estimate + bootstrap CI),
    #: "ece", "brier"} of the final model on that cohort
    external: dict[str, dict] = field(default_factory=dict)

    def value(self, metric: str) -> float:
        return self.mean.get(metric, math.nan)


@dataclass
class Comparison:
    model: str
    reference: str
    metric: str  # the fold metric of the t-test
    n_folds: int
    mean_difference: float  # model - reference, over paired folds
    t: float
    p_ttest: float
    p_ttest_holm: float = math.nan
    auc_test: str = "delong"
    auc_difference: float = math.nan  # pooled OOF macro AUC, model - reference
    p_auc: float = math.nan
    p_auc_holm: float = math.nan
    bayes: BayesianComparison | None = None


@dataclass
class Leaderboard:
    name: str
    runs: list[str]
    rank_by: str
    reference: str | None
    rows: list[Row]
    comparisons: list[Comparison]
    notes: list[str]
    settings: dict[str, Any]
    data_fingerprint: str | None
    split_fingerprint: str | None
    metrics: list[str]  # metric columns present in at least one row
    #: per external cohort, each model's final model against the reference's (DeLong on the macro AUC,
    #: Holm across the comparisons of that cohort)
    external_comparisons: list[dict] = field(default_factory=list)
    #: per external cohort, every pair of models' final models on their common cases ({"cohort", "model_a",
    #: "model_b" (a ranked above b), "n_cases", "auc_difference" and "macro_f1_difference" (a - b), "p_auc"
    #: (DeLong), "p_auc_holm" (Holm across the pairs of that cohort)})
    external_pairs: list[dict] = field(default_factory=list)

    @property
    def external_cohorts(self) -> list[str]:
        return sorted({name for r in self.rows for name in r.external})

    def row(self, label: str) -> Row:
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(label)

    def comparison(self, label: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.model == label), None)

    def to_dict(self) -> dict:
        return _clean(asdict(self))


def _clean(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _clean(value.item())
    return value


def _kind(m: ModelResults) -> str:
    if m.is_chance:
        return "chance"
    if m.is_oracle:
        return "oracle"
    return "model"


def _with_vessel_dice(folds: pd.DataFrame) -> pd.DataFrame:
    """Add ``dice_vessels``: per fold, the mean Dice of the NCCN vessels the model segments."""
    cols = [f"dice_{v}" for v in M.VESSELS if f"dice_{v}" in folds]
    if not cols:
        return folds
    return folds.assign(dice_vessels=folds[cols].apply(pd.to_numeric, errors="coerce").mean(axis=1))


def _fold_stats(folds: pd.DataFrame) -> tuple[dict, dict]:
    mean, sd = {}, {}
    folds = _with_vessel_dice(folds)
    for col in folds.columns:
        if col in ("repeat", "fold"):
            continue
        values = pd.to_numeric(folds[col], errors="coerce").dropna()
        if values.empty:
            continue
        mean[col] = float(values.mean())
        sd[col] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return mean, sd


def _collapse_flags(m: ModelResults) -> tuple[bool, list[str]]:
    preds = m.predictions
    if preds.empty:
        return False, []
    pred = preds["pred"].astype(int)
    if pred.nunique() == 1:
        return True, [f"collapsed: always predicts {CLASS_NAMES[int(pred.iloc[0])]}"]
    per_fold = preds.groupby(["repeat", "fold"])["pred"].nunique()
    n = int((per_fold == 1).sum())
    return False, ([f"one class only in {n}/{len(per_fold)} folds"] if n else [])


def _model_row(m: ModelResults, run: RunResults, n_boot: int, seed: int, level: float) -> Row:
    mean, sd = _fold_stats(m.folds) if not m.folds.empty else ({}, {})
    row = Row(
        label=m.label,
        recipe=m.recipe,
        kind=_kind(m),
        mask_source=m.mask_source,
        tags=list(m.info.get("tags", [])),
        n_folds=m.n_folds,
        n_expected=run.n_expected_folds,
        mean=mean,
        sd=sd,
    )
    row.n_parameters = m.info.get("n_parameters", mean.get("n_parameters"))
    row.train_seconds = mean.get("train_seconds")
    row.infer_seconds_per_case = mean.get("infer_seconds_per_case")
    oof = m.oof()
    if len(oof):
        y = oof["label"].to_numpy(dtype=int)
        row.pooled = bootstrap_intervals(
            y,
            oof[PROB_COLUMNS].to_numpy(dtype=float),
            units=run.patient_of(oof["case_id"]),
            n_boot=n_boot,
            seed=seed,
            level=level,
        )
    for name, ext in m.external.items():
        p = ext["predictions"]
        y = p["label"].to_numpy(dtype=int)
        row.external[name] = {
            "n_cases": int(len(p)),
            "pooled": bootstrap_intervals(
                y,
                p[PROB_COLUMNS].to_numpy(dtype=float),
                units=p["case_id"].to_numpy(),
                n_boot=n_boot,
                seed=seed,
                level=level,
            ),
            "ece": ext["metrics"].get("ece"),
            "brier": ext["metrics"].get("brier"),
        }
    row.collapsed, flags = _collapse_flags(m)
    if row.kind == "chance":
        row.flags.append("chance level")
    if row.kind == "oracle":
        row.flags.append("oracle masks: upper bound, not a fair entry")
    if m.mask_source == "external":
        row.flags.append(f"masks from another segmenter ({m.info.get('masks', 'a mask folder')})")
    if row.n_expected and row.n_folds < row.n_expected:
        row.flags.append(f"incomplete: {row.n_folds}/{row.n_expected} folds")
    row.flags.extend(flags)
    return row


def _paired_folds(a: ModelResults, b: ModelResults, metric: str) -> tuple[np.ndarray, np.ndarray]:
    if metric not in a.folds or metric not in b.folds:
        return np.array([]), np.array([])
    merged = a.folds[["repeat", "fold", metric]].merge(
        b.folds[["repeat", "fold", metric]], on=["repeat", "fold"], suffixes=("_a", "_b")
    )
    return merged[f"{metric}_a"].to_numpy(float), merged[f"{metric}_b"].to_numpy(float)


def _auc_test(a: ModelResults, b: ModelResults, run: RunResults, method: str, n_boot: int, seed: int):
    cols = ["case_id", "repeat", "label", *PROB_COLUMNS]
    pa, pb = a.predictions[cols], b.predictions[cols]
    if method == "delong":
        # one prediction per patient case: probabilities averaged over repeats
        ma = pa.groupby("case_id")[["label", *PROB_COLUMNS]].mean()
        mb = pb.groupby("case_id")[["label", *PROB_COLUMNS]].mean()
        common = ma.index.intersection(mb.index)
        if len(common) < 4:
            return math.nan, math.nan
        res = delong_ovr_macro_test(
            ma.loc[common, PROB_COLUMNS].to_numpy(),
            mb.loc[common, PROB_COLUMNS].to_numpy(),
            ma.loc[common, "label"].to_numpy(dtype=int),
        )
        return res.difference, res.p_value
    merged = pa.merge(pb, on=["case_id", "repeat", "label"], suffixes=("_a", "_b"))
    if len(merged) < 4:
        return math.nan, math.nan
    res = paired_bootstrap_test(
        merged["label"].to_numpy(int),
        merged[[f"{c}_a" for c in PROB_COLUMNS]].to_numpy(),
        merged[[f"{c}_b" for c in PROB_COLUMNS]].to_numpy(),
        units=run.patient_of(merged["case_id"]),
        n_boot=n_boot,
        seed=seed,
    )
    return res.difference, res.p_value


def _fold_notes(splits: dict) -> list[str]:
    """Outer folds a user brought (nnU-Net splits_final.json, a fold column) and what their checks found."""
    imported = splits.get("imported_folds")
    if not imported:
        return []
    return [
        f"outer folds imported from {imported['path']} ({imported['format']}, sha256 {imported['sha256'][:12]}), "
        "not made by resectbench",
        *(f"imported folds: {w}" for w in splits.get("warnings", [])),
    ]


def _cohort_notes(cohort: dict) -> list[str]:
    """What the run left out of the cohort (--skip-invalid, allowed missing variables): every row is scored
    without it, so a reader of the board must see it."""
    notes = []
    problems: dict[str, list[str]] = {}
    for e in cohort.get("excluded") or []:
        problems.setdefault(str(e.get("case_id")), []).append(str(e.get("problem")))
    if problems:
        listed = "; ".join(f"{cid} ({' / '.join(p)})" for cid, p in problems.items())
        notes.append(f"{len(problems)} invalid case(s) excluded by --skip-invalid (in no fold of any model): {listed}")
    ignored = cohort.get("ignored_columns") or {}
    if ignored:
        notes.append(
            f"table column(s) not used as clinical variables (not in the data dictionary): {', '.join(ignored)}"
        )
    missing = cohort.get("missing_variables") or {}
    if missing:
        notes.append(
            "clinical variable(s) without a column: " + "; ".join(f"{v} ({why})" for v, why in missing.items())
        )
    return notes


def _external_notes(runs: RunResults) -> list[str]:
    """Development variables an external cohort does not record, filled in by the final models: its scores rest
    on them, so a reader of the external board must see it."""
    imputed: dict[str, set[str]] = {}
    for m in runs.models.values():
        for name, ext in m.external.items():
            imputed.setdefault(name, set()).update(ext["metrics"].get("imputed_variables") or [])
    return [
        f"imputed for {name}: {', '.join(sorted(variables))} (not recorded there; filled in by each final "
        "model's imputer, fitted on the development cohort)"
        for name, variables in sorted(imputed.items())
        if variables
    ]


def build_leaderboard(
    runs: RunResults,
    *,
    rank_by: str = "auc_ovr_macro",
    reference: str | None = None,
    auc_test: str = "delong",
    bayesian: bool = False,
    rope: float = 0.01,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Leaderboard:
    """Aggregate a run (or merged runs) into a ranked, annotated leaderboard. See the module docstring."""
    if rank_by not in M.rankable() and not rank_by.startswith("dice_"):
        raise LeaderboardError(
            f"cannot rank by {rank_by!r}; choose one of {', '.join(M.rankable())} or a dice_* metric"
        )
    if auc_test not in AUC_TESTS:
        raise LeaderboardError(f"auc_test must be one of {', '.join(AUC_TESTS)}, got {auc_test!r}")
    if not runs.models:
        raise LeaderboardError(
            f"no finished model results in {', '.join(map(str, runs.roots))} "
            "(models/<name>/fold_*/DONE); is the run still starting?"
        )
    rows = [_model_row(m, runs, n_boot, seed, level) for m in runs.models.values()]
    sign = 1 if M.higher_is_better(rank_by) else -1
    ranked = sorted(rows, key=lambda r: (not math.isfinite(r.value(rank_by)), -sign * np.nan_to_num(r.value(rank_by))))
    for i, r in enumerate(ranked, start=1):
        r.rank = i if math.isfinite(r.value(rank_by)) else None

    notes = _cohort_notes(runs.manifest.get("cohort") or {}) + _fold_notes(runs.splits) + _external_notes(runs)
    if not any(r.kind == "chance" for r in rows):
        notes.append(
            "no chance row: this run has no `dummy` model; add `--model dummy` to the run (same splits) "
            "to show chance level"
        )
    ceiling = runs.bayes_optimal_accuracy
    if ceiling is not None:
        ranked.append(
            Row(
                label="ceiling (Bayes-optimal)",
                recipe="-",
                kind="ceiling",
                mean={"accuracy": ceiling},
                flags=["highest accuracy reachable on these synthetic labels (given their rater noise)"],
            )
        )
    for r in ranked:
        if r.collapsed and r.kind != "chance":
            notes.append(
                f"{r.label} predicts a single class for every case: its AUC may look fine but "
                "it does not separate the classes"
            )

    eligible = [r for r in ranked if r.kind == "model" and r.rank is not None]
    if reference is None:
        reference = eligible[0].label if eligible else None
    elif reference not in runs.models:
        raise LeaderboardError(f"reference model {reference!r} is not in the run(s); models: {', '.join(runs.models)}")
    comparisons = []
    if reference is not None:
        ref = runs.models[reference]
        for r in ranked:
            if r.kind == "ceiling" or r.label == reference:
                continue
            other = runs.models[r.label]
            a, b = _paired_folds(other, ref, rank_by)
            tt = corrected_resampled_ttest(a, b, runs.test_train_ratio) if len(a) else None
            diff, p_auc = _auc_test(other, ref, runs, auc_test, n_boot, seed)
            comparisons.append(
                Comparison(
                    model=r.label,
                    reference=reference,
                    metric=rank_by,
                    n_folds=len(a),
                    mean_difference=tt.mean_difference if tt else math.nan,
                    t=tt.t if tt else math.nan,
                    p_ttest=tt.p_value if tt else math.nan,
                    auc_test=auc_test,
                    auc_difference=diff,
                    p_auc=p_auc,
                    # oriented so that "better" means better also for lower-is-better metrics (ECE, Brier)
                    bayes=correlated_bayesian_ttest(sign * a, sign * b, runs.test_train_ratio, rope)
                    if bayesian and len(a)
                    else None,
                )
            )
        for attr in ("p_ttest", "p_auc"):
            adjusted = holm([getattr(c, attr) for c in comparisons])
            for c, p in zip(comparisons, adjusted):
                setattr(c, f"{attr}_holm", float(p))

    external_comparisons = _external_comparisons(runs, reference)
    external_pairs = _external_pairs(runs, [r.label for r in ranked if r.label in runs.models])
    present = [m for m in (*M.HEADLINE, *M.SECONDARY, *M.CALIBRATION) if any(m in r.mean for r in rows)]
    present += [m for m in M.DICE_SUMMARY if any(m in r.mean for r in rows)]
    present += sorted(
        {k for r in rows for k in r.mean if k.startswith("dice_") and k not in M.DICE_SUMMARY}, key=M.structure_order
    )
    settings = {
        "n_boot": n_boot,
        "seed": seed,
        "level": level,
        "auc_test": auc_test,
        "bayesian": bayesian,
        "rope": rope,
        "test_train_ratio": runs.test_train_ratio,
    }
    return Leaderboard(
        name=runs.name,
        runs=[str(p) for p in runs.roots],
        rank_by=rank_by,
        reference=reference,
        rows=ranked,
        comparisons=comparisons,
        notes=notes,
        settings=settings,
        data_fingerprint=runs.data_fingerprint,
        split_fingerprint=runs.split_fingerprint,
        metrics=present,
        external_comparisons=external_comparisons,
        external_pairs=external_pairs,
    )


def _external_comparisons(runs: RunResults, reference: str | None) -> list[dict]:
    """On each external cohort: every other model's final model against the reference's, paired by case
    (DeLong test of the one-vs-rest macro AUC), Holm-adjusted across the comparisons of that cohort."""
    if reference is None or reference not in runs.models:
        return []
    out = []
    ref = runs.models[reference]
    for name, theirs in sorted(ref.external.items()):
        rp = theirs["predictions"].set_index("case_id")
        found = []
        for label, m in runs.models.items():
            if label == reference or name not in m.external:
                continue
            mp = m.external[name]["predictions"].set_index("case_id")
            common = rp.index.intersection(mp.index)
            if len(common) < 4:
                continue
            res = delong_ovr_macro_test(
                mp.loc[common, PROB_COLUMNS].to_numpy(float),
                rp.loc[common, PROB_COLUMNS].to_numpy(float),
                rp.loc[common, "label"].to_numpy(dtype=int),
            )
            found.append(
                {
                    "cohort": name,
                    "model": label,
                    "reference": reference,
                    "n_cases": int(len(common)),
                    "auc_difference": float(res.difference),
                    "p_auc": float(res.p_value),
                }
            )
        for c, p in zip(found, holm([c["p_auc"] for c in found])):
            c["p_auc_holm"] = float(p)
        out += found
    return out


def _external_pairs(runs: RunResults, order: list[str]) -> list[dict]:
    """On each external cohort: every pair of models (in ``order``, the board's ranking), paired by case: the
    DeLong test of the one-vs-rest macro AUC and the macro-F1 difference, Holm-adjusted across the pairs of
    that cohort. Cheap (no resampling): DeLong is closed-form."""
    out = []
    cohorts = sorted({name for label in order for name in runs.models[label].external})
    for name in cohorts:
        scored = [label for label in order if name in runs.models[label].external]
        preds = {label: runs.models[label].external[name]["predictions"].set_index("case_id") for label in scored}
        found = []
        for i, a in enumerate(scored):
            for b in scored[i + 1 :]:
                common = preds[a].index.intersection(preds[b].index)
                if len(common) < 4:
                    continue
                pa = preds[a].loc[common, PROB_COLUMNS].to_numpy(float)
                pb = preds[b].loc[common, PROB_COLUMNS].to_numpy(float)
                y = preds[a].loc[common, "label"].to_numpy(dtype=int)
                res = delong_ovr_macro_test(pa, pb, y)
                found.append(
                    {
                        "cohort": name,
                        "model_a": a,
                        "model_b": b,
                        "n_cases": int(len(common)),
                        "auc_difference": float(res.difference),
                        "macro_f1_difference": float(macro_f1(y, pa.argmax(axis=1)) - macro_f1(y, pb.argmax(axis=1))),
                        "p_auc": float(res.p_value),
                    }
                )
        for c, p in zip(found, holm([c["p_auc"] for c in found])):
            c["p_auc_holm"] = float(p)
        out += found
    return out
