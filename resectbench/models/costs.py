"""What a model costs to run: whether it trains a network, and its measured time per outer fold.

Times come from ``fold_costs.json`` beside this module, written by ``benchmarks/fold_costs.py`` from
finished run directories (each entry says which run, profile, machine and date it was measured on);
``resectbench list`` and ``describe`` show them where models are chosen. A model not measured there
says so rather than guess.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

FOLD_COSTS = Path(__file__).with_name("fold_costs.json")


@lru_cache(maxsize=1)
def measured() -> dict:
    """``{profile: {model: {"seconds_per_fold": ..., "folds": ..., "run": ..., "measured": ..., "machine": ...}}}``."""
    try:
        return json.loads(FOLD_COSTS.read_text())
    except (OSError, ValueError):
        return {}


def cost_summary(name: str, profile: str = "cpu") -> str:
    """One line for ``list``: "trains a network; 7.5 min per outer fold (cpu)", or "seconds" for a model
    that fits no network, or "trains a network; not measured" where no run measured it."""
    from .. import registry as reg

    trains = reg.models.create(name).trains()
    entry = measured().get(profile, {}).get(name)
    if entry is None:
        return f"trains {trains}; not measured on {profile}" if trains else "no network; not measured"
    seconds = float(entry["seconds_per_fold"])
    shown = f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"
    return f"{'trains ' + trains if trains else 'no network'}; {shown} per outer fold ({profile})"
