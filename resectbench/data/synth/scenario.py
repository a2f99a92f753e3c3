"""What each phantom patient's tumor does: location, which vessels it touches and by how much.

Scenarios are drawn per requested class and accepted only when the shared NCCN rule engine
(:func:`resectbench.geometry.nccn.classify`) gives that class, so the class mix is exactly the one
asked for and every label is explained by the rules that fired. The rater-noise model and the
Monte-Carlo Bayes-optimal accuracy live here too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

#: vessels the rules look at, in ground-truth column order
RULED = ("sma", "celiac_trunk", "common_hepatic_artery", "smv", "portal_vein", "ivc")
#: smallest contact angle of a vein whose contour the tumor indents (<= 180 degree mechanism)
IRREGULAR_MIN_DEG = 80.0
#: the paper's class mix 85/47/27
PAPER_CLASS_MIX = (85, 47, 27)
LOCATION_PRIOR = {
    0: {"head": 0.55, "body": 0.25, "tail": 0.20},
    1: {"head": 0.72, "body": 0.28},
    2: {"head": 0.55, "body": 0.45},
}
#: mechanisms that make a case borderline / locally advanced, per location, with their weights
MECHANISMS = {
    (1, "head"): {"sma_le180": 0.25, "cha": 0.15, "vein_gt180": 0.3, "vein_irregular": 0.2, "ivc": 0.1},
    (1, "body"): {"ca_le180": 0.35, "ca_appleby": 0.15, "sma_le180": 0.2, "cha": 0.15, "vein_gt180": 0.15},
    (2, "head"): {"sma_gt180": 0.45, "vein_unreconstructable": 0.35, "cha_reaches_ca": 0.2},
    (2, "body"): {"sma_gt180": 0.5, "cha_reaches_ca": 0.3, "vein_unreconstructable": 0.2},
}


@dataclass
class Scenario:
    """The tumor of one case: exact contact angles (degrees) and the rule inputs that go with them."""

    location: str
    contacts: dict[str, float]
    vein_contour_irregular: bool = False
    reconstructable: bool = True
    cha_reaches_ca_or_bifurcation: bool = False
    iso_attenuating: bool = False
    mechanism: str = "none"
    label_true: int = 0
    rules: list[str] = field(default_factory=list)

    def rule_inputs(self) -> dict:
        return {
            "vein_contour_irregular": self.vein_contour_irregular,
            "reconstructable": self.reconstructable,
            "cha_reaches_ca_or_bifurcation": self.cha_reaches_ca_or_bifurcation,
        }

    def to_row(self) -> dict:
        row = {f"angle_{v}": float(self.contacts.get(v, 0.0)) for v in RULED}
        row.update(
            tumor_location=self.location,
            vein_contour_irregular=self.vein_contour_irregular,
            reconstructable=self.reconstructable,
            cha_reaches_ca_or_bifurcation=self.cha_reaches_ca_or_bifurcation,
            iso_attenuating=self.iso_attenuating,
            mechanism=self.mechanism,
            label_true=self.label_true,
            rules=";".join(self.rules),
        )
        return row

    def as_dict(self) -> dict:
        return asdict(self)


def class_counts(n: int, mix=PAPER_CLASS_MIX) -> list[int]:
    """Split ``n`` by ``mix`` with largest remainders (85/47/27 gives exactly that for n = 159)."""
    mix = np.asarray(mix, dtype=float)
    raw = n * mix / mix.sum()
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    if n >= len(mix):  # every class present in any cohort big enough to hold them all
        for i in range(len(counts)):
            if counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] = 1
    return counts.tolist()


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _le180(rng) -> float:
    return float(np.round(rng.uniform(35.0, 170.0), 1))


def _gt180(rng) -> float:
    return 360.0 if rng.random() < 0.2 else float(np.round(rng.uniform(195.0, 345.0), 1))


def _draw(rng: np.random.Generator, target: int) -> Scenario:
    location = _pick(rng, LOCATION_PRIOR[target])
    sc = Scenario(location=location, contacts={}, iso_attenuating=bool(rng.random() < 0.12))
    vein = "smv" if (location == "head" and rng.random() < 0.7) else "portal_vein"
    if target == 0:
        if location != "tail" and rng.random() < 0.45:
            sc.contacts[vein] = _le180(rng)
            sc.mechanism = "vein_le180_smooth"
        return sc
    mech = _pick(rng, MECHANISMS[(target, location)])
    sc.mechanism = mech
    if mech == "sma_le180":
        sc.contacts["sma"] = _le180(rng)
    elif mech == "sma_gt180":
        sc.contacts["sma"] = _gt180(rng)
    elif mech == "cha":
        sc.contacts["common_hepatic_artery"] = _le180(rng)
    elif mech == "cha_reaches_ca":
        sc.contacts["common_hepatic_artery"] = float(np.round(rng.uniform(60.0, 300.0), 1))
        sc.cha_reaches_ca_or_bifurcation = True
    elif mech == "ca_le180":
        sc.contacts["celiac_trunk"] = _le180(rng)
    elif mech == "ca_appleby":
        sc.contacts["celiac_trunk"] = _gt180(rng)
    elif mech == "vein_gt180":
        sc.contacts[vein] = _gt180(rng)
        sc.vein_contour_irregular = bool(rng.random() < 0.5)
    elif mech == "vein_irregular":
        # an indentation narrower than ~80 degrees of the ~3.5 mm phantom SMV is one or two voxels wide:
        # no mask would show it, so irregular <= 180 contacts are drawn wide enough to carry a visible dent
        sc.contacts[vein] = float(np.round(rng.uniform(IRREGULAR_MIN_DEG, 170.0), 1))
        sc.vein_contour_irregular = True
    elif mech == "vein_unreconstructable":
        sc.contacts[vein] = 360.0
        sc.vein_contour_irregular = True
        sc.reconstructable = False
    elif mech == "ivc":
        sc.contacts["ivc"] = _le180(rng)
    # locally advanced tumors often touch a vein as well
    if target == 2 and vein not in sc.contacts and rng.random() < 0.5:
        sc.contacts[vein] = float(np.round(rng.uniform(40.0, 300.0), 1))
        sc.vein_contour_irregular = sc.vein_contour_irregular or bool(sc.contacts[vein] > 180 and rng.random() < 0.5)
    return sc


def draw_scenario(rng: np.random.Generator, target: int, max_tries: int = 200) -> Scenario:
    """A scenario the rule engine classifies as ``target``."""
    from ...geometry.nccn import classify

    for _ in range(max_tries):
        sc = _draw(rng, target)
        decision = classify(sc.contacts, sc.location, **sc.rule_inputs())
        if decision.label == target:
            sc.label_true = decision.label
            sc.rules = decision.rules
            return sc
    raise RuntimeError(f"could not draw a scenario of class {target} in {max_tries} tries")


def noisy_label(sc: Scenario, rng: np.random.Generator, sd_deg: float) -> int:
    """A rater's label: every non-zero contact angle misjudged by N(0, sd) (kept within 1-360 degrees).

    Raters are assumed to see whether a vessel is touched at all; they misjudge by how much.
    """
    from ...geometry.nccn import classify

    if sd_deg <= 0:
        return sc.label_true
    noisy = {v: float(np.clip(a + rng.normal(0.0, sd_deg), 1.0, 360.0)) for v, a in sc.contacts.items() if a > 0}
    return classify(noisy, sc.location, **sc.rule_inputs()).label


def label_distribution(sc: Scenario, rng: np.random.Generator, sd_deg: float, draws: int = 400) -> np.ndarray:
    """P(rater label = c | true geometry), estimated from ``draws`` simulated raters."""
    counts = np.zeros(3)
    if sd_deg <= 0:
        counts[sc.label_true] = 1.0
        return counts
    for _ in range(draws):
        counts[noisy_label(sc, rng, sd_deg)] += 1
    return counts / draws


def bayes_optimal_accuracy(scenarios: list[Scenario], sd_deg: float, seed: int = 0, draws: int = 400) -> float:
    """Expected accuracy of the best possible predictor of the noisy labels, even one that knows the exact
    geometry: the mean over cases of max_c P(label = c | geometry) (Monte Carlo, ``draws`` raters per case)."""
    if sd_deg <= 0:
        return 1.0
    rng = np.random.default_rng([seed, 7919])
    return float(np.mean([label_distribution(sc, rng, sd_deg, draws).max() for sc in scenarios]))
