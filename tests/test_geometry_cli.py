"""`resectbench geometry measure` on a mask file and on a cohort, and its errors."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from resectbench.baselines.geometric_phantoms import write_phantom_cohort
from resectbench.cli.app import build_app
from resectbench.data import load_cohort
from resectbench.data.labels import INDEX
from resectbench.geometry.phantoms import TUMOR_LABEL, VESSEL_LABEL, tube_phantom


@pytest.fixture(scope="module")
def app():
    return build_app()


def _write_case(path, angle=200.0, extra_label=None):
    p = tube_phantom(angle, size_mm=32)
    mask = np.zeros_like(p.mask)
    mask[p.mask == VESSEL_LABEL] = INDEX["smv"]
    mask[p.mask == TUMOR_LABEL] = INDEX["tumor"]
    if extra_label is not None:
        mask[0, 0, 0] = extra_label
    nib.save(nib.Nifti1Image(mask, np.diag([1.0, 1.0, 1.0, 1.0])), str(path))
    return path


def test_measure_single_mask(app, tmp_path):
    case = _write_case(tmp_path / "case_7.nii.gz")
    out = tmp_path / "c.csv"
    result = CliRunner().invoke(app, ["geometry", "measure", str(case), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out).set_index("vessel")
    assert (table.case_id == "case_7").all()
    assert table.loc["smv", "contact_deg"] == pytest.approx(200.0, abs=15.0)
    assert table.loc["sma", "contact_deg"] == 0 and not table.loc["sma", "present"]


def test_measure_single_mask_with_custom_labels(app, tmp_path):
    p = tube_phantom(120.0, size_mm=32)
    nib.save(nib.Nifti1Image(p.mask, np.eye(4)), str(tmp_path / "m.nii.gz"))
    out = tmp_path / "c.csv"
    result = CliRunner().invoke(
        app, ["geometry", "measure", str(tmp_path / "m.nii.gz"), "--labels", "tumor=2,SMA=1", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out).set_index("vessel").loc["sma", "contact_deg"] == pytest.approx(120.0, abs=15.0)


def test_bad_masks_name_the_case(app, tmp_path):
    bad = _write_case(tmp_path / "case_9.nii.gz", extra_label=42)
    result = CliRunner().invoke(app, ["geometry", "measure", str(bad)])
    assert result.exit_code == 2 and "case_9" in result.output and "42" in result.output
    good = _write_case(tmp_path / "case_8.nii.gz")
    image = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 10), np.float32), np.eye(4)), str(image))
    result = CliRunner().invoke(app, ["geometry", "measure", str(good), "--image", str(image)])
    assert result.exit_code == 2 and "case_8" in result.output and "shape" in result.output


def test_measure_cohort_and_a_broken_case(app, tmp_path):
    manifest = write_phantom_cohort(tmp_path / "tubes")
    cohort = load_cohort(manifest)
    out = tmp_path / "cohort.csv"
    result = CliRunner().invoke(app, ["geometry", "measure", str(manifest), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert sorted(table.case_id.unique()) == cohort.case_ids
    assert {"tumor_location", "contact_deg", "min_distance_mm"} <= set(table.columns)
    touching = table[table.contact_deg > 0].set_index("case_id")
    assert len(touching) == len(cohort) - 1  # every case but the one held off by a gap
    # a mask that no longer matches its image grid -> error naming that case
    broken = tmp_path / "broken"
    shutil.copytree(manifest.parent, broken)
    victim = cohort.case_ids[1]
    mask_file = broken / "masks" / f"{victim}.nii.gz"
    img = nib.load(str(mask_file))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-2], img.affine), str(mask_file))
    result = CliRunner().invoke(
        app, ["geometry", "measure", str(broken / "manifest.csv"), "-o", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 2 and victim in result.output


# -- rule sets and clinical tables that do not matter for geometry ---------------------------------------
def _msd_with_a_broken_clinical_table(root, angles=(200.0, 330.0)):
    """An MSD folder whose clinical.csv is unusable (0/1 sex, -99, a bad label, a case without a row):
    geometry needs only the label maps."""
    import json

    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for k, angle in enumerate(angles):
        mask_path = _write_case(root / "labelsTr" / f"case_{k}.nii.gz", angle=angle)
        mask = nib.load(str(mask_path))
        nib.save(
            nib.Nifti1Image(np.zeros(mask.shape, np.float32), mask.affine),
            str(root / "imagesTr" / f"case_{k}_0000.nii.gz"),
        )
    (root / "dataset.json").write_text(json.dumps({"labels": {n: v for n, v in INDEX.items()}}))
    (root / "clinical.csv").write_text("case_id,label,sex,age\ncase_0,maybe,0,-99\n")
    return root


def test_measure_a_cohort_reads_only_images_and_masks_and_classifies_with_rules(app, tmp_path):
    root = _msd_with_a_broken_clinical_table(tmp_path / "cohort")
    assert CliRunner().invoke(app, ["data", "validate", str(root)]).exit_code == 1  # the table is broken ...
    out = tmp_path / "c.csv"
    result = CliRunner().invoke(app, ["geometry", "measure", str(root), "-o", str(out), "--rules", "nccn-2019-vein270"])
    assert result.exit_code == 0, result.output  # ... geometry does not care
    table = pd.read_csv(out)
    assert sorted(table.case_id.unique()) == ["case_0", "case_1"]
    smv = table[table.vessel == "smv"].set_index("case_id")
    assert smv.loc["case_1", "contact_deg"] > 270 and smv.loc["case_1", "rule_class"] == 2
    assert "vein-gt270-la" in smv.loc["case_1", "rules_fired"]
    assert smv.loc["case_0", "rule_class"] == 1 and (table.rule_set.str.startswith("nccn-2019-vein270/")).all()
    # the same measurements classified again under the Dutch criteria, from the CSV
    classes = tmp_path / "classes.csv"
    result = CliRunner().invoke(app, ["geometry", "classify", str(out), "--rules", "dpcg-2012", "-o", str(classes)])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(classes).set_index("case_id")
    assert got.loc["case_0", "rule_class_name"] == "borderline" and got.loc["case_1", "rule_class"] == 2
    assert "dpcg-vein-gt270-la" in got.loc["case_1", "decisive_rules"]


def test_classify_a_hand_written_contacts_table_with_a_users_rule_file(app, tmp_path):
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "case_id,vessel,contact_deg,tumor_location\np1,sma,100,head\np1,smv,0,head\np2,smv,200,body\np3,sma,0,tail\n"
    )
    rules = tmp_path / "ours.toml"
    rules.write_text(
        'extends = "nccn-2019"\n[[rules]]\nid = "sma-gt90-la"\nvessels = "sma"\nlocations = "any"\n'
        'contact = ">90"\noutcome = "LA"\nreason = "SMA {deg:.0f} deg > 90 (our centre)"\n'
    )
    out = tmp_path / "classes.csv"
    result = CliRunner().invoke(app, ["geometry", "classify", str(contacts), "--rules", str(rules), "-o", str(out)])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out).set_index("case_id")
    assert got.rule_class.to_dict() == {"p1": 2, "p2": 1, "p3": 0}
    assert "our centre" in got.loc["p1", "reasons"] and got.loc["p1", "rule_set"].startswith("ours/")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--rules", "nccn-1999"], "unknown rule set 'nccn-1999'"),
        (["--rules", "{bad}"], "unknown vessel 'spleen'"),
    ],
)
def test_bad_rules_exit_2_naming_the_problem(app, tmp_path, args, fragment):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[rules]]\nid = "x"\nvessels = "spleen"\nlocations = "any"\ncontact = "any"\noutcome = "BR"\nreason = "r"\n'
    )
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("case_id,vessel,contact_deg\np1,sma,100\n")
    args = [a.replace("{bad}", str(bad)) for a in args]
    for cmd in (
        ["geometry", "classify", str(contacts)],
        ["geometry", "measure", str(_write_case(tmp_path / "m.nii.gz"))],
    ):
        result = CliRunner().invoke(app, [*cmd, *args, "-o", str(tmp_path / "o.csv")])
        out = "".join(result.output.split())  # the console wraps long paths
        assert result.exit_code == 2 and "".join(fragment.split()) in out, result.output
        assert "Traceback" not in result.output and not (tmp_path / "o.csv").exists()
        if str(bad) in args:
            assert str(bad) in out


def test_classify_names_a_contacts_table_without_its_columns(app, tmp_path):
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("case_id,vessel,angle\np1,sma,100\n")
    result = CliRunner().invoke(app, ["geometry", "classify", str(contacts)])
    assert result.exit_code == 2 and "contacts.csv" in result.output and "contact_deg" in result.output


def test_rules_lists_and_shows_rule_sets(app):
    listing = CliRunner().invoke(app, ["geometry", "rules"])
    assert listing.exit_code == 0
    for name in ("nccn-2019", "nccn-2019-appleby-la", "nccn-2019-cha-br", "nccn-2019-vein270", "dpcg-2012"):
        assert name in listing.output
    shown = CliRunner().invoke(app, ["geometry", "rules", "nccn-2019-vein270"])
    assert shown.exit_code == 0 and "vein-gt270-la" in shown.output and "sma-gt180-la" in shown.output
    toml = CliRunner().invoke(app, ["geometry", "rules", "dpcg-2012", "--toml"])
    import tomllib

    assert tomllib.loads(toml.output)["name"] == "dpcg-2012"
