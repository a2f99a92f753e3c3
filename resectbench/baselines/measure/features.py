"""Measurements -> one feature row per case (for the ``geometric-features`` classifiers)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...vocabulary import MEASURED_RULE_VESSELS, VEINS
from .cache import CaseGeometry

#: vessels whose measurements become features (the measured rule vessels, then aorta and splenic vein)
FEATURE_VESSELS = MEASURED_RULE_VESSELS + ("aorta", "splenic_vein")


#: distance features are clipped here (mm); absent vessels count as this far away
FAR_MM = 50.0


def feature_table(geoms: dict[str, CaseGeometry], case_ids: list[str]) -> pd.DataFrame:
    """Per-vessel angle, length, distance, encasement (+ vein deformity) and case findings, one row per case."""
    rows = []
    for case_id in case_ids:
        g = geoms[case_id]
        row = {}
        for vessel in FEATURE_VESSELS:
            r = g.row(vessel)
            deg = float(r.get("contact_deg") or 0.0)
            dist = r.get("min_distance_mm")
            dist = FAR_MM if dist is None or not np.isfinite(dist) else min(float(dist), FAR_MM)
            row[f"{vessel}_contact_deg"] = deg
            row[f"{vessel}_contact_length_mm"] = float(r.get("contact_length_mm") or 0.0)
            row[f"{vessel}_min_distance_mm"] = dist
            row[f"{vessel}_gt180"] = float(deg > 180.0)
            row[f"{vessel}_encased"] = float(deg >= 300.0)
            if vessel in VEINS:
                row[f"{vessel}_deformity"] = float(r.get("vein_deformity") or 0.0)
        reach = g.findings.get("cha_reach_mm")
        row["cha_reach_mm"] = FAR_MM if reach is None or not np.isfinite(reach) else min(float(reach), FAR_MM)
        row["tumor_head"] = float((g.findings.get("tumor_location") or "head") == "head")
        row["tumor_volume_ml"] = float(g.findings.get("tumor_volume_ml") or 0.0)
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index(case_ids, name="case_id"))
