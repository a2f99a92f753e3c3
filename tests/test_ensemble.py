"""``expert-ensemble``: decision-level fusion of separately fitted experts (models/recipes/ensemble.py)."""

from __future__ import annotations

import numpy as np
import pytest

from resectbench import registry as reg
from resectbench.data.synth import tiny_cohort
from resectbench.errors import RegistryError
from resectbench.models import persist
from resectbench.models.base import FitContext
from resectbench.models.recipes.ensemble import combine_probabilities
from resectbench.profiles import get_profile

# a segmenting image expert small enough for a test (SegResNet with 8 filters, one epoch)
IMAGE = {
    "image": "cnn3d-fusion",
    "image.max_epochs": 1,
    "image.batch_size": 4,
    "image.embed_dim": 16,
    "image.backbone.init_filters": 8,
}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return tiny_cohort(tmp_path_factory.mktemp("ensemble"), n=12, seed=2)


def test_combination_rules_on_known_probabilities():
    image = np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6]])
    clinical = np.array([[0.2, 0.7, 0.1], [0.2, 0.2, 0.6]])
    mean = combine_probabilities(image, clinical, 0.5, "arithmetic")
    np.testing.assert_allclose(mean[0], [0.5, 0.4, 0.1])
    geo = combine_probabilities(image, clinical, 0.5, "geometric")
    expected = np.sqrt(image[0] * clinical[0])
    np.testing.assert_allclose(geo[0], expected / expected.sum())
    # agreeing experts give back their common answer; weight 1 is the image expert alone
    np.testing.assert_allclose(geo[1], image[1])
    np.testing.assert_allclose(combine_probabilities(image, clinical, 1.0, "geometric"), image)
    # a class one expert rules out (probability 0) stays unlikely, but is not a division by zero
    vetoed = combine_probabilities(np.array([[0.0, 0.5, 0.5]]), np.array([[0.9, 0.05, 0.05]]), 0.5, "geometric")
    assert np.isfinite(vetoed).all() and vetoed[0, 0] < 0.05


def test_bad_parameters_are_named():
    with pytest.raises(RegistryError, match="'lr'.*image.lr"):
        reg.models.create("expert-ensemble", lr=0.1)
    with pytest.raises(ValueError, match="combine"):
        reg.models.create("expert-ensemble", combine="median")
    with pytest.raises(ValueError, match="image_weight"):
        reg.models.create("expert-ensemble", image_weight=1.5)


def test_experts_predict_what_they_predict_alone_and_are_fused(cohort, tmp_path):
    ctx = FitContext(seed=5, cache_dir=tmp_path / "cache", profile=get_profile("cpu-whole"))
    train, valid, test = (cohort.subset(cohort.case_ids[a:b]) for a, b in ((0, 7), (7, 9), (9, 12)))
    ensemble = reg.models.create("expert-ensemble", combine="arithmetic", image_weight=0.25, **IMAGE)
    assert ensemble.uses_validation  # the neural expert stops early on the validation part
    ensemble.fit(train, valid, ctx)
    # the same models fitted on their own, with the same seed, predict exactly the same
    image_params = {k.removeprefix("image."): v for k, v in IMAGE.items() if k != "image"}
    image = reg.models.create("cnn3d-fusion", **image_params).fit(train, valid, ctx)
    clinical = reg.models.create("clinical-sklearn").fit(train, valid, ctx)
    p_image, p_clinical = image.predict_proba(test, ctx), clinical.predict_proba(test, ctx)
    np.testing.assert_allclose(ensemble.experts["image"].predict_proba(test, ctx), p_image, atol=1e-6)
    np.testing.assert_allclose(ensemble.predict_proba(test, ctx), 0.25 * p_image + 0.75 * p_clinical, atol=1e-6)
    # masks, Dice and parameters come from the experts
    assert set(ensemble.predict_masks(test, ctx)) == set(test.case_ids)
    assert set(ensemble.extra_outputs(test, ctx)["dice"]) == set(test.case_ids)
    assert ensemble.n_parameters() == image.n_parameters() + clinical.n_parameters()
    assert ensemble.history and ensemble.history == ensemble.experts["image"].history


def test_saved_ensemble_loads_back_each_expert_in_its_own_folder(cohort, tmp_path):
    ctx = FitContext(seed=1, cache_dir=tmp_path / "cache", profile=get_profile("cpu-whole"))
    train, test = cohort.subset(cohort.case_ids[:9]), cohort.subset(cohort.case_ids[9:])
    create = lambda: reg.models.create("expert-ensemble", **IMAGE)  # noqa: E731
    model = create().fit(train, None, ctx)
    state = persist.save_model(model, tmp_path / "s", train_ids=train.case_ids, valid_ids=None)
    assert state["kind"] == "ensemble"
    experts = tmp_path / "s" / persist.EXPERTS_DIR
    assert (experts / "image" / persist.WEIGHTS).exists()  # the network: weights only
    assert persist.read_state(experts / "clinical")["kind"] == "refit"  # scikit-learn: refitted on load
    with pytest.raises(persist.ModelStateError, match="development cohort"):
        persist.load_model(tmp_path / "s", create, ctx)
    loaded = persist.load_model(tmp_path / "s", create, ctx, development=lambda: cohort)
    assert loaded is not model
    np.testing.assert_allclose(loaded.predict_proba(test, ctx), model.predict_proba(test, ctx), atol=1e-6)
    # an ensemble of other roles (or another recipe) is refused with the folder named
    with pytest.raises(persist.ModelStateError, match="experts"):
        persist.load_model(
            tmp_path / "s", lambda: reg.models.create("clinical-sklearn"), ctx, development=lambda: cohort
        )


def test_a_fitted_expert_is_shared_with_its_own_row(cohort, tmp_path):
    """One network fit per (recipe, parameters, cases, seed, profile) where the run gives a store."""
    from resectbench.models.shared_fits import fit_shared

    store = tmp_path / "fitted"
    ctx = FitContext(seed=3, cache_dir=tmp_path / "cache", profile=get_profile("cpu-whole"), fitted_store=store)
    train, valid, test = (cohort.subset(cohort.case_ids[a:b]) for a, b in ((0, 7), (7, 9), (9, 12)))
    image_params = {k.removeprefix("image."): v for k, v in IMAGE.items() if k != "image"}
    # the row (the protocol passes trial 0's defaults explicitly: the same fit)
    row = fit_shared("cnn3d-fusion", {**image_params, "seg_ce": 0.4, "lr": None}, train, valid, ctx)
    assert not getattr(row, "reused", False) and len(list(store.iterdir())) == 1
    ensemble = reg.models.create("expert-ensemble", **IMAGE).fit(train, valid, ctx)
    expert = ensemble.experts["image"]
    assert expert.reused and len(list(store.iterdir())) == 1  # loaded, not trained again
    np.testing.assert_array_equal(expert.predict_proba(test, ctx), row.predict_proba(test, ctx))
    assert expert.history == row.history
    # another seed or other cases are another fit
    other = fit_shared("cnn3d-fusion", image_params, train, valid, FitContext(**{**ctx.__dict__, "seed": 4}))
    assert not getattr(other, "reused", False) and len(list(store.iterdir())) == 2
    # without a store nothing is written
    plain = fit_shared("cnn3d-fusion", image_params, train, valid, FitContext(seed=3, profile=get_profile("cpu-whole")))
    assert not getattr(plain, "reused", False)
