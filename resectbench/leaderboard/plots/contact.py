"""Arterial vs venous tumor-vessel contact (paper Figure 2 style), misclassified cases highlighted.

Data: the run's ``cohort/ground_truth.csv`` (synthetic cohorts): true maximum contact angle per
vessel. Arterial contact = max over SMA, celiac trunk and common hepatic artery; venous contact =
max over SMV and portal vein. The dotted lines mark the NCCN 180 degree thresholds (arterial
> 180: locally advanced; venous > 180: at least borderline).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...data.labels import ARTERIES, VEINS
from ..runs import PROB_COLUMNS, RunResults
from .style import CLASS_COLORS, RC, class_title, plt


def contact_table(runs: RunResults, model: str | None) -> pd.DataFrame | None:
    """case_id, arterial, venous, label and (when ``model`` is given) its pooled prediction per case."""
    gt = runs.ground_truth
    if gt is None:
        return None
    art = [f"angle_{v}" for v in ARTERIES if f"angle_{v}" in gt]
    ven = [f"angle_{v}" for v in VEINS if f"angle_{v}" in gt]
    if not art or not ven:
        return None
    table = pd.DataFrame({"arterial": gt[art].max(axis=1), "venous": gt[ven].max(axis=1)}, index=gt.index)
    labels = runs.cases.set_index("case_id")["label"] if "case_id" in runs.cases else gt.get("label")
    table["label"] = labels.reindex(table.index) if labels is not None else np.nan
    if model is not None and model in runs.models:
        oof = runs.models[model].predictions
        mean_p = oof.groupby("case_id")[PROB_COLUMNS].mean()      # several repeats: mean probability
        table["pred"] = pd.Series(mean_p.to_numpy().argmax(axis=1), index=mean_p.index).reindex(table.index)
    return table.dropna(subset=["label"])


def contact_scatter(runs: RunResults, model: str | None):
    """The scatter, or None when the run has no ground-truth contact angles."""
    table = contact_table(runs, model)
    if table is None or table.empty:
        return None
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.6, 5.6))
        for c in range(3):
            part = table[table["label"] == c]
            ax.scatter(part["arterial"], part["venous"], s=22, color=CLASS_COLORS[c], alpha=0.85, edgecolor="white",
                       linewidth=0.4, label=f"{class_title(c)} (n={len(part)})", zorder=3)
        if "pred" in table:
            wrong = table[table["pred"].notna() & (table["pred"] != table["label"])]
            ax.scatter(wrong["arterial"], wrong["venous"], s=90, facecolor="none", edgecolor="#111827",
                       linewidth=1.3, label=f"misclassified by {model} (n={len(wrong)})", zorder=4)
        for v in (180,):
            ax.axvline(v, color="#374151", ls=":", lw=1)
            ax.axhline(v, color="#374151", ls=":", lw=1)
        ax.text(182, 352, "arterial > 180°: locally advanced", fontsize=7, color="#374151", va="top")
        ax.text(2, 184, "venous > 180°", fontsize=7, color="#374151", va="bottom")
        ax.set_xlim(-5, 365)
        ax.set_ylim(-5, 365)
        ax.set_xlabel("max arterial contact (SMA, celiac trunk, CHA) [°]")
        ax.set_ylabel("max venous contact (SMV, portal vein) [°]")
        ax.set_title("Tumor-vessel contact by NCCN class (true angles)", loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
    return fig
