"""Preprocessed network inputs, cached on disk so each case is preprocessed once per cache directory.

The cache key is a hash of the case's image and mask bytes, the cohort's label map and the
:class:`ImageConfig` (target spacing, ROI, HU clip, crop centre) plus a version of the chain, so a
nested cross-validation run with many folds and trials reads every case from disk after the first
time, and any change of data or configuration misses the cache instead of reusing stale volumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from .nifti import file_digest
from .transforms import AugmentationConfig, ImageConfig, preprocessing

#: bump when the preprocessing chain changes meaning (invalidates every cache entry)
PREPROCESS_VERSION = "3"

__all__ = ["ImageConfig", "AugmentationConfig", "VolumeStore", "PREPROCESS_VERSION", "cache_counts"]

#: hits and misses of every VolumeStore of this process, per cache folder (``<cache_dir>/volumes``)
_COUNTS: dict[str, dict[str, int]] = {}
_COUNTS_LOCK = threading.Lock()


def _count(folder: Path, what: str) -> None:
    with _COUNTS_LOCK:
        _COUNTS.setdefault(str(Path(folder).resolve()), {"hits": 0, "misses": 0})[what] += 1


def cache_counts(cache_dir: str | Path) -> dict[str, int]:
    """{"hits", "misses"} of every :class:`VolumeStore` on ``cache_dir`` in this process so far.

    Whoever owns a cache directory (the protocol owns the run's) reads it before and after a piece of
    work; the difference is that work's. Stores keep their own per-instance ``stats`` as well."""
    with _COUNTS_LOCK:
        return dict(_COUNTS.get(str((Path(cache_dir) / "volumes").resolve()), {"hits": 0, "misses": 0}))


class VolumeStore:
    """``get(cohort)`` -> {case_id: {"image": float32 (1,*roi), "seg": uint8 (*roi), "has_mask": bool,
    "affine": float64 (4, 4) voxel -> world mm (RAS) of the preprocessed grid}}."""

    def __init__(self, cache_dir: str | Path | None = None, config: ImageConfig | None = None):
        from .cache import cache_root

        self.config = config or ImageConfig()
        self.dir = (Path(cache_dir) if cache_dir is not None else cache_root()) / "volumes"
        self.stats = {"hits": 0, "misses": 0}

    def key(self, cohort, case_id: str) -> str:
        row = cohort.table.loc[case_id]
        h = hashlib.blake2b(digest_size=20)
        h.update(PREPROCESS_VERSION.encode())
        h.update(json.dumps(self.config.cache_dict(), sort_keys=True).encode())
        h.update(file_digest(row["image"]).encode())
        mask = row.get("mask")
        if isinstance(mask, str) and mask:
            h.update(file_digest(mask).encode())
            h.update(json.dumps(cohort.label_map, sort_keys=True).encode())
            h.update(json.dumps(cohort.unmapped_labels, sort_keys=True).encode())
        return h.hexdigest()

    def path(self, cohort, case_id: str) -> Path:
        k = self.key(cohort, case_id)
        return self.dir / k[:2] / f"{k}.npz"

    def get_case(self, cohort, case_id: str, _chain=None) -> dict:
        path = self.path(cohort, case_id)
        if path.exists():
            try:
                with np.load(path) as z:
                    out = {"image": z["image"], "seg": z["seg"], "has_mask": bool(z["has_mask"]), "affine": z["affine"]}
                self.stats["hits"] += 1
                _count(self.dir, "hits")
                return out
            except (OSError, ValueError, KeyError, EOFError):
                path.unlink(missing_ok=True)  # a broken entry (killed writer): recompute it
        chain = _chain or preprocessing(cohort, self.config)
        d = chain({"case_id": case_id})
        out = {
            "image": np.asarray(d["image"], dtype=np.float32),
            "seg": np.asarray(d["seg"][0]).round().astype(np.uint8),
            "has_mask": bool(d["has_mask"]),
            "affine": np.asarray(d["image"].affine, dtype=np.float64),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, image=out["image"], seg=out["seg"], has_mask=np.asarray(out["has_mask"]), affine=out["affine"])
        os.replace(tmp, path)
        self.stats["misses"] += 1
        _count(self.dir, "misses")
        return out

    def get(self, cohort, on_progress: Callable[[int, int, str], None] | None = None, case_ids=None) -> dict[str, dict]:
        """Preprocessed volumes of every case (or ``case_ids``), from the cache when possible."""
        ids = cohort.case_ids if case_ids is None else [str(c) for c in case_ids]
        chain = None
        out = {}
        for i, cid in enumerate(ids):
            if chain is None and not self.path(cohort, cid).exists():
                chain = preprocessing(cohort, self.config)
            out[cid] = self.get_case(cohort, cid, chain)
            if on_progress:
                on_progress(i + 1, len(ids), cid)
        return out
