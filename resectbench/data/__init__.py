"""Cohorts: readers for real dataset layouts, the synthetic phantom cohort, preprocessing and caching.

Public API::

    from resectbench.data import Cohort, CaseVolume, load_cohort, default_cohort
    from resectbench.data.synth import generate_cohort, tiny_cohort
    from resectbench.data.images import ImageConfig, VolumeStore
    from resectbench.data.transforms import train_augmentation
    from resectbench.data.clinical import ClinicalPreprocessor
"""

from .cohort import CaseVolume, Cohort
from .readers import load_cohort, load_images
from .schema import CLINICAL_SCHEMA, VariableSpec


def default_cohort(
    profile: str = "cpu", seed: int = 0, cache_dir=None, on_progress=None, load_options: dict | None = None
) -> Cohort:
    """The embedded synthetic cohort, generated once into the user cache dir and reused afterwards."""
    from .cache import default_cohort as _default

    return _default(profile=profile, seed=seed, cache_dir=cache_dir, on_progress=on_progress, load_options=load_options)


__all__ = ["Cohort", "CaseVolume", "load_cohort", "load_images", "default_cohort", "VariableSpec", "CLINICAL_SCHEMA"]
