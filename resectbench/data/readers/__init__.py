"""Readers that turn a dataset on disk into a :class:`resectbench.data.Cohort`."""

from .assemble import CaseProblem, check_case_volumes
from .load import load_cohort, load_images

__all__ = ["load_cohort", "load_images", "CaseProblem", "check_case_volumes"]
