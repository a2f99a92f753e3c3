"""The NCCN rule engine: every row of shared NCCN.md's decision table, the switches, the reasons."""

from __future__ import annotations

import pytest

from resectbench.geometry.nccn import RULES, RULES_VERSION, RuleOptions, classify, rules_table

R, BR, LA = 0, 1, 2

# (contacts, location, flags, options, expected label, a rule id that must fire or None)
CASES = [
    # no contact at all
    ({}, "head", {}, {}, R, None),
    ({"sma": 0, "smv": 0, "celiac_trunk": 0}, "tail", {}, {}, R, None),
    # SMA row: 0 R; head <= 180 BR; > 180 LA any location
    ({"sma": 90}, "head", {}, {}, BR, "sma-le180-head-br"),
    ({"sma": 180}, "uncinate", {}, {}, BR, "sma-le180-head-br"),
    ({"sma": 181}, "head", {}, {}, LA, "sma-gt180-la"),
    ({"sma": 270}, "tail", {}, {}, LA, "sma-gt180-la"),
    ({"sma": 90}, "body", {}, {}, BR, "sma-le180-bodytail"),
    ({"sma": 90}, "body", {}, {"body_tail_minor_arterial": "R"}, R, "sma-le180-bodytail"),
    # celiac axis row
    ({"celiac_trunk": 120}, "body", {}, {}, BR, "ca-le180-bodytail-br"),
    ({"celiac_trunk": 200}, "tail", {}, {}, BR, "ca-gt180-bodytail-appleby"),
    ({"celiac_trunk": 200}, "tail", {}, {"modified_appleby": "LA"}, LA, "ca-gt180-bodytail-appleby"),
    ({"celiac_trunk": 200}, "tail", {"gda_intact": False}, {}, LA, "ca-gt180-bodytail-gda-la"),
    ({"celiac_trunk": 200}, "body", {"aortic_involvement": True}, {}, LA, "ca-aorta-la"),
    ({"celiac_trunk": 30}, "body", {"aortic_involvement": True}, {}, LA, "ca-aorta-la"),
    ({"celiac_trunk": 200}, "head", {}, {}, LA, "ca-gt180-head-la"),
    ({"celiac_trunk": 100}, "head", {}, {}, BR, "ca-le180-head"),
    ({"celiac_trunk": 100}, "head", {}, {"head_ca_le_180": "LA"}, LA, "ca-le180-head"),
    ({"celiac_trunk": 100}, "head", {}, {"head_ca_le_180": "R"}, R, "ca-le180-head"),
    ({}, "body", {"aortic_involvement": True}, {}, R, None),  # aortic involvement needs CA contact
    # CHA row
    ({"common_hepatic_artery": 60}, "head", {}, {}, BR, "cha-head-br"),
    ({"common_hepatic_artery": 60}, "head", {"cha_reaches_ca_or_bifurcation": True}, {}, LA, "cha-extends-la"),
    ({"common_hepatic_artery": 60}, "head", {"reconstructable": False}, {}, LA, "cha-unreconstructable-la"),
    (
        {"common_hepatic_artery": 60},
        "head",
        {"reconstructable": False},
        {"cha_uses_reconstructable": False},
        BR,
        "cha-head-br",
    ),
    ({"common_hepatic_artery": 60}, "tail", {}, {}, BR, "cha-bodytail"),
    ({"common_hepatic_artery": 60}, "tail", {"cha_reaches_ca_or_bifurcation": True}, {}, LA, "cha-extends-la"),
    # variant arteries row
    ({"replaced_hepatic_artery": 40}, "head", {}, {}, BR, "variant-head-br"),
    ({"accessory_hepatic_artery": 40}, "uncinate", {}, {}, BR, "variant-head-br"),
    ({"variant_hepatic_artery": 40}, "body", {}, {}, BR, "variant-bodytail"),
    # SMV / PV row
    ({"smv": 120}, "head", {}, {}, R, "vein-le180-smooth-r"),
    ({"portal_vein": 180}, "body", {}, {}, R, "vein-le180-smooth-r"),
    ({"smv": 120}, "head", {"vein_contour_irregular": True}, {}, BR, "vein-le180-irregular-br"),
    ({"smv": 200}, "head", {}, {}, BR, "vein-gt180-br"),
    ({"portal_vein": 360}, "tail", {}, {}, BR, "vein-gt180-br"),
    ({"smv": 200}, "head", {"reconstructable": False}, {}, LA, "vein-unreconstructable-la"),
    ({"portal_vein": 40}, "head", {"reconstructable": False}, {}, LA, "vein-unreconstructable-la"),
    ({}, "head", {"reconstructable": False, "vein_contour_irregular": True}, {}, R, None),  # no contact
    # IVC row
    ({"ivc": 10}, "head", {}, {}, BR, "ivc-br"),
    ({"ivc": 250}, "tail", {}, {}, BR, "ivc-br"),
    # combinations: LA wins over BR, BR over R
    ({"smv": 200, "sma": 200}, "head", {}, {}, LA, "sma-gt180-la"),
    ({"smv": 100, "sma": 50}, "head", {}, {}, BR, "sma-le180-head-br"),
    # vessels without rows are ignored
    ({"aorta": 300, "splenic_vein": 270}, "head", {}, {}, R, None),
]


