"""Geometric baselines on a tiny phantom cohort: oracle and predicted mask sources, caching, tags."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest

from resectbench import registry as reg
from resectbench.baselines import geometric_measure as gm
from resectbench.baselines.geometric_phantoms import write_phantom_cohort
from resectbench.data import load_cohort
from resectbench.data.cohort import Cohort
from resectbench.models.base import FitContext


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    # tube phantoms with exact angles; the class follows from the angle alone (independent of the generator)
    return load_cohort(write_phantom_cohort(tmp_path_factory.mktemp("geo-cohort")))


@pytest.fixture
def ctx(tmp_path):
    return FitContext(seed=0, cache_dir=tmp_path / "cache")


def test_registry_entries_declare_mask_source_and_oracle_tag():
    for name in ("geometric-rules", "geometric-features"):
        assert reg.models.create(name).mask_source == "predicted"
        assert "oracle" not in reg.models.get(name).tags
        oracle = f"{name}-oracle"
        assert reg.models.create(oracle).mask_source == "oracle"
        assert "oracle" in reg.models.get(oracle).tags and "upper bound" in reg.models.get(oracle).description
    assert "classifier" in reg.models.get("geometric-features").search_space


def test_rules_oracle_predicts_probabilities_and_explains(cohort, ctx):
    model = reg.models.create("geometric-rules-oracle").fit(cohort, None, ctx)
    proba = model.predict_proba(cohort, ctx)
    assert proba.shape == (len(cohort), 3) and np.allclose(proba.sum(axis=1), 1.0)
    again = reg.models.create("geometric-rules-oracle").fit(cohort, None, ctx).predict_proba(cohort, ctx)
    assert np.array_equal(proba, again)
    extra = model.extra_outputs(cohort, ctx)
    assert set(extra["contact_deg"]) == set(cohort.case_ids)
    assert all(r["reasons"] for r in extra["rules"].values())
    assert model.history[0]["train_rule_accuracy"] >= 0.0


def test_fitted_thresholds_never_lower_training_accuracy(cohort, ctx):
    fixed = reg.models.create("geometric-rules-oracle", fit_thresholds=False).fit(cohort, None, ctx)
    fitted = reg.models.create("geometric-rules-oracle", fit_thresholds=True).fit(cohort, None, ctx)
    assert fitted.history[0]["train_rule_accuracy"] >= fixed.history[0]["train_rule_accuracy"]


def test_measurements_are_cached_by_content(cohort, ctx, monkeypatch):
    reg.models.create("geometric-rules-oracle").fit(cohort, None, ctx)
    files = sorted((ctx.cache_dir / "geometry").glob("*.json"))
    assert len(files) == len(cohort)
    gm.GeometryCache._memory.clear()

    def boom(*a, **k):
        raise AssertionError("re-measured a cached case")

    monkeypatch.setattr("resectbench.geometry.contact.measure_case", boom)
    reg.models.create("geometric-features-oracle").fit(cohort, None, ctx)  # served from disk
    assert sorted((ctx.cache_dir / "geometry").glob("*.json")) == files


@pytest.mark.parametrize("classifier", ["logistic", "random-forest", "gradient-boosting"])
def test_features_oracle_classifiers(cohort, ctx, classifier):
    model = reg.models.create("geometric-features-oracle", classifier=classifier, n_estimators=20).fit(
        cohort, None, ctx
    )
    proba = model.predict_proba(cohort, ctx)
    assert proba.shape == (len(cohort), 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert model.n_parameters() > 0
    geo_only = reg.models.create(
        "geometric-features-oracle", classifier=classifier, use_clinical=False, n_estimators=20
    ).fit(cohort, None, ctx)
    assert len(model.feature_names) > len(geo_only.feature_names) > 30


def test_predicted_source_never_reads_test_masks(cohort, ctx, monkeypatch):
    """The predicted path measures the segmenter's masks; the cohort's own masks are not read at test time."""
    calls = {"trained_on": None}

    class FakeSegmenter:
        def predict_masks(self, c):
            out = {}
            for cid in c.case_ids:
                vol = c.load_case(cid, with_mask=False)
                mask = np.zeros(vol.image.shape, np.uint8)  # predicts no tumor anywhere
                out[cid] = (mask, tuple(vol.spacing))
            return out

    def train_segmenter(train, ctx_, **kwargs):
        calls["trained_on"] = list(train.case_ids)
        return FakeSegmenter()

    fake = types.ModuleType("resectbench.models.segmenter")
    fake.train_segmenter = train_segmenter
    monkeypatch.setitem(sys.modules, "resectbench.models.segmenter", fake)
    train, test = cohort.subset(cohort.case_ids[:6]), cohort.subset(cohort.case_ids[6:])
    model = reg.models.create("geometric-rules").fit(train, None, ctx)
    assert calls["trained_on"] == train.case_ids

    original = Cohort.load_case

    def guarded(self, case_id, with_mask=True):
        if with_mask:
            raise AssertionError(f"test-time mask read for {case_id}")
        return original(self, case_id, with_mask=False)

    monkeypatch.setattr(Cohort, "load_case", guarded)
    proba = model.predict_proba(test, ctx)
    # no tumor predicted -> every case is rule-resectable -> the confusion row of class 0
    assert np.allclose(proba, proba[0]) and proba.shape == (3, 3)


def test_missing_segmenter_gives_clear_error(cohort, ctx, monkeypatch):
    monkeypatch.setitem(sys.modules, "resectbench.models.segmenter", None)
    with pytest.raises(Exception, match="train_segmenter"):
        reg.models.create("geometric-rules").fit(cohort, None, ctx)


def test_rules_on_exact_phantoms_agree_with_the_truth(cohort, tmp_path):
    result = gm.cohort_rule_agreement(cohort, cache_dir=tmp_path, folds=2)
    assert result["n"] == len(cohort)
    assert result["agreement"] == 1.0 and result["disagreements"] == []
    assert all(e["mae_deg"] < 10 for e in result["angle_errors"].values())
    # a wrong threshold makes rules disagree, and every disagreement is explained
    strict = gm.cohort_rule_agreement(
        cohort, cache_dir=tmp_path, folds=2, thresholds=gm.RuleThresholds(min_contact_deg=100.0)
    )
    assert strict["agreement"] < 1.0
    for d in strict["disagreements"]:
        assert {"truth", "rules", "fired", "true_angles", "measured_angles", "measured_flags"} <= set(d)


def test_rules_oracle_is_right_on_held_out_phantoms(cohort, ctx):
    train, test = cohort.subset(cohort.case_ids[::2]), cohort.subset(cohort.case_ids[1::2])
    proba = reg.models.create("geometric-rules-oracle").fit(train, None, ctx).predict_proba(test, ctx)
    assert (proba.argmax(axis=1) == test.labels).all()


def test_the_rules_parameter_selects_a_rule_set(cohort, ctx, tmp_path):
    from resectbench.geometry.nccn import RulesError, load_rules

    dutch = reg.models.create("geometric-rules-oracle", rules="dpcg-2012", fit_thresholds=False).fit(cohort, None, ctx)
    assert dutch.history[0]["rule_set"] == load_rules("dpcg-2012").version
    out = dutch.extra_outputs(cohort, ctx)
    assert all(r["rule_set"] == load_rules("dpcg-2012").version for r in out["rules"].values())
    geoms = gm.oracle_geometry(cohort, gm.GeometryCache(ctx.cache_dir))
    labels = {c: r["label"] for c, r in out["rules"].items()}
    assert labels == dict(zip(cohort.case_ids, gm.rule_labels(geoms, cohort.case_ids, rules="dpcg-2012").tolist()))
    # the Appleby switch (tuned, or fixed) still overrides the set's option
    la = reg.models.create("geometric-rules-oracle", modified_appleby="LA")
    assert la.rules.options.modified_appleby == "LA" and la.rules.version != load_rules("nccn-2019").version
    assert (
        reg.models.create("geometric-rules-oracle", rules="nccn-2019-appleby-la").rules.options.modified_appleby == "LA"
    )
    own = tmp_path / "own.toml"
    own.write_text('extends = "nccn-2019"\n[options]\nmin_contact_deg = 400\n')
    with pytest.raises(RulesError, match="own.toml.*min_contact_deg"):
        reg.models.create("geometric-rules", rules=str(own))


def test_geometric_features_take_the_rule_class_only_when_asked(cohort, ctx):
    plain = reg.models.create("geometric-features-oracle", classifier="logistic").fit(cohort, None, ctx)
    assert "rule_class" not in plain.feature_names
    ruled = reg.models.create("geometric-features-oracle", classifier="logistic", rules="nccn-2019-vein270")
    ruled.fit(cohort, None, ctx)
    assert "rule_class" in ruled.feature_names and len(ruled.feature_names) == len(plain.feature_names) + 1
    assert ruled.predict_proba(cohort, ctx).shape == (len(cohort), 3)


def test_the_in_memory_measurement_cache_is_bounded(monkeypatch):
    """Least recently used measurements leave memory once the bound is reached (no cache dir: measured again)."""
    from resectbench.baselines.measure.cache import _LRU

    assert isinstance(gm.GeometryCache._memory, _LRU) and gm.GeometryCache._memory.maxsize == gm.MEMORY_ENTRIES
    monkeypatch.setattr(gm.GeometryCache, "_memory", _LRU(2))
    cache, measured = gm.GeometryCache(None), []

    def geometry(name):
        def compute():
            measured.append(name)
            return gm.CaseGeometry(pd.DataFrame({"vessel": ["sma"], "contact_deg": [float(len(measured))]}), {})

        return compute

    first = cache.get_or_measure("a", geometry("a"))
    cache.get_or_measure("b", geometry("b"))
    assert cache.get_or_measure("a", geometry("a")).vessels.equals(first.vessels)  # a hit: a is now the newest
    cache.get_or_measure("c", geometry("c"))  # evicts b, the least recently used
    assert len(gm.GeometryCache._memory) == 2
    cache.get_or_measure("a", geometry("a"))
    cache.get_or_measure("b", geometry("b"))
    assert measured == ["a", "b", "c", "b"]
    assert (cache.hits, cache.misses) == (2, 4)
