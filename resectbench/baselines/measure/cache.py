"""Measurements of one case (``CaseGeometry``, ``measure_mask``) and their cache keyed by mask content.

The key is the mask's content (file digest for files, byte hash for predicted arrays) plus the
measurement version and settings, so nested cross-validation measures every case once per cache
directory. Measurements live on disk under ``cache_dir/geometry`` and, bounded, in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

# resectbench.geometry.contact / .findings (scipy, scikit-image) are imported where they are used:
# this module is imported whenever the models registry loads.

#: bump when measurement code changes what it returns (invalidates cached measurements)
MEASURE_VERSION = "geometry-6"


@dataclass
class CaseGeometry:
    """Measurements of one case: a per-vessel table and case-level findings."""

    vessels: pd.DataFrame
    findings: dict

    def to_json(self) -> str:
        return json.dumps(
            {"vessels": self.vessels.to_dict(orient="records"), "findings": self.findings},
            default=lambda x: None if x is None else float(x),
        )

    @classmethod
    def from_json(cls, text: str) -> "CaseGeometry":
        data = json.loads(text)
        return cls(pd.DataFrame(data["vessels"]), data["findings"])

    def row(self, vessel: str) -> dict:
        rows = self.__dict__.get("_rows")
        if rows is None:  # plain dict lookups: threshold fitting evaluates the rules thousands of times
            rows = self.__dict__["_rows"] = {r["vessel"]: r for r in self.vessels.to_dict(orient="records")}
        return rows.get(vessel, {})


def measure_mask(
    mask: np.ndarray, spacing, label_map: dict[str, int] | None = None, *, case_id: str | None = None, config=None
) -> CaseGeometry:
    """Contact per vessel plus tumor location, volume and CHA reach of one canonical RAS mask
    (``config``: a :class:`resectbench.geometry.contact.MeasureConfig`, default settings if None)."""
    from ...geometry.contact import MeasureConfig, measure_case
    from ...geometry.findings import case_findings

    config = MeasureConfig() if config is None else config
    vessels = measure_case(mask, spacing, label_map, case_id=case_id, config=config)
    findings = case_findings(mask, spacing, label_map)
    return CaseGeometry(vessels, findings)


#: measurements kept in memory by all caches of a process (least recently used dropped first; the disk
#: copy under ``cache_dir/geometry`` stays, so a dropped one is read back, or measured again without a cache dir)
MEMORY_ENTRIES = 2048


class _LRU:
    """A bounded mapping: once ``maxsize`` entries are held, the least recently used one goes."""

    def __init__(self, maxsize: int):
        self.maxsize = int(maxsize)
        self._data: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> str | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


class GeometryCache:
    """Measurements keyed by mask content: in memory (shared by every cache of the process, at most
    :data:`MEMORY_ENTRIES`), and on disk under ``cache_dir/geometry``."""

    _memory: _LRU = _LRU(MEMORY_ENTRIES)

    def __init__(self, cache_dir: str | Path | None = None, config=None):
        from ...geometry.contact import MeasureConfig

        self.dir = Path(cache_dir) / "geometry" if cache_dir is not None else None
        self.config = MeasureConfig() if config is None else config
        self.hits = 0
        self.misses = 0

    def key(self, content: str) -> str:
        settings = json.dumps(asdict(self.config), sort_keys=True)
        return hashlib.sha256(f"{MEASURE_VERSION}|{settings}|{content}".encode()).hexdigest()[:32]

    def get_or_measure(self, content: str, compute: Callable[[], CaseGeometry]) -> CaseGeometry:
        key = self.key(content)
        text = self._memory.get(key)
        path = self.dir / f"{key}.json" if self.dir is not None else None
        if text is None and path is not None and path.exists():
            text = path.read_text()
        if text is not None:
            self.hits += 1
        else:
            self.misses += 1
            text = compute().to_json()
        self._memory[key] = text
        if path is not None and not path.exists():  # also persists what an earlier cache held in memory
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{id(self)}")
            tmp.write_text(text)
            tmp.replace(path)
        return CaseGeometry.from_json(text)
