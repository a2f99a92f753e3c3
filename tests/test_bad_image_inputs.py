"""NIfTI files that are not CT volumes (degenerate affine, RGB or complex voxels, a huge declared shape, a zero
or sign-ambiguous voxel size, a spacing only the sform shows) are named per case: `data validate` exits 1
with a FAIL line, `run --skip-invalid` excludes the case. Legal but unusual ones (oblique or sheared grids,
a negative pixdim the sform overrides, an empty label map) pass with a warning saying what resectbench
does with them. Each file is written with nibabel on the tiny volumes of data_fixtures."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from data_fixtures import SPACING, write_msd
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.errors import DataError


def invoke(*args):
    # catch_exceptions=False: an unexpected exception (a traceback for the user) fails the test
    return CliRunner().invoke(build_app(), list(map(str, args)), catch_exceptions=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def _image(root, cid):
    return root / "imagesTr" / f"{cid}_0000.nii.gz"


def _mask(root, cid):
    return root / "labelsTr" / f"{cid}.nii.gz"


def _save(path, data, affine):
    """Write ``affine`` as the sform exactly as given (Nifti1Image(data, affine) refuses a degenerate one),
    with the fixtures' voxel sizes as pixdim."""
    img = nib.Nifti1Image(data, None)
    img.header.set_sform(affine, code=1)
    img.header.set_zooms(SPACING)
    nib.save(img, str(path))


def _regrid(fn, masks=True):
    """Change the affine of a case's image (and mask, so it stays on the image grid): fn(affine) -> affine."""

    def breaker(root, cid):
        for path in (_image(root, cid), _mask(root, cid))[: 2 if masks else 1]:
            img = nib.load(str(path))
            _save(path, np.asarray(img.dataobj), fn(img.affine.copy()))

    return breaker


def _voxels(fn, path_of=_image):
    def breaker(root, cid):
        img = nib.load(str(path_of(root, cid)))
        nib.save(nib.Nifti1Image(fn(np.asarray(img.dataobj)), img.affine), str(path_of(root, cid)))

    return breaker


def _header(masks=False, **fields):
    """Overwrite header fields in the files' bytes: nibabel fixes a zero or negative pixdim when it saves."""

    def breaker(root, cid):
        for path in (_image(root, cid), _mask(root, cid))[: 2 if masks else 1]:
            raw = bytearray(gzip.decompress(path.read_bytes()))
            header = np.frombuffer(raw, dtype=nib.Nifti1Header.template_dtype, count=1).copy()
            for name, value in fields.items():
                header[name] = value
            raw[: header.itemsize] = header.tobytes()
            path.write_bytes(gzip.compress(bytes(raw)))

    return breaker


def _zero_column(aff):
    aff[:3, 1] = 0.0
    return aff


def _rotate_30(aff):
    t = np.deg2rad(30.0)
    aff[:3, :3] = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]) @ aff[:3, :3]
    return aff


def _shear(aff):
    aff[0, 2] = aff[2, 2] / 2  # slices shifted sideways as they go up: 26.6 degrees off a right angle
    return aff


def _thick_in_sform(aff):
    aff[2, 2] = 40.0  # pixdim stays 2 mm
    return aff


