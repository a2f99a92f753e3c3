"""Cached image preprocessing, augmentation and clinical preprocessing."""

import numpy as np
import pandas as pd
import pytest

from resectbench.data.clinical import ClinicalPreprocessor
from resectbench.data.images import ImageConfig, VolumeStore
from resectbench.data.labels import INDEX
from resectbench.data.synth import tiny_cohort
from resectbench.data.transforms import train_augmentation
from resectbench.errors import DataError

CONFIG = ImageConfig(target_spacing=(3.0, 3.0, 3.0), roi=(24, 24, 24))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return tiny_cohort(tmp_path_factory.mktemp("pre"), n=6, seed=2)


def test_volume_store_preprocesses_each_case_once(cohort, tmp_path):
    store = VolumeStore(tmp_path, CONFIG)
    vols = store.get(cohort)
    assert store.stats == {"hits": 0, "misses": 6}
    v = vols[cohort.case_ids[0]]
    assert v["image"].shape == (1, 24, 24, 24) and v["image"].dtype == np.float32
    assert v["seg"].shape == (24, 24, 24) and v["seg"].dtype == np.uint8 and v["has_mask"]
    assert abs(float(v["image"].mean())) < 1e-3 and abs(float(v["image"].std()) - 1) < 1e-3
    assert (v["seg"] == INDEX["tumor"]).any()
    # a second store on the same directory (another fold, another trial, another process) only reads
    again = VolumeStore(tmp_path, CONFIG)
    vols2 = again.get(cohort.subset(cohort.case_ids[:3]))
    assert again.stats == {"hits": 3, "misses": 0}
    np.testing.assert_array_equal(vols2[cohort.case_ids[0]]["image"], v["image"])
    # another configuration is another cache entry
    other = VolumeStore(tmp_path, ImageConfig(target_spacing=(3.0, 3.0, 3.0), roi=(24, 24, 24), hu_clip=(-100, 200)))
    other.get(cohort.subset(cohort.case_ids[:1]))
    assert other.stats["misses"] == 1


def test_cache_key_follows_file_content(cohort, tmp_path):
    import shutil

    from resectbench.data import load_cohort

    copy = tmp_path / "copy"
    shutil.copytree(cohort.root, copy)
    c2 = load_cohort(copy)
    store = VolumeStore(tmp_path / "cache", CONFIG)
    cid = c2.case_ids[0]
    assert store.key(c2, cid) == store.key(cohort, cid)  # same bytes elsewhere: same entry
    import nibabel as nib

    img = nib.load(c2.table.loc[cid, "image"])
    data = np.asarray(img.dataobj).copy()
    data[0, 0, 0] += 100
    nib.save(nib.Nifti1Image(data, img.affine), c2.table.loc[cid, "image"])
    assert store.key(c2, cid) != store.key(cohort, cid)


def test_image_crop_centre_is_mask_free(cohort, tmp_path):
    """Default preprocessing must not look at the mask (inference is mask-free)."""
    import shutil

    from resectbench.data import load_cohort

    copy = tmp_path / "nomask"
    shutil.copytree(cohort.root, copy)
    shutil.rmtree(copy / "labelsTr")
    no_mask = load_cohort(copy)
    a = VolumeStore(tmp_path / "a", CONFIG).get(cohort)
    b = VolumeStore(tmp_path / "b", CONFIG).get(no_mask)
    cid = cohort.case_ids[1]
    np.testing.assert_array_equal(a[cid]["image"], b[cid]["image"])
    assert not b[cid]["has_mask"] and not b[cid]["seg"].any()


def test_mask_centred_crop_contains_the_tumor(cohort, tmp_path):
    cfg = ImageConfig(target_spacing=(3.0, 3.0, 3.0), roi=(16, 16, 16), crop_center="mask")
    for v in VolumeStore(tmp_path, cfg).get(cohort).values():
        assert (v["seg"] == INDEX["tumor"]).any()


