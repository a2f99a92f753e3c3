"""`resectbench predict` with a segmenting model: masks on the input's own grid, contacts and the NCCN rule.

A tiny real run (cnn3d-fusion, 1 epoch, 2 outer folds, final model stored) is made once; predict then runs on
new cases through the CLI. A second pass replaces the model's masks by the ground truth on the model's own grid
(the ideal segmenter), so where predict places them in the input grid and what it measures on them can be
checked against the input's own mask and label. The cascade (a localiser and a window) is checked on a fitted
recipe: its masks are placed back at the window's location, never left out silently.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from resectbench import registry as reg
from resectbench.cli.app import build_app
from resectbench.data.images import ImageConfig, VolumeStore
from resectbench.data.synth import generate_cohort
from resectbench.models.base import FitContext
from resectbench.models.recipes.compose import NeuralRecipe
from resectbench.profiles import Cascade, get_profile
from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, run_benchmark
from resectbench.vocabulary import CLASS_NAMES, STRUCTURE_INDEX, canonical_name

SMALL_CNN = {"max_epochs": 1, "batch_size": 4, "embed_dim": 16, "backbone.init_filters": 8}
CANONICAL_IDS = set(STRUCTURE_INDEX.values())


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """(run dir of a finished tiny run with a stored segmenting final model, 3 new cases, 2 other new cases)."""
    from resectbench.data import load_cohort

    root = tmp_path_factory.mktemp("predict")
    generate_cohort(root / "dev", n=12, seed=5, profile="tiny", workers=1, class_mix=(1, 1, 1))
    dev = load_cohort(root / "dev")  # 4 cases per class: 2 outer folds with an inner holdout each
    new = root / "new"
    generate_cohort(new, n=3, seed=11, profile="tiny", workers=1, class_mix=(1, 1, 1))
    cfg = ExperimentConfig(
        models=[ModelSpec("cnn3d-fusion", params=SMALL_CNN)],
        protocol=ProtocolConfig(outer_folds=2, trials=1, final_model=True),
        profile="cpu-whole",  # the whole view: masks on the input's grid (the cascade has its own test below)
        run_dir=str(root / "run"),
    )
    run_benchmark(cfg, cohort=dev)
    two = root / "two"  # measuring contacts on an untrained network's scattered masks takes seconds per case
    generate_cohort(two, n=2, seed=12, profile="tiny", workers=1, class_mix=(1, 1, 1))
    return root / "run", load_cohort(new), load_cohort(two)


def _truth_on_input(cohort, cid) -> np.ndarray:
    """The input's own mask in canonical label values (its file uses the cohort's numbering)."""
    raw = np.asarray(nib.load(str(cohort.table.loc[cid, "mask"])).dataobj).astype(int)
    out = np.zeros(raw.shape, dtype=np.uint8)
    for name, value in cohort.label_map.items():
        canonical = canonical_name(name)
        if canonical is not None and value:
            out[raw == value] = STRUCTURE_INDEX[canonical]
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.sum(a & b) / max(1, a.sum() + b.sum())


def _predict(run_dir, cohort, out):
    res = CliRunner().invoke(build_app(), ["predict", str(run_dir / "cnn3d-fusion"), str(cohort.root), "-o", str(out)])
    assert res.exit_code == 0, res.output
    return json.loads((out / "findings.json").read_text())


@pytest.mark.slow  # ~15 s: contacts measured on an untrained network's scattered masks
def test_predict_writes_masks_on_each_inputs_grid_with_contacts_and_the_nccn_rule(setting, tmp_path):
    run_dir, _, new = setting
    state = json.loads((run_dir / "models" / "cnn3d-fusion" / "final" / "state" / "state.json").read_text())
    assert state["kind"] == "weights" and state["segment"] is True
    findings = _predict(run_dir, new, tmp_path / "out")
    preds = pd.read_csv(tmp_path / "out" / "predictions.csv").set_index("case_id")
    assert set(preds.index) == set(new.case_ids) == set(findings["cases"])
    assert np.allclose(preds[["prob_resectable", "prob_borderline", "prob_locally_advanced"]].sum(axis=1), 1)
    for cid in new.case_ids:
        source = nib.load(str(new.table.loc[cid, "image"]))
        written = nib.load(str(tmp_path / "out" / "masks" / f"{cid}.nii.gz"))
        assert written.shape == source.shape[:3]
        np.testing.assert_allclose(written.affine, source.affine, atol=1e-5)
        assert set(np.unique(np.asarray(written.dataobj))) <= CANONICAL_IDS
        case = findings["cases"][cid]
        assert case["mask"] == f"masks/{cid}.nii.gz"
        assert all(0.0 <= d <= 360.0 for d in case["contact_deg"].values())
        nccn = case["nccn"]
        assert nccn["reason"]  # a tumour-free prediction says so; otherwise the rule that fired
        assert nccn["class"] in (None, *CLASS_NAMES)
    # the inputs' grids differ (per-case spacing and axis order), so placing on each input's grid matters
    affines = [nib.load(str(new.table.loc[c, "image"])).affine for c in new.case_ids]
    assert any(not np.allclose(affines[0], a) for a in affines[1:])


def test_masks_land_where_the_inputs_structures_are_and_the_rule_reads_them(setting, tmp_path, monkeypatch):
    """The ideal segmenter (ground truth on the model's grid) through predict: the written mask matches the
    input's own mask, and the NCCN rule measured on it gives the case's class with its reason."""
    run_dir, new, _ = setting
    profile = get_profile("cpu-whole")
    store = VolumeStore(run_dir / "cache", ImageConfig(target_spacing=profile.target_spacing_mm, roi=profile.roi))
    truth = store.get(new)
    grids = {}

    def ideal(self, cohort, ctx):
        grids.update(self.mask_grid(cohort, ctx))
        return {c: (truth[c]["seg"], tuple(profile.target_spacing_mm)) for c in cohort.case_ids}

    monkeypatch.setattr(NeuralRecipe, "predict_masks", ideal)
    findings = _predict(run_dir, new, tmp_path / "out")
    agree = 0
    for cid in new.case_ids:
        np.testing.assert_allclose(grids[cid], truth[cid]["affine"])  # the grid the model predicted on
        written = np.asarray(nib.load(str(tmp_path / "out" / "masks" / f"{cid}.nii.gz")).dataobj)
        reference = _truth_on_input(new, cid)
        for name in ("pancreas", "tumor", "portal_vein"):
            k = STRUCTURE_INDEX[name]
            assert _dice(written == k, reference == k) > 0.7, (cid, name)
        case = findings["cases"][cid]
        assert case["nccn"]["class"] in CLASS_NAMES and case["nccn"]["reason"]
        label = CLASS_NAMES[int(new.labels[list(new.case_ids).index(cid)])]
        if case["nccn"]["class"] != CLASS_NAMES[0]:  # a rule fired on a measured contact
            assert max(case["contact_deg"].values()) > 0 and case["nccn"]["rules"]
        agree += case["nccn"]["class"] == label
    assert agree >= 2, findings["cases"]


def test_cascade_masks_are_placed_back_at_the_window_in_the_input_grid(setting, tmp_path):
    from resectbench.data import load_cohort
    from resectbench.models import persist
    from resectbench.models.cascade import cut_windows
    from resectbench.protocol.predict import _masks_and_findings

    run_dir, new, _ = setting
    dev = load_cohort(run_dir.parent / "dev")
    cascade = Cascade(
        context_roi=(32, 32, 32),
        localiser_spacing_mm=(6.0, 6.0, 6.0),
        localiser_roi=(16, 16, 16),
        localiser_epochs=1,
        jitter_vox=2,
    )
    profile = get_profile("cpu-cascade").with_(target_spacing_mm=(3.0, 3.0, 3.0), roi=(16, 16, 16), cascade=cascade)
    ctx = FitContext(seed=0, profile=profile, cache_dir=tmp_path / "cache")
    create = lambda: reg.models.create("cnn3d-fusion", **SMALL_CNN)  # noqa: E731
    fitted = create().fit(dev, None, ctx)
    persist.save_model(fitted, tmp_path / "state", train_ids=dev.case_ids, valid_ids=None)
    model = persist.load_model(tmp_path / "state", create, ctx)  # the localiser comes back with the network
    assert model.localiser is not None
    grids = model.mask_grid(new, ctx)
    masks = model.predict_masks(new, ctx)
    findings = _masks_and_findings(model, new, ctx, tmp_path / "out")
    contexts = VolumeStore(tmp_path / "cache", ImageConfig(target_spacing=(3.0, 3.0, 3.0), roi=(32, 32, 32))).get(new)
    centres = {c: v[0] for c, v in model.localiser.centres(new).items()}
    windows = cut_windows(contexts, centres, (16, 16, 16))
    for cid in new.case_ids:
        assert masks[cid][0].shape == (16, 16, 16)
        np.testing.assert_allclose(grids[cid], windows[cid]["affine"])
        source = nib.load(str(new.table.loc[cid, "image"]))
        written = nib.load(str(tmp_path / "out" / "masks" / f"{cid}.nii.gz"))
        assert written.shape == source.shape[:3]
        np.testing.assert_allclose(written.affine, source.affine, atol=1e-5)
        # nothing outside the window: input voxels whose centre falls outside it are background
        inside = inside_of(source, grids[cid])
        data = np.asarray(written.dataobj)
        assert inside.any() and not inside.all() and not data[~inside].any()
        assert "window" in findings[cid]["segmentation"] and findings[cid]["mask"] == f"masks/{cid}.nii.gz"

    # the ideal window segmenter (the ground truth cut to the same windows), placed back: it matches the
    # input's own mask inside the window
    model.predict_masks = lambda cohort, ctx: {c: (windows[c]["seg"], (3.0, 3.0, 3.0)) for c in cohort.case_ids}
    _masks_and_findings(model, new, ctx, tmp_path / "ideal")
    checked = 0
    for cid in new.case_ids:
        source = nib.load(str(new.table.loc[cid, "image"]))
        written = np.asarray(nib.load(str(tmp_path / "ideal" / "masks" / f"{cid}.nii.gz")).dataobj)
        reference = _truth_on_input(new, cid) * inside_of(source, grids[cid])
        for k in np.unique(reference[reference > 0]):
            if (reference == k).sum() >= 20:
                assert _dice(written == k, reference == k) > 0.7, (cid, k)
                checked += 1
    assert checked >= 3


def inside_of(source, grid, size: int = 16) -> np.ndarray:
    """Input voxels whose centre falls inside the ``size``^3 window of voxel-to-world affine ``grid``."""
    ijk = np.indices(source.shape[:3]).reshape(3, -1)
    world = source.affine[:3, :3] @ ijk + source.affine[:3, 3:4]
    inv = np.linalg.inv(grid)
    win = np.rint(inv[:3, :3] @ world + inv[:3, 3:4])
    return np.all((win >= 0) & (win < size), axis=0).reshape(source.shape[:3])


def test_resampling_is_nearest_neighbour_through_both_affines():
    from resectbench.protocol.predict import resample_to

    rng = np.random.default_rng(0)
    mask = rng.integers(0, 16, (12, 10, 8)).astype(np.uint8)
    model = np.diag([3.0, 3.0, 3.0, 1.0])
    model[:3, 3] = (-18.0, -15.0, -12.0)
    source = np.diag([-1.1, -1.1, 2.5, 1.0])  # LPS-like in-plane, thick slices, oblique-free
    source[:3, 3] = (20.05, 16.05, -11.05)  # no voxel centre exactly between two (ties round either way)
    shape = (40, 34, 11)
    ijk = np.indices(shape).reshape(3, -1)
    src = np.linalg.inv(model) @ source @ np.vstack([ijk, np.ones(ijk.shape[1])])
    src = np.rint(src[:3]).astype(int)
    inside = np.all((src >= 0) & (src < np.array(mask.shape)[:, None]), axis=0)
    expected = np.zeros(ijk.shape[1], dtype=np.uint8)
    expected[inside] = mask[tuple(src[:, inside])]
    got = resample_to(mask, model, shape, source)
    assert got.shape == shape and got.dtype == np.uint8 and 0 < inside.mean() < 1
    np.testing.assert_array_equal(got, expected.reshape(shape))


# -- new patients: no labels, no masks ------------------------------------------------------------------
@pytest.fixture
def no_findings(monkeypatch):
    """Skip measuring contacts on the untrained network's scattered masks (seconds per case): these tests
    are about which cases are read and scored."""
    import resectbench.protocol.predict as predict_module

    monkeypatch.setattr(predict_module, "_masks_and_findings", lambda model, cohort, ctx, out: {})


def _unlabeled_copy(cohort, dest, keep_labels=()):
    """``cohort``'s folder as new patients come: images in imagesTs/ (MSD's test folder), no labelsTr/, no
    ground truth, a clinical.csv whose label cells are blank except for the cases in ``keep_labels``
    (no label column at all when ``keep_labels`` is empty)."""
    import shutil

    dest.mkdir()
    shutil.copytree(cohort.root / "imagesTr", dest / "imagesTs")
    shutil.copy(cohort.root / "dataset.json", dest / "dataset.json")
    table = pd.read_csv(cohort.root / "clinical.csv", dtype=str, keep_default_na=False)
    if keep_labels:
        table.loc[~table.case_id.isin(keep_labels), "label"] = ""
    else:
        table = table.drop(columns=["label"])
    table.to_csv(dest / "clinical.csv", index=False)
    return dest


def test_predict_reads_unlabeled_new_patients_and_scores_only_labelled_ones(setting, tmp_path, no_findings):
    run_dir, new, _ = setting
    labelled = _predict_frame(run_dir, new.root, tmp_path / "labelled")
    folder = _unlabeled_copy(new, tmp_path / "unlabeled")
    assert not (folder / "imagesTr").exists() and not (folder / "labelsTr").exists()
    res = CliRunner().invoke(
        build_app(), ["predict", str(run_dir / "cnn3d-fusion"), str(folder), "-o", str(tmp_path / "u")]
    )
    assert res.exit_code == 0, res.output
    unlabeled = pd.read_csv(tmp_path / "u" / "predictions.csv").set_index("case_id")
    assert "label" not in unlabeled.columns and not (tmp_path / "u" / "scores.json").exists()
    assert "scored" not in res.output
    probs = ["prob_resectable", "prob_borderline", "prob_locally_advanced"]
    # the labels never reach the model: the same probabilities with and without them
    np.testing.assert_allclose(unlabeled.loc[labelled.index, probs], labelled[probs], atol=1e-6)

    # some labelled: they are scored (only they), the others keep an empty label cell
    keep = new.case_ids[:2]
    partial = _unlabeled_copy(new, tmp_path / "partial", keep_labels=keep)
    res = CliRunner().invoke(
        build_app(), ["predict", str(run_dir / "cnn3d-fusion"), str(partial), "-o", str(tmp_path / "u")]
    )
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(tmp_path / "u" / "predictions.csv").set_index("case_id")
    truth = dict(zip(new.case_ids, new.labels))
    assert frame["label"].isna().sum() == 1 and all(frame.loc[c, "label"] == truth[c] for c in keep)
    scores = json.loads((tmp_path / "u" / "scores.json").read_text())
    assert scores["n_labelled"] == 2 and scores["n_cases"] == 3
    hits = sum(int(frame.loc[c, "pred"] == truth[c]) for c in keep)
    assert scores["accuracy"] == pytest.approx(hits / 2)
    assert "scored on 2 labelled of 3 cases" in " ".join(res.output.split())


def _predict_frame(run_dir, source, out) -> pd.DataFrame:
    res = CliRunner().invoke(build_app(), ["predict", str(run_dir / "cnn3d-fusion"), str(source), "-o", str(out)])
    assert res.exit_code == 0, res.output
    return pd.read_csv(out / "predictions.csv").set_index("case_id")


def test_predict_reads_a_plain_folder_of_images_and_names_what_a_fusion_model_lacks(setting, tmp_path, no_findings):
    import shutil

    run_dir, new, _ = setting
    plain = tmp_path / "plain"
    shutil.copytree(new.root / "imagesTr", plain)  # nnU-Net's inference input: case_0000.nii.gz files only
    res = CliRunner().invoke(
        build_app(), ["predict", str(run_dir / "cnn3d-fusion"), str(plain), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    assert "their clinical table has no column for age, sex," in said and "--allow-missing-variable bmi" in said
    # the clinical table beside the images is all the fusion model needs
    table = pd.read_csv(new.root / "clinical.csv", dtype=str, keep_default_na=False).drop(columns=["label"])
    table.to_csv(plain / "clinical.csv", index=False)
    frame = _predict_frame(run_dir, plain, tmp_path / "o")
    assert set(frame.index) == set(new.case_ids) and "label" not in frame.columns
    # a site that does not record a variable: named, then filled by the model's imputer when allowed, recorded
    table.drop(columns=["ca19_9_change"]).rename(columns={"glucose": "blood_glucose"}).to_csv(
        plain / "clinical.csv", index=False
    )
    (tmp_path / "site.toml").write_text('glucose = {column = "blood_glucose"}\n')
    argv = ["predict", str(run_dir / "cnn3d-fusion"), str(plain), "-o", str(tmp_path / "s")]
    res = CliRunner().invoke(build_app(), [*argv, "--data-dictionary", str(tmp_path / "site.toml")])
    assert res.exit_code == 2 and "--allow-missing-variable ca19_9_change" in " ".join(res.output.split())
    res = CliRunner().invoke(
        build_app(),
        [*argv, "--data-dictionary", str(tmp_path / "site.toml"), "--allow-missing-variable", "ca19_9_change"],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "s" / "findings.json").read_text())["imputed_variables"] == ["ca19_9_change"]
    res = CliRunner().invoke(build_app(), [*argv, "--allow-missing-variable", "ca19_9_absolute"])
    assert res.exit_code == 2 and "not a development variable" in res.output
    # a folder with no images says so
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(
        build_app(), ["predict", str(run_dir / "cnn3d-fusion"), str(tmp_path / "empty"), "-o", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "neither an MSD/nnU-Net folder" in " ".join(res.output.split())


def test_predict_out_that_is_a_file_is_refused_before_any_work(setting, tmp_path):
    run_dir, new, _ = setting
    target = tmp_path / "predictions.csv"
    target.write_text("keep me\n")
    res = CliRunner().invoke(build_app(), ["predict", str(run_dir / "cnn3d-fusion"), str(new.root), "-o", str(target)])
    assert res.exit_code == 2 and "is a file" in res.output
    assert target.read_text() == "keep me\n"
