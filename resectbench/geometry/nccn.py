"""The NCCN resectability decision table for pancreatic cancer, and its variants, as data.

One implementation, used for the synthetic cohort's ground truth and by the geometric baselines.
A *rule set* is a TOML (or JSON) file: rows (:class:`Rule`) naming the vessels they look at, the
tumor locations they apply to, the contact condition, any case flags they need and the class they
vote for, plus the switches of :class:`RuleOptions`. ``classify`` evaluates all rows and returns the
worst class among the rows that fired (LA if any LA condition holds, else BR if any BR condition
holds, else R), with the rules and human-readable reasons, so every decision can be explained.

Shipped rule sets live in ``resectbench/geometry/rules/`` (:data:`RULE_SET_NAMES`; cited in
docs/geometry.md): ``nccn-2019`` (the default: the NCCN PDAC guideline v1.2019 onwards, see shared
NCCN.md) and named institutional variants of it, and ``dpcg-2012`` (Dutch criteria). A user's own
file is loaded the same way (:func:`load_rules`); a variant may ``extends`` another set, replacing
rows by id, dropping rows and changing options.

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

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import tomllib

from ..errors import ResectbenchError
from ..vocabulary import (
    CLASS_NAMES,
    RULE_TABLE_VESSELS,
    SHORT_CLASS_NAMES as SHORT_NAMES,
    VARIANT_ARTERIES,
    VEINS,
    canonical_name,
)

_CLASS_OF = {"R": 0, "BR": 1, "LA": 2, "resectable": 0, "borderline": 1, "locally_advanced": 2}

HEAD = frozenset({"head", "uncinate"})
BODY_TAIL = frozenset({"body", "tail"})
ANY_LOCATION = HEAD | BODY_TAIL
#: Accepted spellings of tumor locations -> the guideline's location groups. The neck sits in front
#: of the SMV/PV and is resected with the head (pancreatoduodenectomy): resectbench reads it as head.
_LOCATIONS = {
    "head": "head",
    "uncinate": "uncinate",
    "uncinate_process": "uncinate",
    "neck": "head",
    "body": "body",
    "tail": "tail",
    "body_tail": "body",
    "head_uncinate": "head",
}

DISPLAY_NAMES = {
    "sma": "SMA",
    "celiac_trunk": "celiac axis",
    "common_hepatic_artery": "CHA",
    "smv": "SMV",
    "portal_vein": "portal vein",
    "ivc": "IVC",
    "variant_hepatic_artery": "variant hepatic artery",
    "replaced_hepatic_artery": "replaced hepatic artery",
    "accessory_hepatic_artery": "accessory hepatic artery",
}
#: Group names a rule file may use instead of listing vessels.
VESSEL_GROUPS = {"veins": VEINS, "variant_arteries": VARIANT_ARTERIES}
#: Group names a rule file may use for locations.
LOCATION_GROUPS = {"any": ANY_LOCATION, "head": HEAD, "body_tail": BODY_TAIL}
#: Case attributes a rule may require (``flags``).
CASE_FLAGS = (
    "vein_contour_irregular",
    "reconstructable",
    "cha_reaches_ca_or_bifurcation",
    "aortic_involvement",
    "gda_intact",
)

RULES_DIR = Path(__file__).with_name("rules")
DEFAULT_RULE_SET = "nccn-2019"
#: Names of the shipped rule sets (files ``rules/<name>.toml``).
RULE_SET_NAMES = tuple(sorted(p.stem for p in RULES_DIR.glob("*.toml")))


class RulesError(ResectbenchError):
    """A rule set that cannot be used: unknown name, unreadable file, or a row or option that is wrong.
    The message names the file and the problem."""


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
        for f in _CLASS_OPTIONS:
            value = getattr(self, f)
            if value not in ("R", "BR", "LA"):
                raise ValueError(f"RuleOptions.{f} must be 'R', 'BR' or 'LA', got {value!r}")
        if not isinstance(self.cha_uses_reconstructable, bool):
            raise ValueError(
                f"RuleOptions.cha_uses_reconstructable must be true or false, got {self.cha_uses_reconstructable!r}"
            )
        if (
            isinstance(self.min_contact_deg, bool)
            or not isinstance(self.min_contact_deg, (int, float))
            or not (0.0 <= self.min_contact_deg < 180.0)
        ):
            raise ValueError(f"RuleOptions.min_contact_deg must be a number in [0, 180), got {self.min_contact_deg!r}")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_CLASS_OPTIONS = ("modified_appleby", "head_ca_le_180", "body_tail_minor_arterial")
_BOOL_OPTIONS = ("cha_uses_reconstructable",)


@dataclass(frozen=True)
class Rule:
    """One row of the decision table.

    ``contact`` is ``"any"`` (contact above ``min_contact_deg``), ``"le180"`` (any contact, at most
    180 deg), ``"gt180"`` (more than 180 deg) or a comparison with a number of degrees, ``">270"``,
    ``">=300"``, ``"<=90"``, ``"<90"`` (always contact above ``min_contact_deg`` as well). ``flags`` are
    case attributes that must have the given value (:data:`CASE_FLAGS`). ``outcome`` is a class short
    name, or the name of the :class:`RuleOptions` field that holds it. ``flag_option``: a boolean
    RuleOptions field that must be True for the row to apply. ``reason`` is formatted with vessel,
    deg, location.
    """

    id: str
    vessels: tuple[str, ...]
    locations: frozenset
    contact: str
    outcome: str
    reason: str
    flags: tuple[tuple[str, bool], ...] = ()
    flag_option: str | None = None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "vessels": list(self.vessels),
            "locations": sorted(self.locations),
            "contact": self.contact,
            "outcome": self.outcome,
            "reason": self.reason,
            "flags": {k: v for k, v in self.flags},
            "requires_option": self.flag_option,
        }


_COMPARISON = re.compile(r"^\s*(>=|<=|>|<)\s*(\d+(?:\.\d+)?)\s*$")
_NAMED_CONTACT = {"le180": ("<=", 180.0), "gt180": (">", 180.0)}


@lru_cache(maxsize=None)
def _parse_contact(condition: str) -> tuple[str, float] | None:
    """None for "any", else (operator, degrees); ValueError for anything else."""
    if condition == "any":
        return None
    if condition in _NAMED_CONTACT:
        return _NAMED_CONTACT[condition]
    m = _COMPARISON.match(str(condition))
    if m is None or not (0.0 <= float(m[2]) <= 360.0):
        raise ValueError(
            f"contact {condition!r} must be 'any', 'le180', 'gt180' or a comparison with 0-360 "
            "degrees such as '>270' or '<=90'"
        )
    return m[1], float(m[2])


@dataclass(frozen=True)
class RuleSet:
    """A named decision table with its options. ``version`` (name + a digest of rows and options) is
    recorded with every decision, so results say exactly which rules made them."""

    name: str
    rules: tuple[Rule, ...]
    options: RuleOptions = field(default_factory=RuleOptions)
    title: str = ""
    source: str = ""
    path: str | None = None

    @property
    def version(self) -> str:
        return _version(self.name, self.rules, self.options)

    def with_options(self, **changes) -> "RuleSet":
        """The same rows with some options changed (None values keep the set's own)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, options=replace(self.options, **changes)) if changes else self


@lru_cache(maxsize=256)
def _version(name: str, rules: tuple[Rule, ...], options: RuleOptions) -> str:
    content = json.dumps([[r.as_dict() for r in rules], options.as_dict()], sort_keys=True)
    return f"{name}/{hashlib.sha256(content.encode()).hexdigest()[:10]}"


def _read_rule_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError(f"rule file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"rule file {path}: cannot be read ({exc})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise RulesError(f"rule file {path}: not valid JSON ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"rule file {path}: not valid TOML ({exc})") from None
    if not isinstance(data, dict):
        raise RulesError(
            f"rule file {path}: must be a table/object with 'rules' and 'options', got {type(data).__name__}"
        )
    return data


_FILE_KEYS = {"name", "title", "source", "extends", "drop", "options", "rules"}
_RULE_KEYS = {"id", "vessels", "locations", "contact", "outcome", "reason", "flags", "requires_option"}


def _rule_from_dict(raw, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be a table, got {raw!r}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RulesError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(_RULE_KEYS))}"
        )
    missing = [k for k in ("id", "vessels", "locations", "contact", "outcome", "reason") if k not in raw]
    if missing:
        raise RulesError(f"{where}: missing {', '.join(missing)}")
    rid = raw["id"]
    if not isinstance(rid, str) or not rid.strip():
        raise RulesError(f"{where}: 'id' must be a non-empty string, got {rid!r}")
    where = f"{where} (id {rid!r})"
    vessels_raw = raw["vessels"]
    names = [vessels_raw] if isinstance(vessels_raw, str) else vessels_raw
    if not isinstance(names, list) or not names or not all(isinstance(v, str) for v in names):
        raise RulesError(f"{where}: 'vessels' must be a vessel name, a group or a list of names, got {vessels_raw!r}")
    vessels: list[str] = []
    for name in names:
        key = name.strip().lower()
        group = VESSEL_GROUPS.get(key)
        vessel = key if key in VARIANT_ARTERIES else canonical_name(key)
        if group is None and vessel not in RULE_TABLE_VESSELS:
            raise RulesError(
                f"{where}: unknown vessel {name!r}; known: {', '.join(RULE_TABLE_VESSELS)} "
                f"or the groups {', '.join(VESSEL_GROUPS)}"
            )
        vessels += [v for v in (group or (vessel,)) if v not in vessels]
    loc_raw = raw["locations"]
    loc_names = [loc_raw] if isinstance(loc_raw, str) else loc_raw
    if not isinstance(loc_names, list) or not loc_names or not all(isinstance(v, str) for v in loc_names):
        raise RulesError(f"{where}: 'locations' must be a location, a group or a list, got {loc_raw!r}")
    locations: set[str] = set()
    for name in loc_names:
        key = name.strip().lower()
        if key in LOCATION_GROUPS:
            locations |= LOCATION_GROUPS[key]
        elif key in ANY_LOCATION:
            locations.add(key)
        else:
            raise RulesError(
                f"{where}: unknown location {name!r}; use head, uncinate, body, tail or the groups "
                f"{', '.join(LOCATION_GROUPS)}"
            )
    contact = raw["contact"]
    try:
        _parse_contact(contact)
    except ValueError as exc:
        raise RulesError(f"{where}: {exc}") from None
    outcome = raw["outcome"]
    if outcome not in ("R", "BR", "LA") and outcome not in _CLASS_OPTIONS:
        raise RulesError(
            f"{where}: outcome {outcome!r} must be R, BR, LA or one of the options {', '.join(_CLASS_OPTIONS)}"
        )
    flags_raw = raw.get("flags", {})
    if not isinstance(flags_raw, dict):
        raise RulesError(f"{where}: 'flags' must be a table of case flags, got {flags_raw!r}")
    for name, value in flags_raw.items():
        if name not in CASE_FLAGS:
            raise RulesError(f"{where}: unknown flag {name!r}; known: {', '.join(CASE_FLAGS)}")
        if not isinstance(value, bool):
            raise RulesError(f"{where}: flag {name!r} must be true or false, got {value!r}")
    option = raw.get("requires_option")
    if option is not None and option not in _BOOL_OPTIONS:
        raise RulesError(f"{where}: requires_option {option!r} must be one of {', '.join(_BOOL_OPTIONS)}")
    reason = raw["reason"]
    if not isinstance(reason, str) or not reason.strip():
        raise RulesError(f"{where}: 'reason' must be a non-empty string")
    try:
        reason.format(vessel="SMA", deg=1.0, location="head")
    except (KeyError, IndexError, ValueError) as exc:
        raise RulesError(
            f"{where}: reason {reason!r} may use only {{vessel}}, {{deg}} and {{location}} "
            f"({type(exc).__name__}: {exc})"
        ) from None
    return Rule(
        rid.strip(),
        tuple(vessels),
        frozenset(locations),
        str(contact),
        outcome,
        reason,
        tuple(flags_raw.items()),
        option,
    )


def _build_rule_set(data: dict, path: Path, seen: tuple[str, ...]) -> RuleSet:
    where = f"rule file {path}"
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise RulesError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(_FILE_KEYS))}"
        )
    for key in ("name", "title", "source", "extends"):
        if key in data and not isinstance(data[key], str):
            raise RulesError(f"{where}: {key!r} must be a string, got {data[key]!r}")
    rules: list[Rule] = []
    options = RuleOptions()
    if "extends" in data:
        try:
            base = _load(data["extends"], seen + (str(path),), path.parent)
        except RulesError as exc:
            raise RulesError(f"{where}: extends {data['extends']!r}: {exc}") from None
        rules, options = list(base.rules), base.options
    drop = data.get("drop", [])
    if not isinstance(drop, list) or not all(isinstance(d, str) for d in drop):
        raise RulesError(f"{where}: 'drop' must be a list of rule ids, got {drop!r}")
    absent = [d for d in drop if d not in {r.id for r in rules}]
    if absent:
        raise RulesError(
            f"{where}: 'drop' names rule(s) {', '.join(absent)} that "
            f"{'the extended set does not have' if 'extends' in data else 'need extends = ...'}"
        )
    rules = [r for r in rules if r.id not in drop]
    raw_options = data.get("options", {})
    if not isinstance(raw_options, dict):
        raise RulesError(f"{where}: 'options' must be a table, got {raw_options!r}")
    valid = {f.name for f in fields(RuleOptions)}
    bad = set(raw_options) - valid
    if bad:
        raise RulesError(f"{where}: unknown option(s) {', '.join(sorted(bad))}; valid: {', '.join(sorted(valid))}")
    try:
        options = replace(options, **raw_options)
    except ValueError as exc:
        raise RulesError(f"{where}: {exc}") from None
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RulesError(f"{where}: 'rules' must be a list of tables ([[rules]] in TOML), got {raw_rules!r}")
    ids_here: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule_from_dict(raw, f"{where}: rules[{i}]")
        if rule.id in ids_here:
            raise RulesError(f"{where}: rules[{i}]: id {rule.id!r} used twice")
        ids_here.add(rule.id)
        at = next((k for k, r in enumerate(rules) if r.id == rule.id), None)
        if at is None:
            rules.append(rule)
        else:  # a row of the extended set with the same id is replaced in place
            rules[at] = rule
    if not rules:
        raise RulesError(f'{where}: no rules (give [[rules]] rows or extends = "{DEFAULT_RULE_SET}")')
    name = data.get("name") or path.stem
    return RuleSet(
        name=name,
        rules=tuple(rules),
        options=options,
        title=data.get("title", ""),
        source=data.get("source", ""),
        path=str(path),
    )


