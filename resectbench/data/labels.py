"""Canonical segmentation structures and the aliases that map dataset label names onto them.

The canonical index order is the paper's 16-class segmentation head (see shared PAPER.md, order
chosen by resectbench). Datasets may number their labels any way they like: readers map names
through :func:`canonical_name` and remap voxel values to these indices. The names themselves are
defined once in :mod:`resectbench.vocabulary` (which geometry and the leaderboard use too); this
module keeps the data package's spelling of them.
"""

from __future__ import annotations

from ..vocabulary import (
    ARTERIES,
    STRUCTURE_ALIASES as ALIASES,
    STRUCTURE_INDEX as INDEX,
    STRUCTURES,
    VEINS,
    canonical_name,
)

__all__ = ["STRUCTURES", "INDEX", "ARTERIES", "VEINS", "ALIASES", "canonical_name"]
