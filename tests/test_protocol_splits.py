"""Splits: stratified, disjoint, complete, reproducible, order-independent, group-respecting."""

import numpy as np
import pytest

from resectbench.protocol.errors import ProtocolError
from resectbench.protocol.splits import Splits, make_splits


def cohort(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    labels[:6] = [0, 0, 1, 1, 2, 2]  # enough of every class
    ids = [f"c{i:03d}" for i in range(n)]
    return ids, labels


def test_outer_folds_partition_the_cohort_and_keep_class_balance():
    ids, y = cohort()
    s = make_splits(ids, y, outer_folds=5, seed=1, data_fingerprint="fp")
    tests = [set(o.test) for o in s.outer]
    assert set().union(*tests) == set(ids) and sum(map(len, tests)) == len(ids)
    by_id = dict(zip(ids, y))
    overall = np.bincount(y, minlength=3) / len(y)
    for o in s.outer:
        assert not set(o.train) & set(o.test)
        assert set(o.train) | set(o.test) == set(ids)
        share = np.bincount([by_id[i] for i in o.test], minlength=3) / len(o.test)
        assert np.abs(share - overall).max() < 0.12
        # the inner holdout splits the outer-training part only, about 80/20, stratified
        (inner,) = o.inner
        assert set(inner.train) | set(inner.valid) == set(o.train)
        assert not set(inner.train) & set(inner.valid)
        assert abs(len(inner.valid) / len(o.train) - 0.2) < 0.05
        assert {by_id[i] for i in inner.valid} == {0, 1, 2}


def test_same_seed_same_splits_regardless_of_case_order():
    ids, y = cohort()
    a = make_splits(ids, y, seed=3, data_fingerprint="fp")
    order = np.random.default_rng(0).permutation(len(ids))
    b = make_splits([ids[i] for i in order], y[order], seed=3, data_fingerprint="fp")
    assert a.fingerprint == b.fingerprint and a.to_dict() == b.to_dict()
    assert make_splits(ids, y, seed=4, data_fingerprint="fp").fingerprint != a.fingerprint
    assert make_splits(ids, y, seed=3, data_fingerprint="other").fingerprint != a.fingerprint


def test_repeats_reshuffle_and_inner_kfold():
    ids, y = cohort()
    s = make_splits(ids, y, outer_folds=3, repeats=2, inner="kfold", inner_folds=3, seed=0)
    assert [(o.repeat, o.fold) for o in s.outer] == [(r, k) for r in range(2) for k in range(3)]
    assert s.get(0, 0).test != s.get(1, 0).test
    for o in s.outer:
        assert len(o.inner) == 3
        valid = [set(i.valid) for i in o.inner]
        assert set().union(*valid) == set(o.train) and sum(map(len, valid)) == len(o.train)


def test_groups_never_straddle_a_split():
    ids, y = cohort(90)
    groups = [f"patient{i // 3}" for i in range(len(ids))]  # three scans per patient
    group_of = dict(zip(ids, groups))
    s = make_splits(ids, y, groups=groups, outer_folds=3, seed=0)
    for o in s.outer:
        assert not {group_of[i] for i in o.train} & {group_of[i] for i in o.test}
        (inner,) = o.inner
        assert not {group_of[i] for i in inner.train} & {group_of[i] for i in inner.valid}


def test_save_load_round_trip_and_tamper_detection(tmp_path):
    ids, y = cohort()
    s = make_splits(ids, y, seed=0)
    s.save(tmp_path / "splits.json")
    again = Splits.load(tmp_path / "splits.json")
    assert again.fingerprint == s.fingerprint and again.outer == s.outer
    text = (tmp_path / "splits.json").read_text().replace("c000", "c999", 1)
    (tmp_path / "splits.json").write_text(text)
    with pytest.raises(ProtocolError, match="edited"):
        Splits.load(tmp_path / "splits.json")


def test_too_few_cases_of_a_class_is_a_clear_error():
    ids = [f"c{i}" for i in range(12)]
    y = np.array([0] * 8 + [1] * 2 + [2] * 2)
    with pytest.raises(ProtocolError, match=r"5 stratified folds need at least 5 cases of every class.*class 1: 2"):
        make_splits(ids, y, outer_folds=5)
    with pytest.raises(ProtocolError, match="unknown inner mode"):
        make_splits(ids, y, outer_folds=2, inner="loo")
