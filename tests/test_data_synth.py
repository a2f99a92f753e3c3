"""Synthetic phantom cohort: deterministic, loadable with no special case, exact class mix, contact
built where the ground truth says and nowhere else."""

import numpy as np
import pandas as pd
import pytest

from resectbench.data import load_cohort
from resectbench.data.labels import INDEX
from resectbench.data.synth import class_counts, generate_cohort, tiny_cohort
from resectbench.data.synth.scenario import RULED, bayes_optimal_accuracy, draw_scenario
from resectbench.geometry.nccn import classify


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return tiny_cohort(tmp_path_factory.mktemp("synth"), n=9, seed=0)


def test_class_counts_follow_the_paper_mix():
    assert class_counts(159) == [85, 47, 27]
    assert class_counts(20) == [11, 6, 3]
    assert min(class_counts(3)) == 1


def test_tiny_cohort_has_all_classes_and_loads(cohort):
    assert len(cohort) == 9
    assert set(cohort.labels.tolist()) == {0, 1, 2}
    assert cohort.info["source"] == "synthetic" and cohort.info["bayes_optimal_accuracy"] == 1.0
    assert set(cohort.clinical.columns) >= {"age", "ca19_9_baseline", "hba1c", "grade", "neoadjuvant"}
    assert len(cohort.clinical.columns) == 17


def test_ground_truth_labels_are_the_rule_engine_class(cohort):
    gt = cohort.ground_truth
    for cid, row in gt.iterrows():
        d = classify(
            {v: row[f"angle_{v}"] for v in RULED},
            row["tumor_location"],
            vein_contour_irregular=bool(row["vein_contour_irregular"]),
            reconstructable=bool(row["reconstructable"]),
            cha_reaches_ca_or_bifurcation=bool(row["cha_reaches_ca_or_bifurcation"]),
        )
        assert d.label == row["label_true"] == row["label"]
    np.testing.assert_array_equal(gt.loc[cohort.case_ids, "label"].to_numpy(), cohort.labels)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate_cohort(tmp_path / "a", n=3, seed=5, profile="tiny", workers=1)
    b = generate_cohort(tmp_path / "b", n=3, seed=5, profile="tiny", workers=2)
    c = generate_cohort(tmp_path / "c", n=3, seed=6, profile="tiny", workers=1)
    fa, fb, fc = (load_cohort(p).fingerprint for p in (a, b, c))
    assert fa == fb != fc
    assert (a / "clinical.csv").read_text() == (b / "clinical.csv").read_text()


def test_every_case_has_all_structures_and_a_tumor(cohort):
    for cid in cohort.case_ids[:4]:
        case = cohort.load_case(cid)
        present = set(np.unique(case.mask).tolist())
        for s in ("pancreas", "tumor", "aorta", "sma", "smv", "portal_vein", "ivc"):
            assert INDEX[s] in present, (cid, s)
        tumor_hu = case.image[case.mask == INDEX["tumor"]].mean()
        pancreas_hu = case.image[case.mask == INDEX["pancreas"]].mean()
        assert tumor_hu < pancreas_hu  # hypo- (or at least iso-) attenuating


def _touching(mask, a, b):
    """Voxels of structure a that have a face-neighbour of structure b."""
    from scipy import ndimage

    return ndimage.binary_dilation(mask == INDEX[b]) & (mask == INDEX[a])


def test_tumor_touches_exactly_the_vessels_the_ground_truth_names(cohort):
    for cid in cohort.case_ids:
        mask = cohort.load_case(cid).mask
        row = cohort.ground_truth.loc[cid]
        for vessel in ("sma", "celiac_trunk", "common_hepatic_artery", "smv", "portal_vein", "ivc"):
            touched = _touching(mask, "tumor", vessel).any()
            if row[f"angle_{vessel}"] == 0:
                assert not touched, (cid, vessel)


def test_rater_noise_changes_labels_and_lowers_the_ceiling(tmp_path):
    scs = [draw_scenario(np.random.default_rng([0, i, 0]), t) for i, t in enumerate([0, 1, 2] * 20)]
    assert bayes_optimal_accuracy(scs, 0.0) == 1.0
    acc = bayes_optimal_accuracy(scs, 40.0, draws=100)
    assert 0.5 < acc < 1.0
    c = generate_cohort(tmp_path / "n", n=6, seed=1, profile="tiny", rater_noise_deg=60.0, workers=1, bayes_draws=50)
    meta = load_cohort(c).info
    assert 0.3 < meta["bayes_optimal_accuracy"] <= 1.0


