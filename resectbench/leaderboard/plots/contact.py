"""Arterial vs venous tumor-vessel contact (paper Figure 2 style), misclassified cases highlighted.

Data: the run's ``cohort/ground_truth.csv`` (synthetic cohorts): the true maximum contact angle
per vessel, summarised and drawn by the geometry package's
:func:`resectbench.geometry.plots.contact_summary` / :func:`~resectbench.geometry.plots.contact_scatter`
(arterial = max over SMA, celiac trunk, common hepatic artery; venous = max over SMV and portal
vein; dashed 180 degree NCCN lines). Many cases share exact angles (0: no contact, 360:
encasement), so points are jittered by up to ``JITTER`` degrees (seeded) and the number of cases
without any contact is written in the plot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...geometry.plots import contact_scatter as draw_contact_scatter, contact_summary
from ...vocabulary import ARTERIES as ARTERIAL, PROB_COLUMNS, VEINS as VENOUS
from ..runs import RunResults
from .style import RC, plt

JITTER = 4.0


def contact_table(runs: RunResults, model: str | None) -> pd.DataFrame | None:
    """Index case_id; arterial_deg, venous_deg, label and (when ``model`` is given) its pooled prediction."""
    gt = runs.ground_truth
    if gt is None:
        return None
    vessels = [v for v in (*ARTERIAL, *VENOUS) if f"angle_{v}" in gt]
    if not any(v in vessels for v in ARTERIAL) or not any(v in vessels for v in VENOUS):
        return None
    angles = {str(case): {v: float(row[f"angle_{v}"]) for v in vessels} for case, row in gt.iterrows()}
    labels = runs.cases.set_index("case_id")["label"] if "label" in runs.cases else gt.get("label")
    table = contact_summary(angles, labels)
    if model is not None and model in runs.models:
        oof = runs.models[model].predictions
        mean_p = oof.groupby("case_id")[PROB_COLUMNS].mean()  # several repeats: mean probability
        table["pred"] = pd.Series(mean_p.to_numpy().argmax(axis=1), index=mean_p.index).reindex(table.index)
    return table.dropna(subset=["label"])


def contact_scatter(runs: RunResults, model: str | None):
    """The scatter, or None when the run has no ground-truth contact angles."""
    table = contact_table(runs, model)
    if table is None or table.empty:
        return None
    wrong = []
    if "pred" in table:
        wrong = list(table.index[table["pred"].notna() & (table["pred"] != table["label"])])
    untouched = int(((table["arterial_deg"] == 0) & (table["venous_deg"] == 0)).sum())
    rng = np.random.default_rng(0)
    shown = table.assign(
        arterial_deg=table["arterial_deg"] + rng.uniform(-JITTER, JITTER, len(table)),
        venous_deg=table["venous_deg"] + rng.uniform(-JITTER, JITTER, len(table)),
    )
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(7.2, 5.4))
        draw_contact_scatter(
            shown, ax=ax, misclassified=wrong, title="Tumor-vessel contact by NCCN class (true angles)"
        )
        handles, names = ax.get_legend_handles_labels()
        names = [n.replace("misclassified", f"misclassified by {model}") for n in names]
        ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.text(184, 362, "arterial > 180°:\nlocally advanced", fontsize=7, color="#374151", va="top")
        ax.text(2, 184, "venous > 180°", fontsize=7, color="#374151", va="bottom")
        ax.annotate(
            f"{untouched} cases without contact",
            (0, 0),
            xytext=(30, 25),
            textcoords="offset points",
            fontsize=7,
            color="#374151",
            arrowprops={"arrowstyle": "-", "color": "#9ca3af", "lw": 0.8},
        )
        ax.set_xlabel(f"{ax.get_xlabel()}, jittered ±{JITTER:g}°")
        ax.set_ylabel(f"{ax.get_ylabel()}, jittered ±{JITTER:g}°")
        fig.tight_layout()
    return fig
