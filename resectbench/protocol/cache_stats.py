"""Counts preprocessing-cache hits and misses of the VolumeStores recipes create during a unit.

Recipes build their own :class:`resectbench.data.images.VolumeStore` (its ``stats`` count hits and
misses per instance) from ``FitContext.cache_dir``, which the protocol shares across the whole run.
To report a run-wide hit rate without changing the recipe interface, :func:`track_volume_stores`
records every store constructed while it is active and sums their ``stats`` at the end; nothing
else about the stores changes.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

_lock = threading.Lock()


@contextlib.contextmanager
def track_volume_stores():
    """Yields a dict that holds {"hits", "misses"} summed over the stores created inside the block."""
    totals = {"hits": 0, "misses": 0}
    try:
        from ..data.images import VolumeStore
    except ImportError:  # no image pipeline in this build: nothing to count
        yield totals
        return
    stores: list = []
    with _lock:
        original = VolumeStore.__init__

        def init(self, *args, **kwargs):
            original(self, *args, **kwargs)
            stores.append(self)

        VolumeStore.__init__ = init
    try:
        yield totals
    finally:
        with _lock:
            VolumeStore.__init__ = original
        for store in stores:
            stats = getattr(store, "stats", {}) or {}
            totals["hits"] += int(stats.get("hits", 0))
            totals["misses"] += int(stats.get("misses", 0))


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
