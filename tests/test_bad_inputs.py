"""Every kind of bad input (docs/data.md, "Bad input") is refused before any work: `resectbench run` exits 2
and `data validate` exits 1, each naming the case (or the file) and the problem, with no traceback, and
nothing changes on disk (the data stays byte-identical, no run directory appears)."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from data_fixtures import write_msd
from typer.testing import CliRunner

from resectbench.cli.app import build_app


def invoke(*args):
    # catch_exceptions=False: an unexpected exception (a traceback for the user) fails the test
    return CliRunner().invoke(build_app(), list(map(str, args)), catch_exceptions=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- breakers: each spoils a 4-case MSD dataset written by data_fixtures.write_msd ----------------------
def _image(root, cid="case01"):
    return root / "imagesTr" / f"{cid}_0000.nii.gz"


def _mask(root, cid="case01"):
    return root / "labelsTr" / f"{cid}.nii.gz"


def _edit_table(root, fn):
    df = pd.read_csv(root / "clinical.csv", dtype=str, keep_default_na=False)
    fn(df).to_csv(root / "clinical.csv", index=False)


def _set(column, value, cid="case01"):
    def fn(df):
        df.loc[df.case_id == cid, column] = value
        return df

    return lambda root: _edit_table(root, fn)


def _resave(path, fn):
    img = nib.load(str(path))
    data, affine = fn(np.asarray(img.dataobj).copy(), img.affine.copy())
    nib.save(nib.Nifti1Image(data, affine), str(path))


def _truncate(path_of):
    def breaker(root):
        p = path_of(root)
        p.write_bytes(p.read_bytes()[:-12])  # the header stays readable, the voxels end early

    return breaker


def _nan_in(path):
    def fn(a, aff):
        a = a.astype(np.float32)
        a[1, 1, 1] = np.nan
        return a, aff

    _resave(path, fn)


def _nan(root):
    _nan_in(_image(root))


def _mask_value_9(root):
    def fn(a, aff):
        a[0, 0, 0] = 9
        return a, aff

    _resave(_mask(root), fn)


def _shift_mask(root):
    def fn(a, aff):
        aff[0, 3] += 5.0
        return a, aff

    _resave(_mask(root), fn)


def _crop_mask(root):
    _resave(_mask(root), lambda a, aff: (a[:-1], aff))


def _thick_slices(root):
    def fn(a, aff):
        aff[2, 2] = 40.0
        return a, aff

    _resave(_image(root), fn)


def _four_d(root):
    _resave(_image(root), lambda a, aff: (np.stack([a, a], axis=-1), aff))


def _garbage_image(root):
    _image(root).write_bytes(b"this is not a NIfTI file" * 10)


def _extra_channel(root):
    _image(root).with_name("case01_0001.nii.gz").write_bytes(_image(root).read_bytes())


def _duplicate_row(root):
    _edit_table(root, lambda df: pd.concat([df, df[df.case_id == "case01"]]))


def _drop_row(root):
    _edit_table(root, lambda df: df[df.case_id != "case01"])


def _rename_row(new_id):
    def fn(df):
        df.loc[df.case_id == "case01", "case_id"] = new_id
        return df

    return lambda root: _edit_table(root, fn)


def _dataset_json(value):
    return lambda root: (root / "dataset.json").write_text(json.dumps(value))


def _dataset_json_text(text):
    return lambda root: (root / "dataset.json").write_text(text)


def _clinical_text(text):
    return lambda root: (root / "clinical.csv").write_text(text)


def _clinical_bytes(data):
    return lambda root: (root / "clinical.csv").write_bytes(data)


def _dictionary(rows):
    def breaker(root):
        pd.DataFrame(rows).to_csv(root / "data_dictionary.csv", index=False)

    return breaker


def _no_age_column(root):
    _dictionary([{"variable": "age", "kind": "continuous"}, {"variable": "sex", "kind": "categorical"}])(root)
    _edit_table(root, lambda df: df.drop(columns=["age"]))


# (breaker, what is named: the case id or the file, fragment of the problem). One row of docs/data.md each.
KINDS = {
    # cheap checks (ids, table, headers)
    "duplicate-id": (_duplicate_row, "case01", "appears 2 times in clinical.csv"),
    "row-without-image": (lambda r: _image(r).unlink(), "case01", "its image file is missing"),
    "image-without-row": (_drop_row, "case01", "no row in clinical.csv"),
    "invalid-label": (_set("label", "maybe"), "case01", "label 'maybe' is not 0/1/2"),
    "non-numeric-clinical": (_set("age", "sixty"), "case01", "'sixty' is not numeric"),
    "out-of-range-clinical": (_set("age", "250"), "case01", "outside the plausible range"),
    "unknown-category": (_set("sex", "unknown-sex"), "case01", "is not one of female, male"),
    "unreadable-header": (_garbage_image, "case01", "is not a readable NIfTI"),
    "not-3d": (_four_d, "case01", "expected a 3D volume"),
    "mask-shape": (_crop_mask, "case01", "mask shape"),
    "mask-off-grid": (_shift_mask, "case01", "mask affine differs"),
    "implausible-spacing": (_thick_slices, "case01", "implausible voxel spacing"),
    "extra-channel": (_extra_channel, "case01", "extra image channels"),
    "path-in-case-id": (_rename_row("../case01"), "../case01", "case id contains a path separator"),
    "dotdot-in-case-id": (_rename_row("case..01"), "case..01", "case id contains '..'"),
    "control-char-in-case-id": (_rename_row("case\x0701"), "case\\x0701", "control characters"),
    # voxel checks (`data validate`, and `run` before any work)
    "truncated-image": (_truncate(_image), "case01", "truncated or corrupt"),
    "truncated-label": (_truncate(_mask), "case01", "mask file case01.nii.gz is truncated or corrupt"),
    "nan-voxels": (_nan, "case01", "NaN/infinite voxels"),
    "mask-value-not-in-dataset-json": (_mask_value_9, "case01", "label values [9]"),
    # the whole dataset
    "dataset-json-list": (_dataset_json([1, 2]), "dataset.json", "must be a JSON object"),
    "dataset-json-string": (_dataset_json("labels"), "dataset.json", "got a JSON string"),
    "dataset-json-number": (_dataset_json(3), "dataset.json", "got a JSON number"),
    "dataset-json-invalid": (_dataset_json_text('{"labels": '), "dataset.json", "not valid JSON"),
    "dataset-json-labels-list": (_dataset_json({"labels": ["pancreas"]}), "dataset.json", "'labels' must be an object"),
    "dataset-json-bad-training": (
        _dataset_json({"labels": {"background": 0}, "training": [3]}),
        "dataset.json",
        "training entry 0",
    ),
    "dataset-json-region-label": (
        _dataset_json({"labels": {"background": 0, "pancreas": [1, 2]}}),
        "dataset.json",
        "nnU-Net region",
    ),
    "dataset-json-fractional-label": (
        _dataset_json({"labels": {"background": 0, "pancreas": 1, "tumor": 2.5}}),
        "dataset.json",
        "label 'tumor' has value 2.5; voxel values are whole numbers",
    ),
    "no-clinical-csv": (lambda r: (r / "clinical.csv").unlink(), "clinical.csv", "no clinical.csv"),
    "csv-no-case-id": (_clinical_text("id,label\ncase00,0\n"), "clinical.csv", "no 'case_id' column"),
    "csv-no-label-column": (_clinical_text("case_id,age\ncase00,60\n"), "clinical.csv", "no label column"),
    "csv-unnamed-column": (_clinical_text("case_id,label,\ncase00,0,1\n"), "clinical.csv", "has no name"),
    "csv-repeated-column": (
        _clinical_text("case_id,label,age,age\ncase00,0,60,61\n"),
        "clinical.csv",
        "'age' appear more than once",
    ),
    "csv-long-row": (_clinical_text("case_id,label\ncase00,0,extra\n"), "clinical.csv", "row 2"),
    "csv-empty": (_clinical_text(""), "clinical.csv", "not a readable CSV"),
    "csv-binary": (_clinical_bytes(b"\xff\xfe\x00\x81garbage\x00\x00"), "clinical.csv", "not a readable CSV"),
    "missing-variable-column": (_no_age_column, "data_dictionary.csv", "no column for variable 'age'"),
    "dictionary-unknown-unit": (
        _dictionary([{"variable": "ca19_9_baseline", "unit": "furlongs"}]),
        "data_dictionary.csv",
        "unit 'furlongs' cannot be converted to U/mL",
    ),
    "dictionary-bad-value-map": (
        _dictionary([{"variable": "sex", "values": "0=femal; 1=male"}]),
        "data_dictionary.csv",
        "value map sends '0' to 'femal'",
    ),
    "dictionary-malformed-value-map": (
        _dictionary([{"variable": "sex", "values": "0 female"}]),
        "data_dictionary.csv",
        "is not CODE=VALUE",
    ),
}


@pytest.fixture(params=sorted(KINDS))
def bad(request, tmp_path):
    breaker, named, fragment = KINDS[request.param]
    root = write_msd(tmp_path / "data", n=4)
    breaker(root)
    return root, named, fragment


def test_run_refuses_before_any_work(bad, tmp_path):
    root, named, fragment = bad
    before = snapshot(root)
    run_dir = tmp_path / "run"
    result = invoke("run", "--model", "dummy", "--data", root, "--run-dir", run_dir, "--no-progress")
    out = flat(result.output)
    assert result.exit_code == 2, result.output
    assert "error:" in out and named in out and fragment in out, result.output
    assert "Traceback" not in out
    assert snapshot(root) == before and not run_dir.exists()


def test_validate_reports_it(bad):
    root, named, fragment = bad
    before = snapshot(root)
    result = invoke("data", "validate", root)
    assert result.exit_code == 1, result.output
    fail = [flat(ln) for ln in result.output.splitlines() if ln.startswith("FAIL")]
    assert any(named in ln and fragment in ln for ln in fail), result.output
    assert snapshot(root) == before


def test_every_problem_is_listed_not_only_the_first(tmp_path):
    root = write_msd(tmp_path / "data", n=4)
    _set("age", "sixty", cid="case00")(root)  # found by the cheap checks
    _truncate(lambda r: _image(r, "case02"))(root)  # found only by reading the voxels
    _nan(root)  # case01
    result = invoke("run", "--model", "dummy", "--data", root, "--run-dir", tmp_path / "run", "--no-progress")
    out = flat(result.output)
    assert result.exit_code == 2
    assert "3 invalid case(s)" in out and "--skip-invalid" in out
    for cid, fragment in (("case00", "'sixty' is not numeric"), ("case01", "NaN"), ("case02", "truncated")):
        assert f"case '{cid}': " in out and fragment in out


def test_unsafe_ids_in_a_manifest_are_named(tmp_path):
    root = write_msd(tmp_path / "data", n=3)
    images = sorted((root / "imagesTr").iterdir())
    rows = [
        {"case_id": cid, "image": str(img), "label": i % 3}
        for i, (cid, img) in enumerate(zip(["../../up", "sub/dir", "tab\tid"], images))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    before = snapshot(tmp_path)
    result = invoke(
        "run", "--model", "dummy", "--data", tmp_path / "manifest.csv", "--run-dir", tmp_path / "run", "--no-progress"
    )
    out = flat(result.output)
    assert result.exit_code == 2
    assert "case '../../up': case id contains a path separator" in out
    assert "case 'sub/dir': case id contains a path separator" in out
    assert "case 'tab\\tid': case id contains control characters" in out
    assert snapshot(tmp_path) == before


# -- --skip-invalid, the validation cache, allowed missing variables: runs that go ahead ------------------
@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """An 18-case phantom cohort (enough for 3 folds after exclusions), cwd and cache inside tmp_path."""
    from resectbench.data.synth import tiny_cohort

    root = tiny_cohort(tmp_path / "data", n=18).root
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("RESECTBENCH_CACHE", str(work / "cache"))
    return root


def _case_files(root, k):
    cid = sorted(p.name[: -len("_0000.nii.gz")] for p in (root / "imagesTr").iterdir())[k]
    return cid, _image(root, cid), _mask(root, cid)


def test_skip_invalid_excludes_records_in_the_manifest_and_shows_on_the_board(tiny):
    root = tiny
    truncated_case, _, mask = _case_files(root, 1)
    _truncate(lambda r: mask)(root)
    nan_case, image, _ = _case_files(root, 4)
    _nan_in(image)
    run_dir = root.parent.parent / "work" / "run"  # tiny_cohort writes data/<name>/
    args = ["run", "--model", "dummy", "--data", root, "--outer-folds", "3", "--run-dir", run_dir, "--no-progress"]
    refused = invoke(*args)
    assert refused.exit_code == 2 and truncated_case in refused.output and nan_case in refused.output
    assert not run_dir.exists()
    done = invoke(*args, "--skip-invalid")
    assert done.exit_code == 0, done.output
    excluded = json.loads((run_dir / "manifest.json").read_text())["cohort"]["excluded"]
    assert {e["case_id"] for e in excluded} == {truncated_case, nan_case}
    assert any("truncated" in e["problem"] for e in excluded) and any("NaN" in e["problem"] for e in excluded)
    cases = pd.read_csv(run_dir / "cohort" / "cases.csv")
    assert len(cases) == 16 and not {truncated_case, nan_case} & set(cases.case_id)
    board = flat(invoke("leaderboard", run_dir).output)
    assert "2 invalid case(s) excluded by --skip-invalid" in board
    assert truncated_case in board and nan_case in board
    markdown = invoke("leaderboard", run_dir, "--format", "markdown").output
    assert "excluded by --skip-invalid" in markdown


def test_a_resume_does_not_read_the_voxels_again(tiny, monkeypatch):
    import resectbench.data.readers.load as load

    reads = []
    real = load.check_case_volumes
    monkeypatch.setattr(load, "check_case_volumes", lambda cohort, cid: reads.append(cid) or real(cohort, cid))
    args = ["run", "--model", "dummy", "--data", tiny, "--outer-folds", "3", "--run-dir", "run", "--no-progress"]
    assert invoke(*args).exit_code == 0
    assert len(reads) == 18
    assert invoke(*args).exit_code == 0
    assert len(reads) == 18  # the verdict of the same content is cached
    _, image, _ = _case_files(tiny, 0)
    _resave(image, lambda a, aff: (a + 1, aff))  # changed voxels: a new verdict (and a refused resume)
    assert invoke(*args).exit_code == 2
    assert len(reads) == 36


def test_missing_variable_is_allowed_only_explicitly_and_recorded(tiny):
    root = tiny
    _edit_table(root, lambda df: df.drop(columns=["age"]))
    args = ["run", "--model", "dummy", "--data", root, "--outer-folds", "3", "--no-progress"]
    refused = invoke(*args, "--run-dir", "r0")
    assert refused.exit_code == 2 and "no column for variable 'age'" in flat(refused.output)
    assert "--allow-missing-variable age" in flat(refused.output) and not os.path.exists("r0")
    assert invoke(*args, "--run-dir", "r1", "--allow-missing-variable", "agee").exit_code == 2  # not a variable
    done = invoke(*args, "--run-dir", "r1", "--allow-missing-variable", "age")
    assert done.exit_code == 0, done.output
    recorded = json.loads(open("r1/manifest.json").read())["cohort"]["missing_variables"]
    assert recorded == {"age": "allowed by --allow-missing-variable"}
    assert "age (allowed by --allow-missing-variable)" in flat(invoke("leaderboard", "r1").output)
    # or by the data dictionary: required = false
    dictionary = pd.read_csv(root / "data_dictionary.csv")
    dictionary["required"] = dictionary["variable"] != "age"
    dictionary.to_csv(root / "data_dictionary.csv", index=False)
    done = invoke(*args, "--run-dir", "r2")
    assert done.exit_code == 0, done.output
    recorded = json.loads(open("r2/manifest.json").read())["cohort"]["missing_variables"]
    assert recorded == {"age": "optional in data_dictionary.csv"}


def test_nothing_is_written_outside_the_run_dir_and_the_cache(tiny, tmp_path):
    """Case ids with '../' are refused; a run on the rest writes only to its run dir and the cache."""
    root = tiny
    ids = sorted(p.name[: -len("_0000.nii.gz")] for p in (root / "imagesTr").iterdir())
    table = pd.read_csv(root / "clinical.csv", dtype=str).set_index("case_id")
    rows = []
    for k, cid in enumerate(ids):
        name = f"../../escape{k}" if k < 2 else cid
        rows.append(
            {
                "case_id": name,
                "image": str(_image(root, cid)),
                "mask": str(_mask(root, cid)),
                **table.loc[cid].to_dict(),
            }
        )
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    before = snapshot(tmp_path)
    result = invoke(
        "run",
        "--model",
        "dummy",
        "--model",
        "clinical-sklearn",
        "--data",
        tmp_path / "manifest.csv",
        "--outer-folds",
        "3",
        "--run-dir",
        "run",
        "--no-progress",
        "--skip-invalid",
    )
    assert result.exit_code == 0, result.output
    after = snapshot(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert changed and all(p.startswith(("work/run/", "work/cache/")) for p in changed), sorted(changed)[:5]
    excluded = json.loads((tmp_path / "work" / "run" / "manifest.json").read_text())["cohort"]["excluded"]
    assert [e["case_id"] for e in excluded] == ["../../escape0", "../../escape1"]


def test_the_docs_table_lists_exactly_these_kinds():
    """docs/data.md's bad-input table stays true to what this file checks."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    table = text[text.index("## Bad input") : text.index("## The synthetic phantom cohort")]
    ids = set()
    for group in re.findall(r"^\| [^|]*\(([^)]*`[^|]*)\) \|", table, flags=re.M):
        first = None
        for name in re.findall(r"`([^`]+)`", group):
            if name.startswith("-") and first:  # `dataset-json-list`, `-string`: a shared prefix
                name = first.rsplit("-", 1)[0] + name
            first = first or name
            ids.add(name)
    import ast

    here = Path(__file__).resolve().parent
    trees = {
        name: ast.parse((here / name).read_text())
        for name in (
            "test_bad_image_inputs.py",
            "test_bad_run_inputs.py",
            "test_predict.py",
            "test_model_needs.py",
            "test_external_masks.py",
            "test_protocol_folds.py",
        )
    }
    problems = next(  # the kinds of test_bad_image_inputs.PROBLEMS (test files do not import each other)
        {k.value for k in node.value.keys}
        for node in trees["test_bad_image_inputs.py"].body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PROBLEMS"
    )
    tests = {n.name for tree in trees.values() for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(KINDS) | problems <= ids
    assert ids - set(KINDS) - problems <= tests  # the other rows name the test that checks them


def test_run_reads_the_clinical_table_through_the_folders_dictionary(tiny):
    """A sex column coded 0/1 is refused until data_dictionary.csv (here the synthetic one, extended) maps it."""
    root = tiny
    _edit_table(root, lambda df: df.assign(sex=df["sex"].map({"female": "0", "male": "1"}).fillna("")))
    args = ["run", "--model", "dummy", "--data", root, "--outer-folds", "3", "--no-progress"]
    refused = invoke(*args, "--run-dir", "r0")
    assert refused.exit_code == 2 and "'sex': value '0' is not one of female, male" in flat(refused.output)
    dictionary = pd.read_csv(root / "data_dictionary.csv", dtype=str, keep_default_na=False)
    dictionary["values"] = np.where(dictionary["variable"] == "sex", "0=female; 1=male", "")
    dictionary.to_csv(root / "data_dictionary.csv", index=False)
    done = invoke(*args, "--run-dir", "r1")
    assert done.exit_code == 0, done.output
    recorded = json.loads(open("r1/manifest.json").read())["cohort"]["data_dictionary"]
    assert recorded["variables"]["sex"] == {"values": {"0": "female", "1": "male"}}
