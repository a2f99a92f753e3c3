"""Statistics for comparing models evaluated on the same cross-validation splits.

- :func:`corrected_resampled_ttest`: Nadeau-Bengio corrected t-test over paired fold scores.
- :func:`correlated_bayesian_ttest`: Bayesian correlated t-test with a ROPE (Corani & Benavoli).
- :func:`delong_test`, :func:`delong_ovr_macro_test`: paired AUC tests (fast DeLong, Sun & Xu).
- :func:`bootstrap_intervals`, :func:`paired_bootstrap_test`: patient-level stratified bootstrap.
- :func:`holm`: Holm step-down adjustment (statsmodels).
"""

from .bayesian import BayesianComparison, correlated_bayesian_ttest
from .bootstrap import Interval, PairedBootstrapTest, bootstrap_intervals, paired_bootstrap_test, weighted_metrics
from .corrected_ttest import CorrectedTTest, corrected_resampled_ttest
from .delong import DeLongTest, delong_covariance, delong_ovr_macro_test, delong_test
from .multiple import holm

__all__ = [
    "BayesianComparison",
    "correlated_bayesian_ttest",
    "Interval",
    "PairedBootstrapTest",
    "bootstrap_intervals",
    "paired_bootstrap_test",
    "weighted_metrics",
    "CorrectedTTest",
    "corrected_resampled_ttest",
    "DeLongTest",
    "delong_covariance",
    "delong_ovr_macro_test",
    "delong_test",
    "holm",
]
