"""The cascade (models/cascade.py): windows in world coordinates, the guarded tumour centre, a localiser
trained on training cases only, and a recipe that sees fine windows around predicted centres."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from resectbench import registry
from resectbench.data.labels import INDEX
from resectbench.data.transforms import crop_around, world_to_voxel
from resectbench.models.base import FitContext
from resectbench.models.cascade import cut_windows, train_localiser, true_centres, tumour_centre_vox
from resectbench.profiles import Cascade, get_profile

T, P = INDEX["tumor"], INDEX["pancreas"]


def test_crop_around_places_the_centre_voxel_in_the_middle_and_pads_outside():
    a = np.arange(10**3, dtype=np.float32).reshape(10, 10, 10)
    w = crop_around(a, (5, 5, 5), (4, 4, 4), pad_value=-1)
    assert w.shape == (4, 4, 4) and w[2, 2, 2] == a[5, 5, 5] and w[0, 0, 0] == a[3, 3, 3]
    edge = crop_around(a[None], (0, 9, 4), (4, 4, 4), pad_value=-1)  # channel axis kept
    assert edge.shape == (1, 4, 4, 4)
    assert edge[0, 2, 2, 2] == a[0, 9, 4] and edge[0, 0, 0, 0] == -1 and edge[0, 2, 3, 2] == -1
    assert (crop_around(a, (50, 50, 50), (4, 4, 4), pad_value=7) == 7).all()  # entirely outside


def test_cut_windows_keep_world_coordinates():
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    affine[:3, 3] = (-30.0, 10.0, 5.0)
    seg = np.zeros((20, 20, 20), dtype=np.uint8)
    seg[12:15, 4:7, 9:12] = T  # tumour centred on voxel (13, 5, 10)
    vol = {
        "c": {
            "image": np.random.default_rng(0).normal(size=(1, 20, 20, 20)).astype(np.float32),
            "seg": seg,
            "has_mask": True,
            "affine": affine,
        }
    }
    centre = true_centres(vol)["c"]
    np.testing.assert_allclose(centre, affine[:3, :3] @ (13, 5, 10) + affine[:3, 3])
    win = cut_windows(vol, {"c": centre}, (6, 6, 6))["c"]
    assert win["image"].shape == (1, 6, 6, 6) and win["seg"][3, 3, 3] == T
    # the window's affine maps its own voxels to the same world points as the context's
    np.testing.assert_allclose(world_to_voxel(win["affine"], centre), (3, 3, 3))
    assert win["image"][0, 3, 3, 3] == vol["c"]["image"][0, 13, 5, 10]


def test_tumour_centre_prefers_the_blob_next_to_the_pancreas_over_a_bigger_stray_one():
    m = np.zeros((30, 30, 30), dtype=np.uint8)
    m[2:10, 2:10, 2:10] = T  # large blob far from the pancreas (a false positive)
    m[18:26, 15:19, 15:19] = P
    m[20:23, 19:22, 15:18] = T  # small blob touching the pancreas
    centre, source = tumour_centre_vox(m)
    assert source == "tumour"
    np.testing.assert_allclose(centre, (21, 20, 16))
    m[m == T] = 0
    centre, source = tumour_centre_vox(m)
    assert source == "pancreas" and np.allclose(centre, (21.5, 16.5, 16.5))
    assert tumour_centre_vox(np.zeros((4, 4, 4), dtype=np.uint8)) == (None, "none")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from resectbench.data.synth import tiny_cohort

    return tiny_cohort(tmp_path_factory.mktemp("cohort"), n=9)


@pytest.fixture()
def ctx(tmp_path_factory):
    cascade = Cascade(
        context_roi=(32, 32, 32),
        localiser_spacing_mm=(6.0, 6.0, 6.0),
        localiser_roi=(16, 16, 16),
        localiser_epochs=2,
        jitter_vox=2,
    )
    profile = get_profile("cpu-cascade").with_(target_spacing_mm=(3.0, 3.0, 3.0), cascade=cascade)
    return FitContext(
        seed=0,
        profile=profile,
        cache_dir=tmp_path_factory.getbasetemp() / "cascade-cache",
        work_dir=tmp_path_factory.mktemp("work"),
    )


def test_localiser_is_trained_once_per_training_set_and_reads_no_test_mask(cohort, ctx):
    train = cohort.subset(cohort.case_ids[:6])
    test = cohort.subset(cohort.case_ids[6:])
    unmasked = dataclasses.replace(test, table=test.table.assign(mask=None))
    localiser = train_localiser(train, ctx, ctx.profile.cascade)
    assert len(localiser.history) == 2
    cached = list((ctx.cache_dir / "localisers").glob("*.pt"))
    assert len(cached) == 1
    again = train_localiser(train, ctx, ctx.profile.cascade)  # same cases and settings: loaded, not trained
    assert again.history == [] and len(list((ctx.cache_dir / "localisers").glob("*.pt"))) == 1
    with_masks, without = localiser.centres(test), localiser.centres(unmasked)
    for cid in test.case_ids:
        np.testing.assert_allclose(with_masks[cid][0], without[cid][0])  # masks are never read
        assert with_masks[cid][1] in ("tumour", "pancreas", "none")
    train_localiser(cohort.subset(cohort.case_ids[:5]), ctx, ctx.profile.cascade)  # other cases: a new one
    assert len(list((ctx.cache_dir / "localisers").glob("*.pt"))) == 2


def test_recipe_sees_fine_windows_around_predicted_centres_mask_free(cohort, ctx):
    ids = cohort.case_ids
    train, valid, test = cohort.subset(ids[:4]), cohort.subset(ids[4:7]), cohort.subset(ids[7:])
    unmasked = dataclasses.replace(test, table=test.table.assign(mask=None))
    model = registry.models.create("swinunetr-fusion", max_epochs=1, batch_size=2, feature_size=12, embed_dim=16)
    model.fit(train, valid, ctx)
    assert model.net.backbone.roi == tuple(ctx.profile.roi)
    proba = model.predict_proba(unmasked, ctx)
    assert proba.shape == (2, 3) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_allclose(model.predict_proba(test, ctx), proba)
    extra = model.extra_outputs(test, ctx)
    assert set(extra["localisation_mm"]) == set(test.case_ids)
    assert all(np.isfinite(v) and v >= 0 for v in extra["localisation_mm"].values())
    assert set(extra["dice"]) == set(test.case_ids)
    assert model.describe()["cascade"]["context_roi"] == (32, 32, 32)


def test_geometric_rules_measure_contact_in_the_window_of_a_cascade_profile(cohort, ctx):
    from resectbench.models.cascade import WindowSegmenter

    ids = cohort.case_ids
    train, test = cohort.subset(ids[:6]), cohort.subset(ids[6:])
    unmasked = dataclasses.replace(test, table=test.table.assign(mask=None))
    model = registry.models.create("geometric-rules", segmenter_epochs=2).fit(train, None, ctx)
    assert isinstance(model.segmenter, WindowSegmenter) and len(model.segmenter.history) == 2
    masks = model.segmenter.predict_masks(unmasked)
    assert set(masks) == set(test.case_ids)
    for mask, spacing in masks.values():
        assert mask.shape == tuple(ctx.profile.roi) and spacing == tuple(ctx.profile.target_spacing_mm)
    proba = model.predict_proba(unmasked, ctx)
    assert proba.shape == (3, 3) and np.allclose(proba.sum(axis=1), 1)
    assert len(list((ctx.cache_dir / "window-segmenters").glob("*.pt"))) == 1


def test_geometric_recipe_sets_its_own_localiser_budget_without_touching_the_profile(cohort, ctx):
    train = cohort.subset(cohort.case_ids[:6])
    model = registry.models.create("geometric-rules", segmenter_epochs=1, localiser_epochs=3).fit(train, None, ctx)
    localiser = model.segmenter.localiser
    assert len(localiser.history) == 3 and localiser.cascade.localiser_epochs == 3  # the profile says 2
    assert ctx.profile.cascade.localiser_epochs == 2
    default = registry.models.create("geometric-rules", segmenter_epochs=1).fit(train, None, ctx)
    assert default.segmenter.localiser.cascade.localiser_epochs == 2
