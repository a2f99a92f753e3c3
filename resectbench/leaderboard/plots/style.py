"""Shared look of the report figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

from ...vocabulary import CLASS_NAMES  # noqa: E402

CLASS_TITLES = {
    "resectable": "resectable",
    "borderline": "borderline resectable",
    "locally_advanced": "locally advanced",
}
CLASS_COLORS = {0: "#2a9d8f", 1: "#e9a23b", 2: "#c8553d"}  # resectable / borderline / locally advanced
CHANCE_COLOR = "#9aa0a6"
DPI = 110

RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "figure.dpi": DPI,
    "savefig.bbox": "tight",
}


def model_colors(labels: list[str], kinds: dict[str, str]) -> dict[str, str]:
    """A stable colour per model; chance rows grey."""
    palette = plt.get_cmap("tab10").colors
    out, i = {}, 0
    for label in labels:
        if kinds.get(label) == "chance":
            out[label] = CHANCE_COLOR
        else:
            out[label] = matplotlib.colors.to_hex(palette[i % len(palette)])
            i += 1
    return out


def class_title(i: int) -> str:
    return CLASS_TITLES[CLASS_NAMES[i]]


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()
