"""Another segmenter's masks (nnU-Net, TotalSegmentator --ml, a MONAI bundle) as the geometric models' mask
source (``masks=FOLDER``, mask source "external"), for ``predict`` (``--masks``), named on the board."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from resectbench import registry as reg
from resectbench.baselines.geometric_phantoms import write_phantom_cohort
from resectbench.cli.app import build_app
from resectbench.data import load_cohort
from resectbench.data.readers.masks import with_masks_from
from resectbench.errors import DataError
from resectbench.models.base import FitContext
from resectbench.vocabulary import STRUCTURE_INDEX


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return load_cohort(write_phantom_cohort(tmp_path_factory.mktemp("phantoms")))


def segmenter_output(cohort, folder, *, drop=(), skip_case=None):
    """The cohort's masks as another segmenter writes them: CASE_ID.nii.gz with its own numbering (the
    canonical one reversed) and a dataset.json naming it, like nnU-Net's prediction folder."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [s for s in STRUCTURE_INDEX if s != "background" and s not in drop]
    numbering = {name: 100 - i for i, name in enumerate(names)}
    for cid in cohort.case_ids:
        if cid == skip_case:
            continue
        case = cohort.load_case(cid)  # canonical labels in RAS: store them back on the image's own grid
        source = nib.load(cohort.table.loc[cid, "image"])
        canonical = nib.as_closest_canonical(source)
        out = np.zeros(case.mask.shape, dtype=np.uint8)
        for name, value in numbering.items():
            out[case.mask == STRUCTURE_INDEX[name]] = value
        img = nib.Nifti1Image(out, canonical.affine).as_reoriented(
            nib.orientations.ornt_transform(
                nib.orientations.axcodes2ornt("RAS"), nib.orientations.io_orientation(source.affine)
            )
        )
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), source.affine), str(folder / f"{cid}.nii.gz"))
    (folder / "dataset.json").write_text(json.dumps({"labels": {"background": 0, **numbering}}))
    return folder


def test_external_masks_are_measured_like_the_cohorts_own(cohort, tmp_path):
    folder = segmenter_output(cohort, tmp_path / "nnunet")
    view = with_masks_from(cohort, folder)
    for cid in cohort.case_ids:  # read through its own label map: the same canonical masks
        np.testing.assert_array_equal(view.load_case(cid).mask, cohort.load_case(cid).mask)
    ctx = FitContext(seed=0, cache_dir=tmp_path / "cache")
    external = reg.models.create("geometric-rules", masks=str(folder))
    assert external.mask_source == "external" and external.needs().masks == "none"  # own masks not read
    oracle = reg.models.create("geometric-rules-oracle")
    np.testing.assert_allclose(
        external.fit(cohort, None, ctx).predict_proba(cohort, ctx),
        oracle.fit(cohort, None, ctx).predict_proba(cohort, ctx),
    )


def test_bad_mask_folders_are_named_before_any_work(cohort, tmp_path):
    with pytest.raises(DataError, match="no such folder of masks"):
        reg.models.create("geometric-rules", masks=str(tmp_path / "nowhere"))
    no_vessels = segmenter_output(cohort, tmp_path / "msd", drop=("sma", "celiac_trunk"))
    with pytest.raises(DataError, match="its label map names no sma, celiac_trunk"):
        reg.models.create("geometric-features", masks=str(no_vessels))
    missing = segmenter_output(cohort, tmp_path / "short", skip_case=cohort.case_ids[3])
    with pytest.raises(DataError, match=f"no mask for 1 of 9 case\\(s\\): {cohort.case_ids[3]}"):
        with_masks_from(cohort, missing)
    labels = tmp_path / "labels.toml"
    labels.write_text('background = 0\npancreas = "one"\n')
    with pytest.raises(DataError, match="cannot read label entry 'pancreas'"):
        with_masks_from(cohort, missing, labels)


def test_a_run_with_external_masks_names_them_on_the_board_and_predict_takes_new_ones(tmp_path):
    from resectbench.baselines.geometric_phantoms import CASES

    cohort = load_cohort(write_phantom_cohort(tmp_path / "phantoms", cases=CASES * 2))  # 2 folds of 9
    folder = segmenter_output(cohort, tmp_path / "seg")
    data = cohort.root / "manifest.csv"
    run = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(
        build_app(),
        [
            "run",
            "-m",
            "geometric-rules",
            "--param",
            f"masks={folder}",
            "--data",
            str(data),
            "--run-dir",
            str(run),
            "--outer-folds",
            "2",
            "--final-model",
            "--no-references",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    info = json.loads((run / "models" / "geometric-rules" / "model.json").read_text())
    assert info["mask_source"] == "external" and info["masks"] == str(folder)
    board = runner.invoke(build_app(), ["leaderboard", str(run), "-f", "markdown"], catch_exceptions=False).output
    assert f"masks from another segmenter ({folder})" in " ".join(board.split())
    # new cases: their masks from the segmenter's new output folder
    new = segmenter_output(cohort, tmp_path / "seg-new")
    res = runner.invoke(
        build_app(),
        [
            "predict",
            str(run / "models" / "geometric-rules"),
            str(data),
            "-o",
            str(tmp_path / "out"),
            "--masks",
            str(new),
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        build_app(),
        [
            "predict",
            str(run / "models" / "geometric-rules"),
            str(data),
            "-o",
            str(tmp_path / "o2"),
            "--masks",
            str(tmp_path / "empty-missing"),
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 2 and "does not exist" in res.output
