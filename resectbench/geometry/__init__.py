"""Tumor-vessel geometry: contact measurement from masks and the NCCN rule engine.

Pure measurement: numpy/scipy in, numbers out. ``measure_case`` is imported lazily so that the
rule engine (used by the synthetic generator) stays cheap to import.
"""

from __future__ import annotations

from .nccn import RULES_VERSION, Decision, RuleOptions, classify

__all__ = ["classify", "RuleOptions", "Decision", "RULES_VERSION", "measure_case"]


def __getattr__(name: str):
    if name == "measure_case":
        from .contact import measure_case

        return measure_case
    raise AttributeError(name)
