"""The 17 clinical variables for synthetic patients, linked to class and anatomy.

Distributions are plausible for a resected/neoadjuvant PDAC cohort, not fitted to any dataset.
Links (all documented in docs/data.md): CA 19-9 rises with class; bilirubin is high for head tumors
(biliary obstruction); neoadjuvant therapy is far more common in borderline/locally advanced cases
and lowers CA 19-9 at restaging; grade G3 slightly more common in advanced disease; diabetes drives
glucose and HbA1c; ASA and Charlson rise with age. ~4 % of values are missing (HbA1c most often).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import CLINICAL_SCHEMA

#: probability that a value is missing, per variable (mean ~4 %; HbA1c highest as in the paper)
MISSING_RATE = {name: 0.035 for name in CLINICAL_SCHEMA}
MISSING_RATE.update(
    {
        "hba1c": 0.10,
        "ca19_9_change": 0.05,
        "ca19_9_post_neoadjuvant": 0.05,
        "cea": 0.05,
        "grade": 0.05,
        "age": 0.0,
        "sex": 0.0,
        "neoadjuvant": 0.0,
        "bilirubin": 0.03,
    }
)

# Class signal of the table (R / BR / LA), calibrated so that the clinical variables alone reach about
# the paper's tabular-only AUC (0.74) and imaging has room to matter: benchmarks/clinical_signal.py
# (phantom-3 had 120/300/650 U/mL, 0.15/0.75/0.9, 3/4/6 ng/mL: clinical-sklearn AUC 0.84).
CA19_9_MEDIAN = (140.0, 270.0, 480.0)
NEOADJUVANT_RATE = (0.22, 0.65, 0.8)
CEA_MEDIAN = (3.0, 3.8, 5.0)


def draw_clinical(
    rng: np.random.Generator,
    labels: np.ndarray,
    locations: list[str],
    bmi: np.ndarray | None = None,
    missing: bool = True,
) -> pd.DataFrame:
    """One row per case, columns = :data:`resectbench.data.schema.CLINICAL_SCHEMA` (NaN = missing)."""
    n = len(labels)
    labels = np.asarray(labels)
    head = np.asarray([loc == "head" for loc in locations])
    age = np.clip(rng.normal(67.0, 9.0, n), 38, 90).round(0)
    sex = np.where(rng.random(n) < 0.53, "male", "female")
    bmi = np.clip(rng.normal(25.5, 4.0, n), 16, 45) if bmi is None else np.asarray(bmi, dtype=float)
    charlson = np.clip(rng.poisson(1.0 + 0.05 * (age - 60).clip(0), n), 0, 12).astype(float)
    asa_p = 1.0 / (1.0 + np.exp(-(age - 68.0) / 8.0 - 0.4 * (charlson - 1)))
    asa = np.clip(1 + rng.binomial(1, 0.85, n) + rng.binomial(1, asa_p) + rng.binomial(1, 0.04, n), 1, 4)
    diabetes = (rng.random(n) < 0.28 + 0.08 * head).astype(float)
    nicotine = (rng.random(n) < 0.35).astype(float)
    alcohol = (rng.random(n) < 0.22 + 0.1 * nicotine).astype(float)
    # CA 19-9 (U/mL): log-normal, median CA19_9_MEDIAN per class; ~8 % Lewis-negative non-secretors
    log_ca = rng.normal(np.log(CA19_9_MEDIAN)[labels], 1.1)
    ca_base = np.exp(log_ca)
    non_secretor = rng.random(n) < 0.08
    ca_base[non_secretor] = rng.uniform(1.0, 8.0, int(non_secretor.sum()))
    neo_p = np.asarray(NEOADJUVANT_RATE)[labels]
    neo = (rng.random(n) < neo_p).astype(float)
    # after neoadjuvant therapy CA 19-9 falls (less in LA); untreated patients drift up to surgery
    change = np.where(
        neo == 1, rng.normal([-55.0, -50.0, -35.0], 25.0, (n, 3))[np.arange(n), labels], rng.normal(8.0, 15.0, n)
    )
    change = np.clip(change, -99.0, 400.0)
    ca_post = np.clip(ca_base * (1 + change / 100.0), 0.5, None)
    cea = np.clip(np.exp(rng.normal(np.log(CEA_MEDIAN)[labels], 0.8)), 0.3, 900)
    hba1c = np.clip(np.where(diabetes == 1, rng.normal(7.6, 1.2, n), rng.normal(5.5, 0.4, n)), 4.0, 14.0)
    glucose = np.clip(np.where(diabetes == 1, rng.normal(150, 40, n), rng.normal(98, 14, n)), 55, 450)
    # bilirubin (mg/dL): obstructive jaundice in many head tumors (after stenting often lower)
    jaundice = head & (rng.random(n) < 0.6)
    bili = np.where(jaundice, np.exp(rng.normal(np.log(6.0), 0.7, n)), np.exp(rng.normal(np.log(0.7), 0.35, n)))
    bili = np.clip(bili, 0.1, 35.0)
    grade_p = np.array([[0.15, 0.6, 0.25], [0.1, 0.55, 0.35], [0.08, 0.5, 0.42]])[labels]
    grade = np.array(["G1", "G2", "G3"])[[int(rng.choice(3, p=p)) for p in grade_p]]
    frame = pd.DataFrame(
        {
            "age": age,
            "sex": sex,
            "bmi": bmi.round(1),
            "charlson_index": charlson,
            "asa_score": asa.astype(int),
            "diabetes": diabetes,
            "nicotine": nicotine,
            "alcohol": alcohol,
            "ca19_9_baseline": ca_base.round(1),
            "ca19_9_change": change.round(1),
            "ca19_9_post_neoadjuvant": ca_post.round(1),
            "cea": cea.round(2),
            "glucose": glucose.round(0),
            "hba1c": hba1c.round(1),
            "bilirubin": bili.round(2),
            "grade": grade,
            "neoadjuvant": neo,
        }
    )
    frame["asa_score"] = frame["asa_score"].astype(object)
    if missing:
        for col, rate in MISSING_RATE.items():
            drop = rng.random(n) < rate
            if drop.any():
                frame[col] = frame[col].astype(object) if frame[col].dtype == object else frame[col]
                frame.loc[drop, col] = np.nan if frame[col].dtype != object else None
    return frame[list(CLINICAL_SCHEMA)]


def sample_bmi(rng: np.random.Generator, n: int) -> np.ndarray:
    """BMI is drawn before the anatomy: it sets the phantom's subcutaneous fat."""
    return np.clip(rng.normal(25.5, 4.0, n), 16, 45).round(1)