def test_clinical_links_to_class_and_location(tmp_path):
    from resectbench.data.synth.clinical import draw_clinical

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 300)
    locations = ["head" if i % 2 else "tail" for i in range(900)]
    df = draw_clinical(rng, labels, locations)
    ca = pd.to_numeric(df["ca19_9_baseline"])
    assert ca[labels == 2].median() > ca[labels == 0].median()
    bili = pd.to_numeric(df["bilirubin"])
    head = np.array(locations) == "head"
    assert bili[head].median() > bili[~head].median()
    neo = pd.to_numeric(df["neoadjuvant"])
    assert neo[labels > 0].mean() > neo[labels == 0].mean() + 0.3
    assert 0.02 < df.isna().to_numpy().mean() < 0.06
    assert df["hba1c"].isna().mean() == max(df[c].isna().mean() for c in df.columns)


def test_cohort_folder_has_readme_dictionary_and_schema(cohort):
    root = cohort.root
    for name in ("README.md", "data_dictionary.csv", "ground_truth.csv", "clinical.csv", "dataset.json"):
        assert (root / name).exists(), name
    dictionary = pd.read_csv(root / "data_dictionary.csv")
    assert len(dictionary) == 17 and {"variable", "kind", "unit"} <= set(dictionary.columns)
    assert cohort.clinical_schema["ca19_9_baseline"].unit == "U/mL"
    assert cohort.clinical_schema["grade"].leak_risk


def test_cases_are_stored_in_varied_orientations_and_read_back_in_ras(cohort):
    import nibabel as nib

    stored = {"".join(nib.aff2axcodes(nib.load(str(p)).affine)) for p in cohort.table["image"]}
    assert len(stored) > 1
    for cid in cohort.case_ids[:3]:
        assert "".join(nib.aff2axcodes(cohort.load_case(cid).affine)) == "RAS"


def test_default_cohort_is_generated_once_and_reused(tmp_path, monkeypatch):
    from resectbench.data import default_cohort
    from resectbench.data.cache import default_cohort_dir

    monkeypatch.setenv("RESECTBENCH_CACHE", str(tmp_path / "cache"))
    first = default_cohort("tiny", seed=3)
    target = default_cohort_dir("tiny", 3)
    assert str(target).startswith(str(tmp_path / "cache")) and (target / ".complete").exists()
    stamp = (target / "clinical.csv").stat().st_mtime_ns
    calls = []
    second = default_cohort("tiny", seed=3, on_progress=lambda *a: calls.append(a))
    assert second.fingerprint == first.fingerprint and not calls
    assert (target / "clinical.csv").stat().st_mtime_ns == stamp


# --- the voxels show what the ground truth states (cpu-profile grid: 64^3 at 1.5 mm, anatomy scaled 0.6) ----


def _render_cpu(sc, seed: int, tries: int = 12):
    """Render one scenario on the cpu profile's grid, redrawing the anatomy as generate_cohort does."""
    from resectbench.data.synth.anatomy import sample_anatomy
    from resectbench.data.synth.phantom import Grid, PlacementError, render

    grid = Grid((64, 64, 64), (1.5, 1.5, 1.5))
    for attempt in range(tries):
        rng = np.random.default_rng([seed, attempt])
        anat = sample_anatomy(rng, 96.0 / 160.0, 2.4 * 1.5, dilated_ducts=sc.location == "head", step=0.45)
        try:
            labels, _, details = render(anat, sc, grid, rng)
            return labels, grid, details, anat
        except PlacementError:
            continue
    raise AssertionError(f"seed {seed}: no placement in {tries} tries")


