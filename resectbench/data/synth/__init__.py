"""Synthetic peri-pancreatic CT phantoms with exact tumor-vessel contact and NCCN ground truth."""

from __future__ import annotations

from pathlib import Path

from .generate import GENERATOR_VERSION, generate_cohort, size_preset
from .scenario import PAPER_CLASS_MIX, bayes_optimal_accuracy, class_counts


def tiny_cohort(tmp_path, n: int = 9, seed: int = 0, rater_noise_deg: float = 0.0):
    """A small phantom cohort for tests: ``n`` cases of 32^3 voxels at 3 mm, all three classes present
    (n >= 3), written under ``tmp_path`` (reused if already there) and loaded. About 0.1 s per case."""
    from ..readers import load_cohort

    out = Path(tmp_path) / f"tiny-cohort-n{n}-s{seed}-r{rater_noise_deg:g}"
    if not (out / "dataset.json").exists():
        generate_cohort(
            out,
            n=n,
            seed=seed,
            profile="tiny",
            rater_noise_deg=rater_noise_deg,
            workers=1,
            class_mix=(1, 1, 1) if n < 9 else PAPER_CLASS_MIX,
        )
    return load_cohort(out)


__all__ = [
    "generate_cohort",
    "tiny_cohort",
    "size_preset",
    "class_counts",
    "bayes_optimal_accuracy",
    "PAPER_CLASS_MIX",
    "GENERATOR_VERSION",
]