def test_train_augmentation_is_seeded_and_keeps_seg_aligned(cohort, tmp_path):
    v = VolumeStore(tmp_path, CONFIG).get(cohort)[cohort.case_ids[0]]
    data = {"image": v["image"], "seg": v["seg"]}
    a1 = train_augmentation(CONFIG, seed=3)
    a2 = train_augmentation(CONFIG, seed=3)
    outs1 = [a1(dict(data)) for _ in range(4)]
    outs2 = [a2(dict(data)) for _ in range(4)]
    for o1, o2 in zip(outs1, outs2):
        assert o1["image"].shape == (1, 24, 24, 24) and o1["seg"].shape == (24, 24, 24)
        assert str(o1["seg"].dtype) == "torch.uint8"
        assert np.array_equal(o1["image"].numpy(), o2["image"].numpy())
    assert any(not np.allclose(o["image"].numpy(), v["image"]) for o in outs1)
    # a pure flip moves image and seg together
    from resectbench.data.transforms import AugmentationConfig

    flip = AugmentationConfig(flip_prob=1.0, rot90_prob=0, affine_prob=0, noise_prob=0, shift_prob=0)
    o = train_augmentation(flip, seed=0)(dict(data))
    np.testing.assert_allclose(o["image"].numpy(), v["image"][:, ::-1, ::-1, ::-1], atol=1e-6)
    np.testing.assert_array_equal(o["seg"].numpy(), v["seg"][::-1, ::-1, ::-1])


def _clinical(cohort):
    return cohort.clinical, cohort.clinical_schema


def test_clinical_preprocessor_shapes_and_names(cohort):
    df, schema = _clinical(cohort)
    pre = ClinicalPreprocessor().fit(df, schema)
    x = pre.transform(df)
    names = pre.feature_names_out()
    assert x.dtype == np.float32 and x.shape == (len(df), len(names))
    assert np.isfinite(x).all()
    assert "age" in names and any(n.startswith("sex_") for n in names) and any(n.startswith("grade_") for n in names)
    without_grade = ClinicalPreprocessor(exclude=("grade",)).fit(df, schema).feature_names_out()
    assert not any(n.startswith("grade") for n in without_grade)
    assert len(without_grade) == len(names) - sum(n.startswith("grade_") for n in names)


def test_held_out_rows_do_not_influence_fitted_statistics():
    from resectbench.data.schema import CLINICAL_SCHEMA

    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {
            "age": rng.normal(65, 8, 40),
            "ca19_9_baseline": rng.lognormal(5, 1, 40),
            "diabetes": rng.integers(0, 2, 40).astype(float),
            "grade": rng.choice(["G1", "G2", "G3"], 40).astype(object),
        },
        index=[f"t{i}" for i in range(40)],
    )
    train.iloc[3, 0] = np.nan
    train.iloc[5, 3] = None
    schema = {c: CLINICAL_SCHEMA[c] for c in train.columns}
    test = pd.DataFrame(
        {
            "age": [20.0, np.nan, 99.0],
            "ca19_9_baseline": [1e5, 3.0, np.nan],
            "diabetes": [np.nan, 1.0, 0.0],
            "grade": ["G3", None, "G9"],
        },
        index=["a", "b", "c"],
    )
    pre = ClinicalPreprocessor().fit(train, schema)
    before = pre.transform(train)
    scale = pre.pipeline_.named_transformers_["continuous"].named_steps["scale"]
    mean_before = scale.mean_.copy()
    out_test = pre.transform(test)  # transforming held-out rows must not refit anything
    np.testing.assert_array_equal(pre.transform(train), before)
    np.testing.assert_array_equal(scale.mean_, mean_before)
    np.testing.assert_allclose(mean_before, train[["age", "ca19_9_baseline"]].mean().to_numpy(), rtol=1e-9)
    # fitting with extra held-out-like rows would change the statistics: the test can fail
    pooled = ClinicalPreprocessor().fit(pd.concat([train, test]), schema)
    assert not np.allclose(pooled.pipeline_.named_transformers_["continuous"].named_steps["scale"].mean_, mean_before)
    # the test row's missing age is imputed from training neighbours only
    assert np.isfinite(out_test).all()
    names = pre.feature_names_out()
    assert out_test[2, names.index("grade_G1")] == out_test[2, names.index("grade_G2")] == 0.0  # unseen 'G9'


def test_clinical_preprocessor_errors_name_the_problem():
    from resectbench.data.schema import CLINICAL_SCHEMA

    pre = ClinicalPreprocessor()
    with pytest.raises(DataError, match="before fit"):
        pre.transform(pd.DataFrame({"age": [1.0]}))
    pre.fit(pd.DataFrame({"age": [60.0, 70.0]}), {"age": CLINICAL_SCHEMA["age"]})
    with pytest.raises(DataError, match="age"):
        pre.transform(pd.DataFrame({"bmi": [20.0]}))