def _resolve(name_or_path: str | Path, base: Path | None = None) -> Path:
    text = str(name_or_path).strip()
    if text in RULE_SET_NAMES:
        return RULES_DIR / f"{text}.toml"
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():  # extends = "mine.toml": next to the extending file
        path = base / path
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        return path
    raise RulesError(
        f"unknown rule set {text!r}: give one of {', '.join(RULE_SET_NAMES)} or the path of a .toml/.json rule file"
    )


def _load(name_or_path, seen: tuple[str, ...], base: Path | None = None) -> RuleSet:
    path = _resolve(name_or_path, base)
    if str(path) in seen:
        raise RulesError(f"rule file {path}: 'extends' loops back to itself ({' -> '.join(seen + (str(path),))})")
    if path.is_dir():
        raise RulesError(f"rule file {path} is a folder, not a .toml/.json file")
    return _build_rule_set(_read_rule_file(path), path, seen)


def load_rules(name_or_path: str | Path | RuleSet | None = None) -> RuleSet:
    """A shipped rule set by name (:data:`RULE_SET_NAMES`; None: ``nccn-2019``) or a rule file (TOML or
    JSON) by path. :class:`RulesError` names the file and the problem."""
    if isinstance(name_or_path, RuleSet):
        return name_or_path
    key = DEFAULT_RULE_SET if name_or_path is None or str(name_or_path).strip() == "" else str(name_or_path)
    if key in RULE_SET_NAMES:
        return _load_shipped(key)
    return _load(key, ())


