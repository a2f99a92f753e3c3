"""The run's preprocessing cache, owned by the protocol and passed to recipes.

The protocol creates one :class:`RunCache` per benchmark (``RUN_DIR/cache``, or a worker's own
folder) and hands its directory to every fit through ``FitContext.cache_dir``; recipes build their
:class:`resectbench.data.images.VolumeStore` on it. Hits and misses are counted by the data layer
per cache directory (:func:`resectbench.data.images.cache_counts`); :meth:`RunCache.counting` reads
them before and after a unit, so each unit's share lands in its ``timings.json``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path


def _counts(directory: Path) -> dict[str, int]:
    try:
        from ..data.images import cache_counts
    except ImportError:  # no image pipeline in this build: nothing to count
        return {"hits": 0, "misses": 0}
    return cache_counts(directory)


@dataclass(frozen=True)
class RunCache:
    """The preprocessing cache directory of one benchmark in this process."""

    directory: Path

    @contextlib.contextmanager
    def counting(self):
        """Yields a dict that holds {"hits", "misses"} of this cache during the block (filled at its end)."""
        totals = {"hits": 0, "misses": 0}
        before = _counts(self.directory)
        try:
            yield totals
        finally:
            after = _counts(self.directory)
            totals.update({k: after[k] - before[k] for k in totals})

    def summary(self, units: list[dict]) -> dict:
        return summarize(units, self.directory)


def summarize(units: list[dict], cache_dir: Path) -> dict:
    """Run-wide cache figures from the per-unit counts in timings.json."""
    hits = sum(int(u.get("hits", 0)) for u in units)
    misses = sum(int(u.get("misses", 0)) for u in units)
    total = hits + misses
    entries = len(list(Path(cache_dir).glob("volumes/*/*.npz"))) if Path(cache_dir).exists() else 0
    return {
        "hits": hits,
        "misses": misses,
        "hit_rate": hits / total if total else None,
        "cached_volumes": entries,
        "cache_dir": str(cache_dir),
    }
