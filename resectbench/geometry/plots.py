"""Figure-2-style scatter: maximum arterial vs maximum venous contact per case, coloured by class."""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..vocabulary import ARTERIES as ARTERIAL, CLASS_DISPLAY_NAMES, VEINS as VENOUS

CLASS_COLORS = ("#2a9d8f", "#e9c46a", "#e76f51")


def contact_summary(contacts, labels=None) -> pd.DataFrame:
    """Per-case max arterial and venous contact from measurements.

    ``contacts`` is either ``{case_id: {vessel: degrees}}`` (e.g. a geometric recipe's
    ``extra_outputs()["contact_deg"]``) or a tidy DataFrame with columns case_id, vessel, contact_deg.
    ``labels`` (mapping or Series case_id -> class) becomes the ``label`` column.
    """
    if isinstance(contacts, pd.DataFrame):
        wide = contacts.pivot_table(index="case_id", columns="vessel", values="contact_deg", aggfunc="max")
    else:
        wide = pd.DataFrame.from_dict({str(k): dict(v) for k, v in dict(contacts).items()}, orient="index")
    wide = wide.fillna(0.0)
    out = pd.DataFrame(index=wide.index)
    out.index.name = "case_id"
    out["arterial_deg"] = (
        wide[[v for v in ARTERIAL if v in wide]].max(axis=1) if any(v in wide for v in ARTERIAL) else 0.0
    )
    out["venous_deg"] = wide[[v for v in VENOUS if v in wide]].max(axis=1) if any(v in wide for v in VENOUS) else 0.0
    if labels is not None:
        out["label"] = pd.Series(dict(labels) if isinstance(labels, Mapping) else labels).reindex(out.index)
    return out


def contact_scatter(
    df: pd.DataFrame,
    ax=None,
    misclassified: Iterable[str] | None = None,
    *,
    title: str | None = "Tumor-vessel contact per case",
):
    """Scatter of ``arterial_deg`` (x) vs ``venous_deg`` (y) per case (index = case id), coloured by
    ``label`` (0/1/2), with dashed 180-degree lines; cases in ``misclassified`` get a black ring.
    Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    missing = {"arterial_deg", "venous_deg"} - set(df.columns)
    if missing:
        raise ValueError(
            f"contact_scatter needs columns arterial_deg and venous_deg (missing: {sorted(missing)}); "
            "build them with contact_summary()"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.8))
    labels = df["label"] if "label" in df else pd.Series(np.nan, index=df.index)
    for cls, (name, color) in enumerate(zip(CLASS_DISPLAY_NAMES, CLASS_COLORS)):
        part = df[labels == cls]
        ax.scatter(
            part.arterial_deg,
            part.venous_deg,
            s=28,
            c=color,
            alpha=0.85,
            label=f"{name} (n={len(part)})",
            edgecolors="none",
        )
    unknown = df[labels.isna()]
    if len(unknown):
        ax.scatter(unknown.arterial_deg, unknown.venous_deg, s=28, c="#999999", label=f"unlabelled (n={len(unknown)})")
    wrong = df.loc[df.index.intersection([str(c) for c in (misclassified or ())])]
    if len(wrong):
        ax.scatter(
            wrong.arterial_deg,
            wrong.venous_deg,
            s=90,
            facecolors="none",
            edgecolors="black",
            linewidths=1.2,
            label=f"misclassified (n={len(wrong)})",
        )
    for line in (ax.axvline, ax.axhline):
        line(180.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlim(-10, 370)
    ax.set_ylim(-10, 370)
    ax.set_xticks(range(0, 361, 90))
    ax.set_yticks(range(0, 361, 90))
    ax.set_xlabel("max arterial contact (SMA, CA, CHA) [deg]")
    ax.set_ylabel("max venous contact (SMV, PV) [deg]")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax
