"""The predicted mask source end to end with the real segmenter (one epoch: wiring, not quality)."""

import numpy as np

from resectbench import registry as reg
from resectbench.baselines.geometric_phantoms import write_phantom_cohort
from resectbench.data import load_cohort
from resectbench.models.base import FitContext


def test_geometric_features_on_predicted_masks(tmp_path):
    cohort = load_cohort(write_phantom_cohort(tmp_path / "tubes"))
    ctx = FitContext(seed=0, cache_dir=tmp_path / "cache")
    train, test = cohort.subset(cohort.case_ids[::2]), cohort.subset(cohort.case_ids[1::2])
    model = reg.models.create("geometric-features", classifier="logistic", segmenter_epochs=1).fit(train, None, ctx)
    assert model.segmenter is not None
    proba = model.predict_proba(test, ctx)
    assert proba.shape == (len(test), 3) and np.allclose(proba.sum(axis=1), 1.0)
    extra = model.extra_outputs(test, ctx)
    assert set(extra["contact_deg"]) == set(test.case_ids)
    # predicted masks were measured (cached by content next to the oracle training measurements)
    assert len(list((tmp_path / "cache" / "geometry").glob("*.json"))) >= len(train) + 1
