"""The NCCN resectability decision table for pancreatic cancer, as data.

One implementation, used for the synthetic cohort's ground truth and by the geometric baselines.
The table (``RULES``) restates the NCCN PDAC guideline (v1.2019 onwards, see shared NCCN.md):
every row is a :class:`Rule` naming the vessels it looks at, the tumor locations it applies to,
the contact condition, any case flags it needs, and the class it votes for. ``classify``
evaluates all rows and returns the worst class among the rows that fired (LA if any LA
condition holds, else BR if any BR condition holds, else R), with the rules and human-readable
reasons, so every decision can be explained in a report.

Cells the guideline leaves open are resectbench's own choices, switchable in
:class:`RuleOptions` (defaults documented there and in docs/geometry.md):

* modified Appleby: body/tail tumor, CA contact > 180 deg, no aortic involvement, intact GDA.
  NCCN lists it as borderline; some centres call it locally advanced.
* head/uncinate tumor with CA contact <= 180 deg: not listed by NCCN for head tumors.
* CHA "reconstructable": whether the case's ``reconstructable`` flag also governs CHA contact
  (otherwise CHA contact not reaching the CA or the hepatic bifurcation is assumed reconstructable).
* arterial contact the guideline lists only for head tumors (SMA <= 180, CHA, variant arteries)
  when the tumor is in the body/tail: borderline by default (any arterial contact is at least BR).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Mapping

from ..data.labels import canonical_name

#: Identifies the table below; recorded with every decision so results say which rules made them.
RULES_VERSION = "nccn-pdac-2019/resectbench-1"

CLASS_NAMES = ("resectable", "borderline", "locally_advanced")
SHORT_NAMES = ("R", "BR", "LA")
_CLASS_OF = {"R": 0, "BR": 1, "LA": 2, "resectable": 0, "borderline": 1, "locally_advanced": 2}

HEAD = frozenset({"head", "uncinate"})
BODY_TAIL = frozenset({"body", "tail"})
ANY_LOCATION = HEAD | BODY_TAIL
#: Accepted spellings of tumor locations -> the guideline's location groups. The neck sits in front
#: of the SMV/PV and is resected with the head (pancreatoduodenectomy): resectbench reads it as head.
_LOCATIONS = {"head": "head", "uncinate": "uncinate", "uncinate_process": "uncinate", "neck": "head",
              "body": "body", "tail": "tail", "body_tail": "body", "head_uncinate": "head"}

VEINS = ("smv", "portal_vein")
#: Replaced or accessory hepatic arteries: not canonical segmentation structures, but callers with
#: that information may pass contact for them under these names.
VARIANT_ARTERIES = ("variant_hepatic_artery", "replaced_hepatic_artery", "accessory_hepatic_artery")
#: Vessels the table has rows for; other canonical structures (aorta, splenic vein, ...) are ignored.
DISPLAY_NAMES = {"sma": "SMA", "celiac_trunk": "celiac axis", "common_hepatic_artery": "CHA", "smv": "SMV",
                 "portal_vein": "portal vein", "ivc": "IVC", "variant_hepatic_artery": "variant hepatic artery",
                 "replaced_hepatic_artery": "replaced hepatic artery",
                 "accessory_hepatic_artery": "accessory hepatic artery"}
RULED_VESSELS = ("sma", "celiac_trunk", "common_hepatic_artery", *VARIANT_ARTERIES, *VEINS, "ivc")


@dataclass(frozen=True)
class RuleOptions:
    """Switches for the cells the guideline leaves open. Values are class short names R/BR/LA."""
    #: body/tail tumor, CA > 180, no aortic involvement, intact GDA. NCCN: borderline.
    modified_appleby: str = "BR"
    #: head/uncinate tumor with CA contact <= 180 (not listed by NCCN). Default: any arterial contact is BR.
    head_ca_le_180: str = "BR"
    #: if True the case's ``reconstructable`` flag also governs CHA contact (not reconstructable -> LA);
    #: if False CHA contact not reaching CA/bifurcation is taken as reconstructable.
    cha_uses_reconstructable: bool = True
    #: SMA <= 180, CHA or variant-artery contact of a body/tail tumor (NCCN lists these for head tumors).
    body_tail_minor_arterial: str = "BR"
    #: contact at or below this many degrees counts as no contact (0: any contact counts). Useful for
    #: measured angles, where a partial-volume touch gives a few degrees.
    min_contact_deg: float = 0.0

    def __post_init__(self) -> None:
        for f in ("modified_appleby", "head_ca_le_180", "body_tail_minor_arterial"):
            value = getattr(self, f)
            if value not in ("R", "BR", "LA"):
                raise ValueError(f"RuleOptions.{f} must be 'R', 'BR' or 'LA', got {value!r}")
        if not (0.0 <= self.min_contact_deg < 180.0):
            raise ValueError(f"RuleOptions.min_contact_deg must be in [0, 180), got {self.min_contact_deg}")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Rule:
    """One row of the decision table.

    ``contact`` is ``"any"`` (contact above ``min_contact_deg``), ``"le180"`` (any contact, at most
    180 deg) or ``"gt180"`` (more than 180 deg). ``flags`` are case attributes that must have the given
    value (``aortic_involvement``, ``vein_contour_irregular``, ``reconstructable``, ``gda_intact``,
    ``cha_reaches_ca_or_bifurcation``). ``outcome`` is a class short name, or the name of the
    :class:`RuleOptions` field that holds it. ``flag_option``: a boolean RuleOptions field that must
    be True for the row to apply. ``reason`` is formatted with vessel, deg, location.
    """
    id: str
    vessels: tuple[str, ...]
    locations: frozenset
    contact: str
    outcome: str
    reason: str
    flags: tuple[tuple[str, bool], ...] = ()
    flag_option: str | None = None


_R = Rule
RULES: tuple[Rule, ...] = (
    # --- SMA
    _R("sma-gt180-la", ("sma",), ANY_LOCATION, "gt180", "LA", "SMA contact {deg:.0f} deg > 180 deg"),
    _R("sma-le180-head-br", ("sma",), HEAD, "le180", "BR", "SMA contact {deg:.0f} deg <= 180 deg ({location} tumor)"),
    _R("sma-le180-bodytail", ("sma",), BODY_TAIL, "le180", "body_tail_minor_arterial",
       "SMA contact {deg:.0f} deg <= 180 deg with a {location} tumor (not listed by NCCN; resectbench option)"),
    # --- celiac axis
    _R("ca-aorta-la", ("celiac_trunk",), ANY_LOCATION, "any", "LA",
       "celiac axis contact {deg:.0f} deg with aortic involvement", flags=(("aortic_involvement", True),)),
    _R("ca-gt180-head-la", ("celiac_trunk",), HEAD, "gt180", "LA",
       "celiac axis contact {deg:.0f} deg > 180 deg ({location} tumor)"),
    _R("ca-gt180-bodytail-appleby", ("celiac_trunk",), BODY_TAIL, "gt180", "modified_appleby",
       "celiac axis contact {deg:.0f} deg > 180 deg, {location} tumor, no aortic involvement, intact GDA "
       "(modified Appleby candidate)", flags=(("aortic_involvement", False), ("gda_intact", True))),
    _R("ca-gt180-bodytail-gda-la", ("celiac_trunk",), BODY_TAIL, "gt180", "LA",
       "celiac axis contact {deg:.0f} deg > 180 deg, {location} tumor, GDA not intact",
       flags=(("aortic_involvement", False), ("gda_intact", False))),
    _R("ca-le180-bodytail-br", ("celiac_trunk",), BODY_TAIL, "le180", "BR",
       "celiac axis contact {deg:.0f} deg <= 180 deg ({location} tumor)"),
    _R("ca-le180-head", ("celiac_trunk",), HEAD, "le180", "head_ca_le_180",
       "celiac axis contact {deg:.0f} deg <= 180 deg with a {location} tumor (not listed by NCCN; resectbench option)"),
    # --- common hepatic artery
    _R("cha-extends-la", ("common_hepatic_artery",), ANY_LOCATION, "any", "LA",
       "CHA contact {deg:.0f} deg reaching the celiac axis or hepatic bifurcation",
       flags=(("cha_reaches_ca_or_bifurcation", True),)),
    _R("cha-unreconstructable-la", ("common_hepatic_artery",), ANY_LOCATION, "any", "LA",
       "CHA contact {deg:.0f} deg, not reconstructable", flags=(("reconstructable", False),),
       flag_option="cha_uses_reconstructable"),
    _R("cha-head-br", ("common_hepatic_artery",), HEAD, "any", "BR",
       "CHA contact {deg:.0f} deg ({location} tumor) not reaching celiac axis or bifurcation",
       flags=(("cha_reaches_ca_or_bifurcation", False),)),
    _R("cha-bodytail", ("common_hepatic_artery",), BODY_TAIL, "any", "body_tail_minor_arterial",
       "CHA contact {deg:.0f} deg with a {location} tumor (not listed by NCCN; resectbench option)",
       flags=(("cha_reaches_ca_or_bifurcation", False),)),
    # --- variant hepatic arteries
    _R("variant-head-br", VARIANT_ARTERIES, HEAD, "any", "BR",
       "{vessel} contact {deg:.0f} deg ({location} tumor)"),
    _R("variant-bodytail", VARIANT_ARTERIES, BODY_TAIL, "any", "body_tail_minor_arterial",
       "{vessel} contact {deg:.0f} deg with a {location} tumor (not listed by NCCN; resectbench option)"),
    # --- SMV / portal vein
    _R("vein-unreconstructable-la", VEINS, ANY_LOCATION, "any", "LA",
       "{vessel} contact {deg:.0f} deg, not reconstructable", flags=(("reconstructable", False),)),
    _R("vein-gt180-br", VEINS, ANY_LOCATION, "gt180", "BR", "{vessel} contact {deg:.0f} deg > 180 deg"),
    _R("vein-le180-irregular-br", VEINS, ANY_LOCATION, "le180", "BR",
       "{vessel} contact {deg:.0f} deg <= 180 deg with contour irregularity or thrombus",
       flags=(("vein_contour_irregular", True),)),
    _R("vein-le180-smooth-r", VEINS, ANY_LOCATION, "le180", "R",
       "{vessel} contact {deg:.0f} deg <= 180 deg with a smooth contour",
       flags=(("vein_contour_irregular", False),)),
    # --- IVC
    _R("ivc-br", ("ivc",), ANY_LOCATION, "any", "BR", "IVC contact {deg:.0f} deg"),
)


@dataclass(frozen=True)
class Firing:
    """A rule that fired for one vessel."""
    rule: str
    vessel: str
    contact_deg: float
    label: int
    reason: str


@dataclass(frozen=True)
class Decision:
    """The class and why. ``rules``/``reasons`` list every row that fired, worst class first."""
    label: int
    firings: tuple[Firing, ...] = ()
    version: str = RULES_VERSION
    options: RuleOptions = field(default_factory=RuleOptions)

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.label]

    @property
    def short_name(self) -> str:
        return SHORT_NAMES[self.label]

    @property
    def rules(self) -> list[str]:
        return [f.rule for f in self.firings]

    @property
    def reasons(self) -> list[str]:
        if not any(f.label > 0 for f in self.firings):
            return [f.reason for f in self.firings] + ["no borderline or locally advanced criterion met: resectable"]
        return [f"{SHORT_NAMES[f.label]}: {f.reason}" for f in self.firings]

    @property
    def decisive(self) -> list[str]:
        """Ids of the rules that set the class (those voting for it)."""
        return [f.rule for f in self.firings if f.label == self.label]


def _normalise_location(tumor_location: str) -> str:
    key = str(tumor_location).strip().lower().replace(" ", "_").replace("-", "_").replace("/", "_")
    if key not in _LOCATIONS:
        raise ValueError(f"unknown tumor location {tumor_location!r}; expected one of head, uncinate, neck, body, tail")
    return _LOCATIONS[key]


def _normalise_contacts(contact_deg: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in contact_deg.items():
        key = str(name).strip().lower()
        vessel = key if key in VARIANT_ARTERIES else canonical_name(key)
        if vessel is None:
            raise ValueError(f"unknown vessel {name!r} in contact_deg; expected canonical names such as "
                             f"{', '.join(RULED_VESSELS)}")
        deg = float(value)
        if math.isnan(deg):
            raise ValueError(f"contact angle for {name!r} is NaN")
        if not (0.0 <= deg <= 360.0 + 1e-6):
            raise ValueError(f"contact angle for {name!r} must be within 0-360 degrees, got {deg}")
        out[vessel] = max(out.get(vessel, 0.0), deg)
    return out


def _contact_matches(condition: str, deg: float, min_contact: float) -> bool:
    if deg <= min_contact:
        return False
    if condition == "any":
        return True
    if condition == "le180":
        return deg <= 180.0
    if condition == "gt180":
        return deg > 180.0
    raise ValueError(f"unknown contact condition {condition!r}")


def classify(contact_deg: Mapping[str, float], tumor_location: str, *, vein_contour_irregular: bool = False,
             reconstructable: bool = True, cha_reaches_ca_or_bifurcation: bool = False,
             aortic_involvement: bool = False, gda_intact: bool = True,
             options: RuleOptions = RuleOptions(), rules: tuple[Rule, ...] = RULES) -> Decision:
    """NCCN class of one case from its maximum contact angle per vessel (degrees, 0-360).

    ``contact_deg`` keys are canonical vessel names (aliases such as ``"SMA"`` or ``"celiac_axis"`` are
    accepted); a missing vessel means no contact; vessels without rows (aorta, splenic vein ...) are
    ignored. ``reconstructable`` refers to venous (and, with ``options.cha_uses_reconstructable``,
    CHA) reconstruction; ``gda_intact`` only matters for the modified-Appleby cell.
    """
    location = _normalise_location(tumor_location)
    contacts = _normalise_contacts(contact_deg)
    case_flags = {"vein_contour_irregular": bool(vein_contour_irregular), "reconstructable": bool(reconstructable),
                  "cha_reaches_ca_or_bifurcation": bool(cha_reaches_ca_or_bifurcation),
                  "aortic_involvement": bool(aortic_involvement), "gda_intact": bool(gda_intact)}
    firings: list[Firing] = []
    for rule in rules:
        if location not in rule.locations:
            continue
        if rule.flag_option is not None and not getattr(options, rule.flag_option):
            continue
        if any(case_flags[name] != wanted for name, wanted in rule.flags):
            continue
        outcome = rule.outcome if rule.outcome in _CLASS_OF else getattr(options, rule.outcome)
        for vessel in rule.vessels:
            deg = contacts.get(vessel, 0.0)
            if _contact_matches(rule.contact, deg, options.min_contact_deg):
                reason = rule.reason.format(vessel=DISPLAY_NAMES.get(vessel, vessel), deg=deg, location=location)
                firings.append(Firing(rule.id, vessel, deg, _CLASS_OF[outcome], reason))
    firings.sort(key=lambda f: -f.label)  # stable: table order within a class
    label = max((f.label for f in firings), default=0)
    return Decision(label=label, firings=tuple(firings), options=options)


def rules_table() -> list[dict]:
    """The decision table as plain rows (for docs and reports)."""
    return [{"id": r.id, "vessels": ", ".join(r.vessels), "locations": ", ".join(sorted(r.locations)),
             "contact": r.contact, "flags": ", ".join(f"{k}={v}" for k, v in r.flags),
             "outcome": r.outcome, "requires_option": r.flag_option or ""} for r in RULES]