def _scenario(**kw):
    from resectbench.data.synth.scenario import Scenario

    return Scenario(location=kw.pop("location", "head"), contacts=kw.pop("contacts"), **kw)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cha_contact_reaches_the_celiac_trunk_exactly_when_the_truth_says_so(seed):
    from resectbench.baselines.geometric_measure import RuleThresholds
    from resectbench.geometry.findings import cha_reach_mm

    limit = RuleThresholds().cha_reach_mm
    for reaches in (False, True):
        sc = _scenario(contacts={"common_hepatic_artery": 120.0}, cha_reaches_ca_or_bifurcation=reaches)
        labels, grid, details, anat = _render_cpu(sc, seed)
        p = details["sectors"]["common_hepatic_artery"]
        length = anat.tubes["common_hepatic_artery"].length
        reach = cha_reach_mm(labels, grid.spacing)
        if reaches:
            assert p["s0"] == 0.0 and reach <= limit, (seed, reach)
        else:  # clear of both ends (not clipped to the CA origin or the bifurcation) and measured so
            assert p["s0"] > 0.0 and p["s1"] < length, (seed, p, length)
            assert reach > limit, (seed, reach)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_irregular_vein_dent_is_visible_and_a_smooth_vein_is_not_irregular(seed):
    from resectbench.baselines.geometric_measure import RuleThresholds
    from resectbench.geometry import measure_case

    limit = RuleThresholds().deformity
    for irregular in (True, False):
        sc = _scenario(contacts={"smv": 85.0}, vein_contour_irregular=irregular)
        labels, grid, _, _ = _render_cpu(sc, seed)
        row = measure_case(labels, grid.spacing).set_index("vessel").loc["smv"]
        assert row["contact_deg"] > 0
        assert (row["vein_deformity"] > limit) == irregular, (seed, irregular, row["vein_deformity"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wide_contacts_show_in_the_mask_and_untouched_vessels_have_no_touching_voxel(seed):
    from scipy import ndimage

    from resectbench.data.synth.phantom import VESSEL_TUBES
    from resectbench.geometry import measure_case

    sc = _scenario(location="body", contacts={"sma": 230.0})
    labels, grid, _, _ = _render_cpu(sc, seed)
    table = measure_case(labels, grid.spacing).set_index("vessel")
    assert table.loc["sma", "contact_deg"] > 180.0, seed
    grown = ndimage.binary_dilation(labels == INDEX["tumor"], structure=np.ones((3, 3, 3)))  # 26-adjacency
    for vessel in VESSEL_TUBES:
        if vessel != "sma":
            assert not (grown & (labels == INDEX[vessel])).any(), vessel
            assert table.loc[vessel, "contact_deg"] == 0.0, vessel


def test_coverage_check_needs_one_cross_section_to_show_the_angle():
    """A sector whose pieces show different angles in different planes must be refused even when they add up."""
    from resectbench.data.synth.phantom import Near, PlacementError, _check_sector_coverage

    vox = 1.0
    shape = (40, 40, 40)
    labels = np.zeros(shape, np.uint8)
    # a straight vessel along z through the centre; tumor ring voxels just outside it in two halves, at two heights
    ii, jj, kk = np.meshgrid(*[np.arange(40)] * 3, indexing="ij")
    dx, dy = ii - 19.5, jj - 19.5
    dist = np.hypot(dx, dy)
    angle = np.arctan2(dy, dx)
    labels[dist < 6.0] = INDEX["sma"]
    shell = (dist >= 6.0) & (dist < 7.4)
    labels[shell & (kk >= 5) & (kk < 15) & (angle > 0)] = INDEX["tumor"]
    labels[shell & (kk >= 25) & (kk < 35) & (angle <= 0)] = INDEX["tumor"]
    sel = dist < 9.0
    near = {
        "sma": Near(np.flatnonzero(sel.ravel()), dist[sel], kk[sel].astype(float), np.full(sel.sum(), 6.0), angle[sel])
    }
    sector = {"sma": dict(tube="sma", s0=0.0, s1=39.0, phi0=0.0, half=np.pi)}
    with pytest.raises(PlacementError):
        _check_sector_coverage(labels, near, sector, vox)
    labels[shell & (kk >= 25) & (kk < 35)] = INDEX["tumor"]  # one part shows all of it: accepted
    _check_sector_coverage(labels, near, sector, vox)


def test_site_b_is_another_phantom_style_read_back_through_its_own_conventions(tmp_path):
    """The second phantom style (another centre): its own label numbering and names, RAS and LPS storage,
    fine in-plane voxels with thick slices; the reader maps it back to canonical structures."""
    import json

    import nibabel as nib

    from resectbench.data.synth.generate import SITES

    out = generate_cohort(tmp_path / "b", n=4, seed=1, profile="site-b", workers=1, class_mix=(2, 1, 1))
    names = json.loads((out / "dataset.json").read_text())["labels"]
    assert names["pdac"] == 13 and names["superior_mesenteric_artery"] == 6 and names["pancreas"] == 12
    gt = pd.read_csv(out / "ground_truth.csv")
    assert set(gt["orientation"]) <= {"RAS", "LPS"}
    assert gt["spacing_x"].between(0.7, 0.9).all() and gt["spacing_z"].between(1.0, 3.0).all()
    cohort = load_cohort(out)
    assert list(cohort.labels) == list(gt["label"])
    case = cohort.load_case(cohort.case_ids[0])
    raw = nib.load(out / "labelsTr" / f"{cohort.case_ids[0]}.nii.gz").get_fdata()
    # the file holds the site's numbering; the reader gives canonical indices with the same voxel counts
    assert (raw == 13).sum() == (case.mask == INDEX["tumor"]).sum() > 0
    assert (raw == 6).sum() == (case.mask == INDEX["sma"]).sum() > 0
    fov = np.asarray(case.image.shape) * np.abs(np.diag(case.affine)[:3])
    np.testing.assert_allclose(fov, SITES["site-b"].fov_mm, rtol=0.05)