@pytest.mark.parametrize("contacts,location,flags,options,expected,rule", CASES)
def test_decision_table(contacts, location, flags, options, expected, rule):
    d = classify(contacts, location, options=RuleOptions(**options), **flags)
    assert d.label == expected, d.reasons
    if rule is None:
        assert all(f.label == 0 for f in d.firings)
    else:
        assert rule in d.rules
    assert d.version == RULES_VERSION if not options else d.version.startswith("nccn-2019/")
    assert d.reasons and all(isinstance(r, str) and r for r in d.reasons)


def test_every_rule_is_exercised():
    fired = set()
    for contacts, location, flags, options, _, _ in CASES:
        fired.update(classify(contacts, location, options=RuleOptions(**options), **flags).rules)
    assert fired == {r.id for r in RULES}
    assert len(rules_table()) == len(RULES)


def test_reasons_name_vessel_and_angle_and_order_worst_first():
    d = classify({"smv": 210, "sma": 200, "ivc": 5}, "head")
    assert d.label == LA and d.class_name == "locally_advanced" and d.short_name == "LA"
    assert d.firings[0].label == LA and "SMA" in d.reasons[0] and "200" in d.reasons[0]
    assert d.decisive == ["sma-gt180-la"]
    assert any("SMV" in r and "210" in r for r in d.reasons)


def test_threshold_at_exactly_180_is_not_above():
    assert classify({"sma": 180.0}, "head").label == BR
    assert classify({"sma": 180.0001}, "head").label == LA
    assert classify({"smv": 180.0}, "head").label == R


def test_min_contact_deg_ignores_grazing_touches():
    assert classify({"ivc": 4}, "head").label == BR
    assert classify({"ivc": 4}, "head", options=RuleOptions(min_contact_deg=5)).label == R


def test_aliases_and_locations():
    assert classify({"SMA": 200}, "Head").label == LA
    assert classify({"celiac_axis": 200}, "body/tail").rules == ["ca-gt180-bodytail-appleby"]
    assert classify({"sma": 90}, "neck").label == BR  # neck read as head


@pytest.mark.parametrize("bad", [{"spleen": 10}, {"sma": -1}, {"sma": 400}, {"sma": float("nan")}])
def test_bad_contacts_raise(bad):
    with pytest.raises(ValueError):
        classify(bad, "head")


def test_bad_location_and_options_raise():
    with pytest.raises(ValueError, match="location"):
        classify({}, "liver")
    with pytest.raises(ValueError, match="modified_appleby"):
        RuleOptions(modified_appleby="maybe")


# -- rule sets as files ---------------------------------------------------------------------------------
from resectbench.geometry.nccn import RULE_SET_NAMES, RulesError, load_rules  # noqa: E402


def test_shipped_rule_sets_load_and_cite_a_source():
    assert {"nccn-2019", "nccn-2019-appleby-la", "nccn-2019-cha-br", "nccn-2019-vein270", "dpcg-2012"} <= set(
        RULE_SET_NAMES
    )
    versions = set()
    for name in RULE_SET_NAMES:
        rs = load_rules(name)
        assert rs.name == name and rs.title and rs.source and rs.rules
        versions.add(rs.version)
    assert len(versions) == len(RULE_SET_NAMES)  # every set is told apart in results
    assert load_rules(None).rules == RULES == load_rules("nccn-2019").rules


@pytest.mark.parametrize(
    "rules,contacts,location,flags,expected,rule",
    [
        # modified Appleby: BR by NCCN, LA by the institutional variant
        ("nccn-2019", {"celiac_trunk": 200}, "body", {}, BR, "ca-gt180-bodytail-appleby"),
        ("nccn-2019-appleby-la", {"celiac_trunk": 200}, "body", {}, LA, "ca-gt180-bodytail-appleby"),
        # CHA contact without celiac extension: the reconstructable flag no longer makes it LA
        (
            "nccn-2019",
            {"common_hepatic_artery": 60},
            "head",
            {"reconstructable": False},
            LA,
            "cha-unreconstructable-la",
        ),
        ("nccn-2019-cha-br", {"common_hepatic_artery": 60}, "head", {"reconstructable": False}, BR, "cha-head-br"),
        (
            "nccn-2019-cha-br",
            {"common_hepatic_artery": 60},
            "head",
            {"cha_reaches_ca_or_bifurcation": True},
            LA,
            "cha-extends-la",
        ),
        # venous contact > 270 taken as unreconstructable
        ("nccn-2019", {"smv": 280}, "head", {}, BR, "vein-gt180-br"),
        ("nccn-2019-vein270", {"smv": 280}, "head", {}, LA, "vein-gt270-la"),
        ("nccn-2019-vein270", {"portal_vein": 270}, "head", {}, BR, "vein-gt180-br"),
        # Dutch criteria: 90 / 270 degrees, no location distinction
        ("dpcg-2012", {"sma": 45}, "tail", {}, BR, "dpcg-artery-le90-br"),
        ("dpcg-2012", {"common_hepatic_artery": 91}, "head", {}, LA, "dpcg-artery-gt90-la"),
        ("dpcg-2012", {"smv": 90}, "head", {}, R, "dpcg-vein-le90-r"),
        ("dpcg-2012", {"smv": 150}, "head", {}, BR, "dpcg-vein-gt90-br"),
        ("dpcg-2012", {"portal_vein": 271}, "body", {}, LA, "dpcg-vein-gt270-la"),
        ("dpcg-2012", {"smv": 40}, "head", {"reconstructable": False}, LA, "dpcg-vein-occlusion-la"),
        ("dpcg-2012", {"ivc": 200}, "head", {}, R, None),
    ],
)
def test_rule_set_variants(rules, contacts, location, flags, expected, rule):
    d = classify(contacts, location, rules=rules, **flags)
    assert d.label == expected, d.reasons
    assert d.version == load_rules(rules).version
    if rule is not None:
        assert rule in d.decisive


