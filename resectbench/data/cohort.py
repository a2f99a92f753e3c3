"""The cohort: cases with CT, optional mask, NCCN label, clinical variables, and a data fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import INDEX, STRUCTURES
from .nifti import file_digest, read_volume
from .schema import VariableSpec


@dataclass
class CaseVolume:
    """One case in canonical RAS orientation at its native spacing."""

    case_id: str
    image: np.ndarray  # float32 HU, (X, Y, Z)
    mask: np.ndarray | None  # uint8 canonical indices (resectbench.data.labels.INDEX), or None
    spacing: np.ndarray  # (3,) mm
    affine: np.ndarray  # (4, 4) voxel -> RAS+ mm


#: the label of a case whose NCCN class is not known (a new patient for ``predict``; ``load_images``)
UNLABELED = -1


def class_counts(labels) -> list[int]:
    """Cases per class (resectable, borderline, locally advanced); unlabeled cases are not counted."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.bincount(labels[labels >= 0], minlength=3).tolist()


def _check_affines(case_id: str, img_aff: np.ndarray, mask_aff: np.ndarray, img_shape, mask_shape) -> None:
    if tuple(img_shape) != tuple(mask_shape):
        raise DataError(f"mask shape {tuple(mask_shape)} differs from image shape {tuple(img_shape)}", case_id=case_id)
    if not np.allclose(img_aff, mask_aff, atol=1e-3, rtol=1e-4):
        raise DataError("mask affine differs from image affine (mask is not on the image grid)", case_id=case_id)


@dataclass
class Cohort:
    """Cases of one dataset, aligned by ``case_ids``. See docs/data.md for every field."""

    name: str
    table: pd.DataFrame  # index case_id: image, mask, label, group
    clinical: pd.DataFrame  # index case_id: raw clinical variables (NaN/None = missing)
    clinical_schema: dict[str, VariableSpec]
    label_map: dict[str, int]  # canonical structure -> voxel value in this cohort's masks
    ground_truth: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    #: voxel values that appear in dataset.json under names resectbench does not know; loaded as background
    unmapped_labels: dict[str, int] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, repr=False)

    # -- identity -----------------------------------------------------------------------------------
    @property
    def case_ids(self) -> list[str]:
        return [str(c) for c in self.table.index]

    @property
    def labels(self) -> np.ndarray:
        """0/1/2 per case; :data:`UNLABELED` (-1) where the class is not known."""
        return self.table["label"].to_numpy(dtype=np.int64)

    @property
    def labelled(self) -> np.ndarray:
        """Boolean per case: its NCCN class is known."""
        return self.labels >= 0

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"Cohort({self.name!r}, n={len(self)}, class_counts={class_counts(self.labels)})"

    @property
    def has_masks(self) -> bool:
        return bool(self.table["mask"].notna().any())

    @property
    def fingerprint(self) -> str:
        """Hash of every referenced file's bytes, the table, the clinical values and the label map.

        File paths enter only by name relative to their case, so the same data copied elsewhere keeps
        its fingerprint; any changed voxel, label or clinical value changes it.
        """
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            for cid, row in self.table.iterrows():
                h.update(str(cid).encode())
                h.update(str(int(row["label"])).encode())
                h.update(str(row.get("group")).encode())
                for col in ("image", "mask"):
                    p = row.get(col)
                    h.update(file_digest(p).encode() if isinstance(p, (str, Path)) and str(p) else b"-")
            h.update(self.clinical.to_csv(na_rep="NA").encode())
            h.update(json.dumps(self.label_map, sort_keys=True).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    # -- views --------------------------------------------------------------------------------------
    def subset(self, ids) -> "Cohort":
        """A cohort restricted to ``ids`` in the given order (same label map, schema and info)."""
        ids = [str(i) for i in ids]
        missing = [i for i in ids if i not in self.table.index]
        if missing:
            raise DataError(f"subset asks for unknown case ids: {', '.join(missing[:5])}")
        if len(set(ids)) != len(ids):
            raise DataError("subset ids contain duplicates")
        gt = self.ground_truth.loc[ids] if self.ground_truth is not None else None
        info = dict(self.info)
        info["class_counts"] = class_counts(self.table.loc[ids, "label"])
        return Cohort(
            name=self.name,
            table=self.table.loc[ids].copy(),
            clinical=self.clinical.loc[ids].copy(),
            clinical_schema=dict(self.clinical_schema),
            label_map=dict(self.label_map),
            ground_truth=gt,
            info=info,
            root=self.root,
            unmapped_labels=dict(self.unmapped_labels),
        )

    # -- voxels -------------------------------------------------------------------------------------
    def _lookup_table(self) -> np.ndarray:
        """Voxel value in the files -> canonical index (255 marks values the label map does not know)."""
        top = max([*self.label_map.values(), *self.unmapped_labels.values(), 0])
        lut = np.full(max(top + 1, 256), 255, dtype=np.uint8)
        for name, value in self.label_map.items():
            lut[value] = INDEX[name]
        for value in self.unmapped_labels.values():
            lut[value] = 0
        return lut

    def load_case(self, case_id: str, with_mask: bool = True) -> CaseVolume:
        """Read one case in canonical RAS orientation; the mask is remapped to canonical indices.

        Raises :class:`DataError` naming the case for missing/corrupt files, NaN voxels, a mask that is
        not on the image grid, and mask values absent from the label map.
        """
        case_id = str(case_id)
        if case_id not in self.table.index:
            raise DataError("no such case in this cohort", case_id=case_id)
        row = self.table.loc[case_id]
        image, affine = read_volume(row["image"], case_id, "image", np.float32)
        spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        mask = None
        mask_path = row.get("mask")
        if with_mask and isinstance(mask_path, (str, Path)) and str(mask_path):
            raw, mask_aff = read_volume(mask_path, case_id, "mask", np.float64)
            _check_affines(case_id, affine, mask_aff, image.shape, raw.shape)
            if np.any(raw < 0) or np.any(raw != np.round(raw)):
                raise DataError(f"mask {Path(mask_path).name} has negative or non-integer values", case_id=case_id)
            raw = raw.astype(np.int64)
            lut = self._lookup_table()
            if raw.max() >= len(lut):
                bad = sorted(set(np.unique(raw[raw >= len(lut)]).tolist()))
                raise DataError(
                    f"mask {Path(mask_path).name} has label values {bad} that the label map does not define",
                    case_id=case_id,
                )
            mask = lut[raw]
            if (mask == 255).any():
                bad = sorted(set(np.unique(raw[mask == 255]).tolist()))
                known = ", ".join(f"{v}={n}" for n, v in sorted(self.label_map.items(), key=lambda kv: kv[1]))
                raise DataError(
                    f"mask {Path(mask_path).name} has label values {bad} that the label map does "
                    f"not define (known: {known})",
                    case_id=case_id,
                )
        return CaseVolume(case_id=case_id, image=image, mask=mask, spacing=spacing, affine=affine)

    @property
    def structures(self) -> list[str]:
        """Canonical structures this cohort's masks annotate, in canonical index order."""
        return [s for s in STRUCTURES if s in self.label_map and s != "background"]
