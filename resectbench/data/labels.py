"""Canonical segmentation structures and the aliases that map dataset label names onto them.

The canonical index order is the paper's 16-class segmentation head (see shared PAPER.md, order
chosen by resectbench). Datasets may number their labels any way they like: readers map names
through :func:`canonical_name` and remap voxel values to these indices.
"""
from __future__ import annotations

STRUCTURES: tuple[str, ...] = (
    "background", "pancreas", "tumor", "portal_vein", "splenic_vein", "smv", "ivc", "sma",
    "celiac_trunk", "aorta", "common_hepatic_artery", "proper_hepatic_artery",
    "gastroduodenal_artery", "splenic_artery", "pancreatic_duct", "bile_duct",
)
INDEX = {name: i for i, name in enumerate(STRUCTURES)}
ARTERIES = ("sma", "celiac_trunk", "common_hepatic_artery")
VEINS = ("smv", "portal_vein")

ALIASES = {
    "bg": "background", "0": "background",
    "pdac": "tumor", "tumour": "tumor", "cancer": "tumor", "lesion": "tumor", "pancreatic_tumor": "tumor",
    "pancreas_tumor": "tumor", "mass": "tumor",
    "pancreatic": "pancreas", "pancreas_parenchyma": "pancreas",
    "superior_mesenteric_artery": "sma", "superior_mesenteric_vein": "smv",
    "pv": "portal_vein", "portal": "portal_vein", "portalvein": "portal_vein",
    "celiac": "celiac_trunk", "celiac_axis": "celiac_trunk", "coeliac_trunk": "celiac_trunk", "ca": "celiac_trunk",
    "truncus_coeliacus": "celiac_trunk",
    "cha": "common_hepatic_artery", "hepatic_artery": "common_hepatic_artery",
    "pha": "proper_hepatic_artery", "gda": "gastroduodenal_artery",
    "splenic_v": "splenic_vein", "sv": "splenic_vein", "spleen_vein": "splenic_vein",
    "inferior_vena_cava": "ivc", "vena_cava": "ivc", "postcava": "ivc",
    "duct": "pancreatic_duct", "dilated_pancreatic_duct": "pancreatic_duct", "pd": "pancreatic_duct",
    "common_bile_duct": "bile_duct", "cbd": "bile_duct",
}


def canonical_name(name: str) -> str | None:
    """Canonical structure for a dataset's label name, or None if it is not one we know."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    if key in INDEX:
        return key
    return ALIASES.get(key)
