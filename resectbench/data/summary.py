"""A plain-dict description of a loaded cohort (for ``resectbench data info`` and run manifests)."""

from __future__ import annotations


def cohort_summary(cohort) -> dict:
    return {
        "name": cohort.name,
        "root": str(cohort.root) if cohort.root else None,
        "source": cohort.info.get("source"),
        "n_cases": len(cohort),
        "class_counts": cohort.info.get("class_counts"),
        "bayes_optimal_accuracy": cohort.info.get("bayes_optimal_accuracy"),
        "fingerprint": cohort.fingerprint,
        "structures": cohort.structures,
        "clinical_variables": list(cohort.clinical.columns),
        "has_ground_truth": cohort.ground_truth is not None,
        "excluded": cohort.info.get("excluded", []),
        "missing_variables": cohort.info.get("missing_variables", {}),
        "ignored_columns": cohort.info.get("ignored_columns", {}),
        "data_dictionary": cohort.info.get("data_dictionary"),
    }
