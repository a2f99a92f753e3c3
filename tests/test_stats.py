"""Statistics of the leaderboard against worked examples with known numbers."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

from resectbench.leaderboard.stats import (
    bootstrap_intervals,
    corrected_resampled_ttest,
    correlated_bayesian_ttest,
    delong_covariance,
    delong_ovr_macro_test,
    delong_test,
    holm,
    paired_bootstrap_test,
    weighted_metrics,
)
from resectbench.leaderboard.stats.bootstrap import stratified_weights, weighted_auc

T_975_DF4 = 2.776445105  # two-sided 5 % critical value of Student's t with 4 df (every t table)


def _diffs_at_critical_value():
    # deviations (0, .1, -.1, 0, 0): s^2 = 0.02 / 4 = 0.005; 5 folds: n_test/n_train = 1/4;
    # corrected SE = sqrt((1/5 + 1/4) * 0.005) = 0.0474342; mean chosen so that t = t_{0.975, 4}
    se = np.sqrt((1 / 5 + 1 / 4) * 0.005)
    return T_975_DF4 * se + np.array([0.0, 0.1, -0.1, 0.0, 0.0]), se


def test_corrected_ttest_hand_example():
    a = np.array([0.80, 0.90, 0.70, 0.80, 0.80])
    b = a - np.array([0.1, 0.2, 0.0, 0.1, 0.1])  # mean diff 0.1, s^2 = 0.005
    res = corrected_resampled_ttest(a, b, test_train_ratio=0.25)
    assert res.mean_difference == pytest.approx(0.1)
    assert res.se == pytest.approx(np.sqrt(0.45 * 0.005))  # 0.0474342
    assert res.t == pytest.approx(0.1 / np.sqrt(0.00225))  # 2.10819
    assert res.df == 4
    assert 0.10 < res.p_value < 0.11  # t_{0.95,4} = 2.132 > 2.108
    # the naive paired t-test would call this significant (t = 3.162, p = 0.034): the correction matters
    naive = corrected_resampled_ttest(a, b, test_train_ratio=1e-12)
    assert naive.t == pytest.approx(0.1 / np.sqrt(0.005 / 5), rel=1e-6) and naive.p_value < 0.05


def test_corrected_ttest_hits_the_t_table():
    d, se = _diffs_at_critical_value()
    res = corrected_resampled_ttest(d, np.zeros(5), test_train_ratio=0.25)
    assert res.t == pytest.approx(T_975_DF4)
    assert res.p_value == pytest.approx(0.05, abs=1e-8)
    flipped = corrected_resampled_ttest(np.zeros(5), d, test_train_ratio=0.25)
    assert flipped.t == pytest.approx(-T_975_DF4) and flipped.p_value == pytest.approx(0.05, abs=1e-8)


def test_corrected_ttest_degenerate_cases():
    assert corrected_resampled_ttest([0.5, 0.5], [0.5, 0.5], 0.25).p_value == 1.0
    assert corrected_resampled_ttest([0.6, 0.6], [0.5, 0.5], 0.25).p_value == 0.0
    assert np.isnan(corrected_resampled_ttest([0.6], [0.5], 0.25).p_value)
    with pytest.raises(ValueError):
        corrected_resampled_ttest([0.6, 0.7], [0.5], 0.25)


def test_bayesian_correlated_ttest_matches_the_t_table():
    d, _ = _diffs_at_critical_value()
    res = correlated_bayesian_ttest(d, np.zeros(5), test_train_ratio=0.25, rope=0.0)
    # posterior Student t(4) centred at the mean difference, scale = the corrected SE: the mass
    # below zero is the one-sided tail at the critical value, 2.5 %
    assert res.p_left == pytest.approx(0.025, abs=1e-8)
    assert res.p_right == pytest.approx(0.975, abs=1e-8)
    wide = correlated_bayesian_ttest(d, np.zeros(5), test_train_ratio=0.25, rope=1.0)
    assert wide.p_rope > 0.99  # every plausible difference is inside a huge ROPE
    assert sum((wide.p_left, wide.p_rope, wide.p_right)) == pytest.approx(1.0)


# -- DeLong -----------------------------------------------------------------------------------------
def test_delong_hand_computed_variance():
    # positives 0.9, 0.8, 0.6; negatives 0.7, 0.5, 0.4, 0.3
    # V10 = (1, 1, 3/4): S10 = 1/48; V01 = (2/3, 1, 1, 1): S01 = 1/36
    # AUC = 11/12; Var = S10/3 + S01/4 = 1/144 + 1/144 = 1/72
    scores = np.array([0.9, 0.8, 0.6, 0.7, 0.5, 0.4, 0.3])
    truth = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    auc, cov = delong_covariance(scores, truth)
    assert auc[0] == pytest.approx(11 / 12)
    assert cov[0, 0] == pytest.approx(1 / 72)


def _direct_delong(scores: np.ndarray, truth: np.ndarray):
    """DeLong et al. (1988) written out literally: psi over all positive/negative pairs."""
    x, y = scores[:, truth], scores[:, ~truth]
    psi = (x[:, :, None] > y[:, None, :]) + 0.5 * (x[:, :, None] == y[:, None, :])  # (k, m, n)
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    auc = psi.mean(axis=(1, 2))
    m, n = x.shape[1], y.shape[1]
    return auc, np.cov(v10) / m + np.cov(v01) / n


def test_fast_delong_matches_the_direct_formula_with_ties():
    rng = np.random.default_rng(3)
    truth = rng.random(60) < 0.4
    a = np.round(truth * 0.8 + rng.normal(0, 1, 60), 1)  # rounding makes ties
    b = np.round(truth * 0.3 + rng.normal(0, 1, 60), 1)
    scores = np.vstack([a, b])
    auc, cov = delong_covariance(scores, truth)
    auc_d, cov_d = _direct_delong(scores, truth)
    np.testing.assert_allclose(auc, auc_d)
    np.testing.assert_allclose(cov, cov_d)
    assert auc[0] == pytest.approx(roc_auc_score(truth, a))
    res = delong_test(a, b, truth)
    var = cov_d[0, 0] + cov_d[1, 1] - 2 * cov_d[0, 1]
    assert res.z == pytest.approx((auc_d[0] - auc_d[1]) / np.sqrt(var))
    assert 0 < res.p_value < 1


def test_ovr_macro_delong_reduces_to_binary_delong():
    rng = np.random.default_rng(4)
    y = (rng.random(80) < 0.45).astype(int)
    pa, pb = rng.random(80) * 0.5 + 0.4 * y, rng.random(80)
    proba_a = np.column_stack([1 - pa, pa, np.zeros(80)])  # class 2 absent: left out like the protocol does
    proba_b = np.column_stack([1 - pb, pb, np.zeros(80)])
    macro = delong_ovr_macro_test(proba_a, proba_b, y)
    binary = delong_test(pa, pb, y == 1)
    assert macro.difference == pytest.approx(binary.difference)
    assert macro.se == pytest.approx(binary.se)
    assert macro.p_value == pytest.approx(binary.p_value)


def test_ovr_macro_delong_se_agrees_with_the_bootstrap():
    rng = np.random.default_rng(5)
    n = 300
    y = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    logits_a = np.eye(3)[y] * 1.2 + rng.normal(0, 1, (n, 3))
    logits_b = np.eye(3)[y] * 0.8 + rng.normal(0, 1, (n, 3)) + 0.5 * logits_a
    pa = np.exp(logits_a) / np.exp(logits_a).sum(1, keepdims=True)
    pb = np.exp(logits_b) / np.exp(logits_b).sum(1, keepdims=True)
    dl = delong_ovr_macro_test(pa, pb, y)
    w = stratified_weights(np.arange(n), y, 800, seed=0)
    d = weighted_metrics(y, pa, w)["auc_ovr_macro"] - weighted_metrics(y, pb, w)["auc_ovr_macro"]
    assert dl.se == pytest.approx(np.std(d), rel=0.2)


# -- bootstrap ----------------------------------------------------------------------------------------
def _random_predictions(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    logits = np.eye(3)[y] * 1.0 + rng.normal(0, 1, (n, 3))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, proba


def test_unit_weights_reproduce_sklearn_metrics():
    y, proba = _random_predictions()
    pred = proba.argmax(1)
    got = {k: v[0] for k, v in weighted_metrics(y, proba, np.ones((1, len(y)))).items()}
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["macro_f1"] == pytest.approx(f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert got["auc_ovr_macro"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"))


def test_weighted_auc_equals_auc_of_replicated_rows():
    rng = np.random.default_rng(1)
    s = np.round(rng.random(40), 1)
    pos = rng.random(40) < 0.5
    w = rng.integers(0, 4, size=40)
    expect = roc_auc_score(np.repeat(pos, w), np.repeat(s, w))
    assert weighted_auc(s, pos, w[None, :].astype(float))[0] == pytest.approx(expect)


def test_stratified_patient_bootstrap_keeps_class_counts_and_patients_together():
    y = np.array([0] * 10 + [1] * 6 + [2] * 4)
    units = np.repeat(np.arange(10), 2)  # two rows per patient (two repeats)
    strata = y[::2].repeat(2)
    w = stratified_weights(units, strata, n_boot=50, seed=0)
    assert np.allclose(w[:, ::2], w[:, 1::2])  # both rows of a patient drawn together
    for c in range(3):
        assert np.allclose(w[:, strata == c].sum(axis=1), (strata == c).sum())


def test_bootstrap_intervals_are_seeded_and_cover_the_estimate():
    y, proba = _random_predictions()
    a = bootstrap_intervals(y, proba, units=np.arange(len(y)), n_boot=300, seed=7)
    b = bootstrap_intervals(y, proba, units=np.arange(len(y)), n_boot=300, seed=7)
    c = bootstrap_intervals(y, proba, units=np.arange(len(y)), n_boot=300, seed=8)
    assert a == b and a != c
    for iv in a.values():
        assert iv.low <= iv.estimate <= iv.high and iv.high - iv.low > 0.01


def test_paired_bootstrap_detects_a_real_difference_only():
    y, good = _random_predictions(n=150, seed=2)
    rng = np.random.default_rng(9)
    noise = rng.dirichlet(np.ones(3), size=len(y))
    strong = paired_bootstrap_test(y, good, noise, units=np.arange(len(y)), n_boot=400, seed=0)
    assert strong.difference > 0.1 and strong.p_value < 0.01 and strong.low > 0
    same = paired_bootstrap_test(y, good, good, units=np.arange(len(y)), n_boot=200, seed=0)
    assert same.difference == 0 and same.p_value == 1.0


def test_holm_hand_example():
    # sorted p: .01*3 = .03; .03*2 = .06; .04*1 = .04 -> monotone .06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    out = holm([0.02, np.nan])
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1])
