"""Saving and loading fitted recipes without pickle (resectbench.models.persist)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from resectbench import registry as reg
from resectbench.data.synth import tiny_cohort
from resectbench.models import persist
from resectbench.models.base import FitContext


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return tiny_cohort(tmp_path_factory.mktemp("persist"), n=12, seed=1)


def test_network_recipe_round_trip_predicts_the_same(cohort, tmp_path):
    ctx = FitContext(seed=3, cache_dir=tmp_path / "cache")
    train, valid = cohort.subset(cohort.case_ids[:9]), cohort.subset(cohort.case_ids[9:])
    model = reg.models.create("clinical-only", max_epochs=2).fit(train, valid, ctx)
    state = persist.save_model(model, tmp_path / "state", train_ids=train.case_ids, valid_ids=valid.case_ids)
    assert state["kind"] == "weights" and (tmp_path / "state" / persist.WEIGHTS).exists()
    loaded = persist.load_model(tmp_path / "state", lambda: reg.models.create("clinical-only", max_epochs=2), ctx)
    np.testing.assert_allclose(loaded.predict_proba(cohort, ctx), model.predict_proba(cohort, ctx), atol=1e-6)
    # the stored clinical preprocessing is the fitted one: training rows only, no validation or test case
    rows = json.loads((tmp_path / "state" / persist.STATE_FILE).read_text())["clinical"]["rows"]["index"]
    assert rows == list(train.case_ids)


def test_refit_state_needs_the_development_cases_and_bad_files_are_named(cohort, tmp_path):
    ctx = FitContext(seed=0)
    model = reg.models.create("clinical-sklearn").fit(cohort, None, ctx)
    assert persist.save_model(model, tmp_path / "s", train_ids=cohort.case_ids, valid_ids=None)["kind"] == "refit"
    create = lambda: reg.models.create("clinical-sklearn")  # noqa: E731
    again = persist.load_model(tmp_path / "s", create, ctx, development=lambda: cohort)
    np.testing.assert_allclose(again.predict_proba(cohort, ctx), model.predict_proba(cohort, ctx))
    with pytest.raises(persist.ModelStateError, match="development cohort"):
        persist.load_model(tmp_path / "s", create, ctx)
    with pytest.raises(persist.ModelStateError, match="lacks case"):
        persist.load_model(tmp_path / "s", create, ctx, development=lambda: cohort.subset(cohort.case_ids[:3]))
    with pytest.raises(persist.ModelStateError, match="no saved model"):
        persist.load_model(tmp_path / "nothing", create, ctx)


def test_weights_with_pickled_code_are_refused(cohort, tmp_path):
    ctx = FitContext(seed=0)
    model = reg.models.create("clinical-only", max_epochs=1).fit(cohort, None, ctx)
    persist.save_model(model, tmp_path / "s", train_ids=cohort.case_ids, valid_ids=None)
    torch.save({"evil": object()}, tmp_path / "s" / persist.WEIGHTS)  # not tensors only
    with pytest.raises(persist.ModelStateError, match="weights.pt"):
        persist.load_model(tmp_path / "s", lambda: reg.models.create("clinical-only", max_epochs=1), ctx)


def test_segmenting_recipe_state_round_trip_gives_the_same_masks_on_the_same_grid(cohort, tmp_path):
    from resectbench.models.recipes.compose import NeuralRecipe
    from resectbench.profiles import get_profile

    ctx = FitContext(seed=0, cache_dir=tmp_path / "cache", profile=get_profile("cpu-whole"))
    params = {"max_epochs": 1, "batch_size": 4, "embed_dim": 16, "backbone.init_filters": 8}
    create = lambda: reg.models.create("cnn3d-fusion", **params)  # noqa: E731
    model = create().fit(cohort.subset(cohort.case_ids[:8]), None, ctx)
    description, tensors = model.state()
    json.dumps(description)  # plain JSON data
    assert set(tensors) == {"net"} and description["segment"] and not description["localiser"]
    assert all(t.device.type == "cpu" for t in tensors["net"].values())
    persist.save_model(model, tmp_path / "s", train_ids=cohort.case_ids[:8], valid_ids=None)
    loaded = persist.load_model(tmp_path / "s", create, ctx)
    assert isinstance(loaded, NeuralRecipe) and loaded is not model
    test = cohort.subset(cohort.case_ids[8:])
    np.testing.assert_allclose(loaded.predict_proba(test, ctx), model.predict_proba(test, ctx), atol=1e-6)
    before, after = model.predict_masks(test, ctx), loaded.predict_masks(test, ctx)
    grids = loaded.mask_grid(test, ctx)
    assert set(after) == set(grids) == set(test.case_ids)
    for cid in test.case_ids:
        np.testing.assert_array_equal(after[cid][0], before[cid][0])
        # the grid is the preprocessed volume's: 3 mm voxels (RAS), 32^3 voxels
        np.testing.assert_allclose(np.abs(np.diag(grids[cid])[:3]), 3.0)
        np.testing.assert_allclose(grids[cid], model.mask_grid(test, ctx)[cid])
    # a model without a segmentation head has no mask grid
    clinical = reg.models.create("clinical-only", max_epochs=1).fit(cohort, None, ctx)
    assert clinical.mask_grid(test, ctx) == {} and clinical.predict_masks(test, ctx) == {}
    # weights of another network are named, not half-loaded
    other = lambda: reg.models.create("cnn3d-fusion", **{**params, "backbone.init_filters": 4})  # noqa: E731
    with pytest.raises(persist.ModelStateError, match="does not fit NeuralRecipe"):
        persist.load_model(tmp_path / "s", other, ctx)
    # a cascade profile cannot load a model fitted without one
    cascade_ctx = FitContext(seed=0, cache_dir=tmp_path / "cache", profile=get_profile("cpu-cascade"))
    with pytest.raises(persist.ModelStateError, match="no cascade localiser"):
        persist.load_model(tmp_path / "s", create, cascade_ctx)
