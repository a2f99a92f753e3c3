"""Machine-readable forms: a flat CSV (one row per model, every number) and JSON (everything)."""

from __future__ import annotations

import io
import json

import pandas as pd

from ..board import Leaderboard


def board_frame(board: Leaderboard) -> pd.DataFrame:
    """One row per leaderboard row: fold mean/SD, pooled estimate and interval, costs, tests, flags."""
    records = []
    for r in board.rows:
        rec = {
            "rank": r.rank,
            "model": r.label,
            "recipe": r.recipe,
            "kind": r.kind,
            "mask_source": r.mask_source,
            "n_folds": r.n_folds,
            "n_expected_folds": r.n_expected,
        }
        for m in board.metrics:
            rec[f"{m}_mean"] = r.mean.get(m)
            rec[f"{m}_sd"] = r.sd.get(m)
        for m, iv in r.pooled.items():
            rec[f"{m}_pooled"], rec[f"{m}_pooled_low"], rec[f"{m}_pooled_high"] = iv.estimate, iv.low, iv.high
        rec.update(
            n_parameters=r.n_parameters,
            train_seconds=r.train_seconds,
            infer_seconds_per_case=r.infer_seconds_per_case,
            collapsed=r.collapsed,
        )
        c = board.comparison(r.label)
        rec["reference"] = board.reference
        if c is not None:
            rec.update(
                diff_mean=c.mean_difference,
                t=c.t,
                p_ttest=c.p_ttest,
                p_ttest_holm=c.p_ttest_holm,
                auc_test=c.auc_test,
                auc_diff=c.auc_difference,
                p_auc=c.p_auc,
                p_auc_holm=c.p_auc_holm,
            )
            if c.bayes is not None:
                rec.update(p_worse=c.bayes.p_left, p_rope=c.bayes.p_rope, p_better=c.bayes.p_right)
        rec["flags"] = "; ".join(r.flags)
        records.append(rec)
    return pd.DataFrame(records)


def render_csv(board: Leaderboard) -> str:
    buf = io.StringIO()
    board_frame(board).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def render_json(board: Leaderboard) -> str:
    return json.dumps(board.to_dict(), indent=2) + "\n"
