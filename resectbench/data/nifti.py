"""NIfTI reading and writing with the affine taken seriously, plus content digests of files.

Every volume leaves this module in one canonical orientation (RAS+: voxel axes increase towards
the patient's Right, Anterior and Superior), so a reader never flips anatomy because a file was stored LPS (DICOM-style) or with permuted axes.
"""

from __future__ import annotations

import hashlib
import math
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


#: a header declaring more voxels than 1024 x 1024 x 2048 is broken, not a CT (real scans are at most about
#: 1024 x 1024 x 2000): refused before its voxels are read, which would exhaust memory (8 GiB as float32)
MAX_VOXELS = 1024 * 1024 * 2048
#: smaller tilts and shears are not reported (direction cosines converted from DICOM carry rounding noise)
GRID_TOLERANCE_DEG = 1.0


def _raw_pixdim(img, path: Path) -> np.ndarray:
    """Voxel sizes as stored: nibabel's loaded header already replaced 0 by 1 and negatives by their size."""
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path)) as f:
        return np.asarray(type(img.header).from_fileobj(f, check=False)["pixdim"][1:4], dtype=float)


def _check_header(img, path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(problems, warnings) of a loaded header, before any voxel is read.

    A problem makes the file unusable and completes "<what> file NAME ..."; a warning is (kind, detail)
    of a legal but unusual grid (see :func:`header_warnings`).
    """
    if len(img.shape) != 3:
        return [f"has shape {img.shape}; expected a 3D volume"], []
    problems, warnings = [], []
    if img.get_data_dtype().kind not in "biuf":  # RGB (a structured type), complex: not one real number per voxel
        problems.append(
            f"has data type {img.header.get_value_label('datatype')}; CT values and labels are real numbers"
        )
    n_voxels = math.prod(img.shape)
    if n_voxels > MAX_VOXELS:
        problems.append(
            f"declares {' x '.join(map(str, img.shape))} voxels ({n_voxels:.2g}); more than {MAX_VOXELS:.2g} "
            "(1024 x 1024 x 2048) is a broken header, not a CT"
        )
    m = np.asarray(img.affine, dtype=float)[:3, :3]
    norms = np.linalg.norm(m, axis=0)
    if not np.isfinite(m).all() or abs(np.linalg.det(m)) <= 1e-6 * norms.prod():
        problems.append(
            f"has a degenerate affine (voxel axes {np.round(m, 3).T.tolist()}: one is zero or two are parallel), "
            "so its voxels have no position in the patient"
        )
    else:
        q, r = np.linalg.qr(m)
        rotation = q * np.sign(np.diag(r))  # the orthogonal grid resampling keeps (MONAI Spacing drops the shear)
        tilt = math.degrees(math.acos(min(1.0, np.abs(rotation).max(axis=0).min())))
        unit = m / norms
        shear = math.degrees(math.asin(min(1.0, np.abs(unit.T @ unit - np.eye(3)).max())))
        if tilt > GRID_TOLERANCE_DEG:
            warnings.append(("oblique grid", f"voxel axes up to {tilt:.1f} deg off the patient axes"))
        if shear > GRID_TOLERANCE_DEG:
            warnings.append(("sheared grid", f"voxel axes up to {shear:.1f} deg off a right angle"))
    pixdim = _raw_pixdim(img, path)
    if (pixdim == 0).any():
        problems.append(
            f"has a zero voxel size (pixdim {pixdim.tolist()}), which no scan has (nibabel silently reads 1 mm)"
        )
    elif (pixdim < 0).any():
        if img.header["sform_code"] > 0:
            warnings.append(("negative pixdim", f"pixdim {pixdim.tolist()}"))
        else:
            problems.append(
                f"has a negative voxel size (pixdim {pixdim.tolist()}) and no sform: nibabel builds the affine "
                "from the sizes without their signs, so an axis the sign meant to flip would be read mirrored"
            )
    return problems, warnings


def _checked(path: Path, case_id: str | None, what: str):
    img = _load(path, case_id, what)
    problems, _ = _check_header(img, path)
    if problems:
        raise DataError(f"{what} file {path.name} " + "; ".join(problems), case_id=case_id)
    return img


def read_header(path: str | Path, case_id: str | None = None, what: str = "image"):
    """(shape, affine, zooms) from the header only - cheap; does not read voxels.

    Raises :class:`DataError` naming the case for a file that cannot be a CT volume (not 3D, not real
    numbers, implausibly large, a degenerate affine, a zero voxel size, a sign-ambiguous one).
    """
    img = _checked(Path(path), case_id, what)
    return (
        tuple(int(s) for s in img.shape),
        np.asarray(img.affine, dtype=float),
        tuple(float(z) for z in img.header.get_zooms()[:3]),
    )


def header_warnings(path: str | Path) -> list[tuple[str, str]]:
    """(kind, detail) of what is legal but unusual in a readable file's header: an "oblique grid" (tilted
    voxel axes), a "sheared grid" (axes not at right angles), a "negative pixdim" that the sform overrides."""
    path = Path(path)
    return _check_header(_load(path, None, "image"), path)[1]


def read_volume(path: str | Path, case_id: str | None = None, what: str = "image", dtype=np.float32):
    """Voxels and affine in canonical RAS orientation.

    Raises :class:`DataError` naming the case for a missing, truncated or non-3D file, for any header
    :func:`read_header` refuses, for a volume that does not fit in memory and for non-finite voxels.
    """
    import nibabel as nib

    path = Path(path)
    img = _checked(path, case_id, what)
    try:
        img = nib.as_closest_canonical(img)
        data = np.asarray(img.dataobj)
        n_bad = int((~np.isfinite(data)).sum()) if data.dtype.kind == "f" else 0
        data = data.astype(dtype, copy=False)
    except (EOFError, zlib.error, OSError, ValueError) as exc:
        raise DataError(
            f"{what} file {path.name} is truncated or corrupt ({type(exc).__name__}: {exc})", case_id=case_id
        ) from exc
    except MemoryError as exc:
        raise DataError(
            f"{what} file {path.name} ({' x '.join(map(str, img.shape))} voxels) does not fit in memory",
            case_id=case_id,
        ) from exc
    if n_bad:
        raise DataError(f"{what} file {path.name} has {n_bad} NaN/infinite voxels", case_id=case_id)
    return data, np.asarray(img.affine, dtype=float)


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