def _rgb(a):
    out = np.zeros(a.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    out["R"] = np.clip(a, 0, 255)
    return out


#: kind -> (breaker(root, case_id), fragment of the FAIL line); each spoils one case
PROBLEMS = {
    "degenerate-affine": (_regrid(_zero_column, masks=False), "has a degenerate affine"),
    "rgb-image": (_voxels(_rgb), "has data type RGB; CT values and labels are real numbers"),
    "complex-image": (_voxels(lambda a: a.astype(np.complex64)), "has data type complex64"),
    "huge-shape": (
        _header(masks=True, dim=[3, 30000, 30000, 30000, 1, 1, 1, 1]),
        "declares 30000 x 30000 x 30000 voxels (2.7e+13); more than 2.1e+09 (1024 x 1024 x 2048)",
    ),
    "zero-pixdim": (_header(pixdim=[1, 0, 1.5, 2, 1, 1, 1, 1]), "has a zero voxel size (pixdim [0.0, 1.5, 2.0])"),
    "negative-pixdim-without-sform": (
        _header(pixdim=[1, -1.5, 1.5, 2, 1, 1, 1, 1], qform_code=1, sform_code=0),
        "has a negative voxel size (pixdim [-1.5, 1.5, 2.0]) and no sform",
    ),
    "implausible-spacing-in-sform": (_regrid(_thick_in_sform), "implausible voxel spacing (1.5, 1.5, 40.0) mm"),
}

#: kind -> (breaker, fragments of the warning)
WARNINGS = {
    "oblique": (
        _regrid(_rotate_30),
        ["oblique grid in 1 case(s): 'case01' (voxel axes up to 30.0 deg off the patient axes)", "models see"],
    ),
    "sheared": (
        _regrid(_shear),
        ["sheared grid in 1 case(s): 'case01' (voxel axes up to 26.6 deg off a right angle)", "distorted"],
    ),
    "negative-pixdim-with-sform": (
        _header(pixdim=[1, -1.5, 1.5, 2, 1, 1, 1, 1]),
        ["negative pixdim in 1 case(s): 'case01' (pixdim [-1.5, 1.5, 2.0])", "the sform gives the geometry"],
    ),
    "empty-mask": (
        _voxels(np.zeros_like, path_of=_mask),
        ["empty mask in 1 case(s): 'case01'", "auxiliary segmentation learns 'nothing here'"],
    ),
}


@pytest.fixture
def msd(tmp_path):
    return write_msd(tmp_path / "data", n=4)


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
def test_validate_names_the_case_and_the_problem(msd, kind):
    breaker, fragment = PROBLEMS[kind]
    breaker(msd, "case01")
    result = invoke("data", "validate", msd)
    assert result.exit_code == 1, result.output
    fail = [flat(ln) for ln in result.output.splitlines() if ln.startswith("FAIL")]
    assert len(fail) == 1 and fail[0].startswith("FAIL case 'case01': ") and fragment in fail[0], result.output


@pytest.mark.parametrize("kind", sorted(set(PROBLEMS) - {"implausible-spacing-in-sform"}))
def test_reading_the_voxels_refuses_it_too(msd, kind):
    """read_volume (every case read) checks the header as read_header does, before any voxel is read."""
    from resectbench.data.nifti import read_volume

    breaker, fragment = PROBLEMS[kind]
    breaker(msd, "case01")
    with pytest.raises(DataError, match="case 'case01'") as info:
        read_volume(_image(msd, "case01"), "case01")
    assert fragment in str(info.value)


def test_a_volume_that_does_not_fit_in_memory_is_named(msd, monkeypatch):
    from resectbench.data.nifti import read_volume

    def no_memory(img):
        raise MemoryError

    monkeypatch.setattr(nib, "as_closest_canonical", no_memory)
    with pytest.raises(DataError, match=r"case 'case01': image file case01_0000.nii.gz \(12 x 10 x 8 voxels\) does"):
        read_volume(_image(msd, "case01"), "case01")


@pytest.mark.parametrize("kind", sorted(WARNINGS))
def test_validate_warns_and_says_what_happens(msd, kind):
    breaker, fragments = WARNINGS[kind]
    breaker(msd, "case01")
    result = invoke("data", "validate", msd)
    assert result.exit_code == 0, result.output
    assert "all cases valid" in result.output
    out = flat(result.output)
    assert all(f in out for f in fragments), result.output
    assert out.count("warning:") == 1, result.output  # only this one: clean files give none


def test_the_json_report_lists_the_warnings(msd):
    WARNINGS["oblique"][0](msd, "case01")
    WARNINGS["oblique"][0](msd, "case02")
    WARNINGS["empty-mask"][0](msd, "case02")
    report = json.loads(invoke("data", "validate", msd, "--json").output)
    assert report["ok"]
    assert [w.split(":")[0] for w in report["warnings"]] == [
        "oblique grid in 2 case(s)",
        "empty mask in 1 case(s)",
    ]
    assert "'case01' (voxel axes up to 30.0 deg off the patient axes), 'case02' (" in report["warnings"][0]


def test_run_skip_invalid_excludes_every_kind(tmp_path, monkeypatch):
    """One case per kind spoiled in an 18-case phantom cohort (7 of its 10 resectable cases, so 3 folds
    still stratify): a plain run refuses it, `--skip-invalid` runs on the rest and records each exclusion."""
    from resectbench.data.synth import tiny_cohort

    root = tiny_cohort(tmp_path / "data", n=18).root
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESECTBENCH_CACHE", str(tmp_path / "cache"))
    labels = pd.read_csv(root / "clinical.csv", dtype={"case_id": str}).set_index("case_id")["label"]
    spoiled = dict(zip(sorted(PROBLEMS), labels.index[labels == 0]))
    for kind, cid in spoiled.items():
        PROBLEMS[kind][0](root, cid)
    args = ["run", "--model", "dummy", "--data", root, "--outer-folds", "3", "--no-progress"]
    refused = invoke(*args, "--run-dir", "r0")
    assert refused.exit_code == 2 and "7 invalid case(s)" in flat(refused.output), refused.output
    done = invoke(*args, "--run-dir", "r1", "--skip-invalid")
    assert done.exit_code == 0, done.output
    excluded = json.loads((tmp_path / "r1" / "manifest.json").read_text())["cohort"]["excluded"]
    problems = {e["case_id"]: e["problem"] for e in excluded}
    assert len(excluded) == len(problems) == 7 and set(problems) == set(spoiled.values())
    for kind, cid in spoiled.items():
        assert PROBLEMS[kind][1].split(" (")[0] in problems[cid], (kind, problems[cid])