def test_a_users_rule_file_extends_replaces_and_drops(tmp_path):
    (tmp_path / "base.toml").write_text('extends = "nccn-2019"\n[options]\nmodified_appleby = "LA"\n')
    mine = tmp_path / "mine.toml"
    mine.write_text(
        'name = "our-centre"\nextends = "base.toml"\ndrop = ["ivc-br"]\n'
        '[[rules]]\nid = "sma-le180-head-br"\nvessels = "sma"\nlocations = "head"\ncontact = "<=90"\n'
        'outcome = "BR"\nreason = "SMA {deg:.0f} deg <= 90"\n'
        '[[rules]]\nid = "sma-90-180-la"\nvessels = ["SMA"]\nlocations = ["head", "uncinate"]\n'
        'contact = ">90"\noutcome = "LA"\nreason = "SMA {deg:.0f} deg > 90 ({location})"\n'
    )
    rs = load_rules(mine)
    assert rs.name == "our-centre" and rs.options.modified_appleby == "LA"
    assert [r.id for r in rs.rules].index("sma-le180-head-br") == 1  # replaced in place
    assert "ivc-br" not in [r.id for r in rs.rules]
    assert classify({"sma": 120}, "head", rules=rs).label == LA
    assert classify({"sma": 60}, "head", rules=str(mine)).label == BR
    assert classify({"ivc": 30}, "head", rules=rs).label == R
    assert classify({"celiac_trunk": 200}, "tail", rules=rs).label == LA
    js = tmp_path / "mine.json"
    js.write_text('{"extends": "dpcg-2012", "options": {"min_contact_deg": 10}}')
    assert classify({"sma": 8}, "head", rules=js).label == R


_RULE = 'id = "x"\nvessels = "sma"\nlocations = "any"\ncontact = "any"\noutcome = "BR"\nreason = "r"\n'


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("this is = not toml [", "not valid TOML"),
        ("[[rules]]\n" + _RULE.replace('"sma"', '"spleen"'), "unknown vessel 'spleen'"),
        ("[[rules]]\n" + _RULE.replace('"any"\ncontact', '"liver"\ncontact'), "unknown location 'liver'"),
        ("[[rules]]\n" + _RULE.replace('contact = "any"', 'contact = "about 90"'), "contact 'about 90'"),
        ("[[rules]]\n" + _RULE.replace('"BR"', '"maybe"'), "outcome 'maybe'"),
        ("[[rules]]\n" + _RULE + "flags = { sunny = true }\n", "unknown flag 'sunny'"),
        ("[[rules]]\n" + _RULE + 'flags = { reconstructable = "no" }\n', "must be true or false"),
        ("[[rules]]\n" + _RULE.replace('"r"', '"{angle} deg"'), "may use only {vessel}, {deg} and {location}"),
        ("[[rules]]\n" + _RULE + "colour = 1\n", "unknown key(s) colour"),
        ("[[rules]]\n" + _RULE.replace('id = "x"\n', ""), "missing id"),
        ("[[rules]]\n" + _RULE + "[[rules]]\n" + _RULE, "id 'x' used twice"),
        ('extends = "nccn-2019"\n[options]\nmodified_appleby = "sometimes"\n', "modified_appleby must be"),
        ('extends = "nccn-2019"\n[options]\nappleby = "LA"\n', "unknown option(s) appleby"),
        ('extends = "nccn-2019"\ndrop = ["no-such-rule"]\n', "'drop' names rule(s) no-such-rule"),
        ('extends = "nowhere.toml"\n', "does not exist"),
        ('extends = "bad.toml"\n', "'extends' loops back"),
        ('title = "empty"\n', "no rules"),
    ],
)
def test_a_bad_rule_file_names_the_file_and_the_problem(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert str(path) in str(err.value) and fragment in str(err.value), str(err.value)


def test_unknown_rule_set_lists_the_shipped_ones():
    with pytest.raises(RulesError, match="nccn-2019-vein270"):
        load_rules("nccn-2017")
