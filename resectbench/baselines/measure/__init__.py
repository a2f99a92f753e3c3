"""Tumor-vessel geometry of whole cohorts for the geometric baselines, by concern: ``cache``
(one case's measurements, cached by mask content), ``cohort`` (oracle / predicted mask sources),
``rules`` (NCCN rule inputs, fitted thresholds), ``features`` (feature table), ``agreement`` (rules vs a
synthetic cohort's truth) and ``files`` (masks and contacts tables for the CLI).

:mod:`resectbench.baselines.geometric_measure` re-exports the public names.
"""
