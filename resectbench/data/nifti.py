"""NIfTI reading and writing with the affine taken seriously, plus content digests of files.

Every volume leaves this module in one canonical orientation (RAS+: voxel axes increase towards
the patient's Right, Anterior and Superior), so a reader never flips anatomy because a file was stored LPS (DICOM-style) or with permuted axes.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import DataError

_DIGESTS: dict[tuple, str] = {}


def file_digest(path: str | Path) -> str:
    """blake2b of a file's bytes; memoised per (path, size, mtime) so a cohort is hashed once per process."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.blake2b(digest_size=16)
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _load(path: Path, case_id: str | None, what: str):
    import nibabel as nib

    if not path.exists():
        raise DataError(f"{what} file not found: {path}", case_id=case_id)
    try:
        return nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for bad headers
        raise DataError(
            f"{what} file {path.name} is not a readable NIfTI ({type(exc).__name__}: {exc})", case_id=case_id
        ) from exc


def read_header(path: str | Path, case_id: str | None = None, what: str = "image"):
    """(shape, affine, zooms) from the header only - cheap; does not read voxels."""
    img = _load(Path(path), case_id, what)
    if len(img.shape) != 3:
        raise DataError(f"{what} file {Path(path).name} has shape {img.shape}; expected a 3D volume", case_id=case_id)
    return (
        tuple(int(s) for s in img.shape),
        np.asarray(img.affine, dtype=float),
        tuple(float(z) for z in img.header.get_zooms()[:3]),
    )


def read_volume(path: str | Path, case_id: str | None = None, what: str = "image", dtype=np.float32):
    """Voxels and affine in canonical RAS orientation.

    Raises :class:`DataError` naming the case for a missing, truncated or non-3D file and for
    non-finite voxels.
    """
    import nibabel as nib

    path = Path(path)
    img = _load(path, case_id, what)
    if len(img.shape) != 3:
        raise DataError(f"{what} file {path.name} has shape {img.shape}; expected a 3D volume", case_id=case_id)
    try:
        img = nib.as_closest_canonical(img)
        data = np.asarray(img.dataobj)
    except (EOFError, zlib.error, OSError, ValueError) as exc:
        raise DataError(
            f"{what} file {path.name} is truncated or corrupt ({type(exc).__name__}: {exc})", case_id=case_id
        ) from exc
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        n_bad = int((~np.isfinite(data)).sum())
        raise DataError(f"{what} file {path.name} has {n_bad} NaN/infinite voxels", case_id=case_id)
    return data.astype(dtype, copy=False), np.asarray(img.affine, dtype=float)


@contextmanager
def fast_gzip(level: int = 1):
    """Write .nii.gz with a cheap compression level (nibabel defaults to 9, which dominates synthesis time)."""
    from nibabel.openers import Opener

    old = Opener.default_compresslevel
    Opener.default_compresslevel = level
    try:
        yield
    finally:
        Opener.default_compresslevel = old


def write_volume(path: str | Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Write ``data`` with ``affine`` (dtype kept); parent folders are created; writes are atomic."""
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.nii.gz")
    nib.save(img, str(tmp))
    os.replace(tmp, path)


def axis_codes(affine: np.ndarray) -> str:
    """Orientation letters of an affine, e.g. 'RAS' or 'LPS'."""
    import nibabel as nib

    return "".join(nib.orientations.aff2axcodes(affine))