@lru_cache(maxsize=None)
def _load_shipped(name: str) -> RuleSet:
    return _load(name, ())


DEFAULT_RULES = load_rules(DEFAULT_RULE_SET)
#: The default decision table (``nccn-2019``).
RULES: tuple[Rule, ...] = DEFAULT_RULES.rules
#: Identifies the default table; recorded with every decision so results say which rules made them.
RULES_VERSION = DEFAULT_RULES.version


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
            raise ValueError(
                f"unknown vessel {name!r} in contact_deg; expected canonical names such as "
                f"{', '.join(RULE_TABLE_VESSELS)}"
            )
        deg = float(value)
        if math.isnan(deg):
            raise ValueError(f"contact angle for {name!r} is NaN")
        if not (0.0 <= deg <= 360.0 + 1e-6):
            raise ValueError(f"contact angle for {name!r} must be within 0-360 degrees, got {deg}")
        out[vessel] = max(out.get(vessel, 0.0), deg)
    return out


_OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


def _contact_matches(condition: str, deg: float, min_contact: float) -> bool:
    if deg <= min_contact:
        return False
    parsed = _parse_contact(condition)
    return parsed is None or _OPS[parsed[0]](deg, parsed[1])


def classify(
    contact_deg: Mapping[str, float],
    tumor_location: str,
    *,
    vein_contour_irregular: bool = False,
    reconstructable: bool = True,
    cha_reaches_ca_or_bifurcation: bool = False,
    aortic_involvement: bool = False,
    gda_intact: bool = True,
    options: RuleOptions | None = None,
    rules: RuleSet | str | Path | None = None,
) -> Decision:
    """Class of one case from its maximum contact angle per vessel (degrees, 0-360).

    ``rules``: a :class:`RuleSet`, a shipped rule-set name or a rule file (default ``nccn-2019``);
    ``options`` replaces the rule set's own options when given. ``contact_deg`` keys are canonical
    vessel names (aliases such as ``"SMA"`` or ``"celiac_axis"`` are accepted); a missing vessel means
    no contact; vessels without rows (aorta, splenic vein ...) are ignored. ``reconstructable``
    refers to venous (and, with ``options.cha_uses_reconstructable``, CHA) reconstruction;
    ``gda_intact`` only matters for the modified-Appleby cell.
    """
    rule_set = load_rules(rules)
    if options is not None:
        rule_set = replace(rule_set, options=options)
    options = rule_set.options
    location = _normalise_location(tumor_location)
    contacts = _normalise_contacts(contact_deg)
    case_flags = {
        "vein_contour_irregular": bool(vein_contour_irregular),
        "reconstructable": bool(reconstructable),
        "cha_reaches_ca_or_bifurcation": bool(cha_reaches_ca_or_bifurcation),
        "aortic_involvement": bool(aortic_involvement),
        "gda_intact": bool(gda_intact),
    }
    firings: list[Firing] = []
    for rule in rule_set.rules:
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
    return Decision(label=label, firings=tuple(firings), version=rule_set.version, options=options)


def rules_table(rules: RuleSet | str | Path | None = None) -> list[dict]:
    """A decision table as plain rows (for docs and reports); default ``nccn-2019``."""
    return [
        {
            "id": r.id,
            "vessels": ", ".join(r.vessels),
            "locations": ", ".join(sorted(r.locations)),
            "contact": r.contact,
            "flags": ", ".join(f"{k}={v}" for k, v in r.flags),
            "outcome": r.outcome,
            "requires_option": r.flag_option or "",
        }
        for r in load_rules(rules).rules
    ]
