"""Predefined outer folds (nnU-Net's splits_final.json, a CSV of fold numbers, a fold column of the cohort's
table): used exactly, refused unless they test every case once, warned about, recorded, resumed safely."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from data_fixtures import write_msd
from protocol_helpers import Recorder, config, table_cohort
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.protocol import ExperimentConfig, ProtocolError, prepare, run_benchmark
from resectbench.protocol.assembly import build_splits
from resectbench.protocol.splits import ImportedFolds, make_splits, read_folds


class Messages(Recorder):
    def message(self, text):
        self.events.append(("message", text))

    @property
    def warnings(self) -> list[str]:
        return [e[1] for e in self.of("message") if e[1].startswith("warning:")]


def stratified_folds(cohort, k: int = 3, seed: int = 11) -> list[list[str]]:
    """Stratified test folds, other than the ones resectbench makes itself (another seed)."""
    made = make_splits(cohort.case_ids, cohort.labels, outer_folds=k, seed=seed, data_fingerprint="elsewhere")
    return [list(o.test) for o in made.outer]


def write_nnunet(path, folds: list[list[str]]):
    """splits_final.json as nnU-Net writes it: fold k validates on its cases, trains on all the others."""
    data = [
        {"train": sorted(c for j, f in enumerate(folds) if j != k for c in f), "val": f} for k, f in enumerate(folds)
    ]
    path.write_text(json.dumps(data, indent=4))
    return path


def write_csv(path, folds: dict, column: str = "fold"):
    rows = [(c, name) for name, cases in folds.items() for c in cases]
    pd.DataFrame(rows, columns=["case_id", column]).to_csv(path, index=False)
    return path


def splits_of(cohort, tmp_path, folds_file, listener=None, **protocol):
    cfg = config(tmp_path / "run", "dummy", **{"outer_folds": None, "folds": str(folds_file), **protocol})
    return build_splits(cfg.resolved(), cohort, listener)


def with_patients(cohort):
    """``patient``: three cases each (the inner holdout of a grouped split needs more than a few groups)."""
    cohort.table["patient"] = [f"p{int(c[-3:]) // 3:02d}" for c in cohort.case_ids]
    return cohort


# -- used exactly -------------------------------------------------------------------------------
def test_nnunet_folds_are_used_exactly_and_recorded(tmp_path):
    cohort = table_cohort(45)
    folds = stratified_folds(cohort)
    assert folds != [list(o.test) for o in make_splits(cohort.case_ids, cohort.labels, outer_folds=3).outer]
    path = write_nnunet(tmp_path / "splits_final.json", folds)
    run = tmp_path / "run"
    cfg = config(run, "dummy", "clinical-sklearn", outer_folds=None, folds=str(path), trials=1)
    run_benchmark(cfg, cohort=cohort)

    splits = json.loads((run / "splits.json").read_text())
    assert [sorted(o["test"]) for o in splits["outer"]] == [sorted(f) for f in folds] and splits["outer_folds"] == 3
    assert splits["imported_folds"] == {
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "format": "nnunet",
        "fold_names": ["0", "1", "2"],
    }
    assert splits["warnings"] == []
    for label in ("dummy", "clinical-sklearn"):
        for k, fold in enumerate(folds):
            tested = pd.read_csv(run / "models" / label / f"fold_0_{k}" / "predictions.csv").case_id
            assert sorted(tested) == sorted(fold)
    written = ExperimentConfig.from_toml(run / "config.toml")
    assert written.protocol.folds == str(path.resolve()) and written.protocol.outer_folds is None


def test_inner_splits_are_made_as_for_folds_made_here():
    cohort = table_cohort(45)
    own = make_splits(cohort.case_ids, cohort.labels, outer_folds=3, seed=4, data_fingerprint="fp")
    folds = {str(o.fold): list(o.test) for o in own.outer}
    imported = make_splits(
        cohort.case_ids,
        cohort.labels,
        seed=4,
        data_fingerprint="fp",
        imported=ImportedFolds(folds, {"path": "folds", "sha256": "0", "format": "nnunet", "fold_names": list(folds)}),
    )
    assert [(o.train, o.test, o.inner) for o in imported.outer] == [(o.train, o.test, o.inner) for o in own.outer]
    assert imported.fingerprint != own.fingerprint  # where the folds came from is part of the splits


def test_csv_folds_in_numeric_order_with_a_named_column(tmp_path):
    cohort = table_cohort(45)
    folds = stratified_folds(cohort, k=4)
    names = ["2", "10", "7", "1"]  # ascending as numbers: 1, 2, 7, 10
    path = write_csv(tmp_path / "folds.csv", dict(zip(names, folds)), column="split")
    splits = splits_of(cohort, tmp_path, path, folds_column="split")
    assert splits.imported["fold_names"] == ["1", "2", "7", "10"] and splits.imported["column"] == "split"
    by_name = dict(zip(names, folds))
    assert [sorted(o.test) for o in splits.outer] == [sorted(by_name[n]) for n in ("1", "2", "7", "10")]


def test_fold_column_of_the_cohorts_own_table(tmp_path):
    n = 12
    fold = {f"case{i:02d}": {"fold": str(i // 3 % 2)} for i in range(n)}  # labels i % 3: both folds hold all classes
    data = write_msd(tmp_path / "data", n=n, clinical=fold)
    listener = Messages()
    cfg = config(tmp_path / "run", "dummy", outer_folds=None, folds_column="fold")
    cfg.data.path = str(data)
    bench = prepare(cfg, listener=listener)
    splits = json.loads((bench.store.splits_path).read_text())
    expected = [sorted(c for c, v in fold.items() if v["fold"] == k) for k in ("0", "1")]
    assert [sorted(o["test"]) for o in splits["outer"]] == expected
    assert splits["imported_folds"]["path"] == str((data / "clinical.csv").resolve())


def test_run_command_takes_folds(tmp_path):
    data = write_msd(tmp_path / "data", n=12)
    ids = [f"case{i:02d}" for i in range(12)]
    folds = [ids[0:6], ids[6:12]]  # labels i % 3: both folds hold every class twice
    path = write_nnunet(tmp_path / "splits_final.json", folds)
    run = tmp_path / "run"
    args = ["run", "-m", "dummy", "--no-references", "--data", data, "--folds", path, "--trials", "1"]
    result = CliRunner().invoke(build_app(), [*map(str, args), "--run-dir", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    splits = json.loads((run / "splits.json").read_text())
    assert [o["test"] for o in splits["outer"]] == folds and splits["imported_folds"]["format"] == "nnunet"


# -- refused ------------------------------------------------------------------------------------
def test_a_case_in_two_test_folds_is_named(tmp_path):
    cohort = table_cohort(45)
    folds = stratified_folds(cohort)
    twice = folds[0][0]
    folds[2].append(twice)
    with pytest.raises(ProtocolError, match=rf"1 case\(s\) in more than one test fold of .*: {twice} \(folds 0, 2\)"):
        splits_of(cohort, tmp_path, write_nnunet(tmp_path / "splits_final.json", folds))
    folds = stratified_folds(cohort)
    rows = {"1": folds[0], "2": folds[1] + [folds[1][0]], "3": folds[2]}  # a CSV row repeated
    with pytest.raises(
        ProtocolError, match=rf"1 case\(s\) in more than one test fold of .*: {folds[1][0]} \(folds 2, 2\)"
    ):
        splits_of(cohort, tmp_path, write_csv(tmp_path / "folds.csv", rows))


def test_a_cohort_case_in_no_fold_is_named(tmp_path):
    cohort = table_cohort(45)
    folds = stratified_folds(cohort)
    left_out = folds[1].pop()
    with pytest.raises(ProtocolError, match=rf"1 case\(s\) of the cohort in no test fold of .*: {left_out};"):
        splits_of(cohort, tmp_path, write_nnunet(tmp_path / "splits_final.json", folds))
    rows = write_csv(tmp_path / "folds.csv", {"0": folds[0], "1": folds[1], "2": folds[2], "": [left_out]})
    with pytest.raises(ProtocolError, match=rf"in no test fold of .*: {left_out};"):  # a blank fold cell
        splits_of(cohort, tmp_path, rows)


def test_a_fold_naming_a_case_not_in_the_cohort_is_named(tmp_path):
    cohort = table_cohort(45)
    folds = stratified_folds(cohort)
    folds[0].append("case_999")
    with pytest.raises(ProtocolError, match=r"names 1 case\(s\) that are not in the cohort: case_999"):
        splits_of(cohort, tmp_path, write_nnunet(tmp_path / "splits_final.json", folds))


def test_cases_skip_invalid_excluded_are_dropped_from_the_folds(tmp_path):
    cohort = table_cohort(45)
    folds = stratified_folds(cohort)
    folds[0].append("case_999")
    cohort.info["excluded"] = [{"case_id": "case_999", "problem": "truncated image"}]
    splits = splits_of(cohort, tmp_path, write_nnunet(tmp_path / "splits_final.json", folds))
    assert splits.imported["excluded_cases"] == ["case_999"]
    assert all("case_999" not in o.test + o.train for o in splits.outer)


def test_nnunet_train_lists_must_be_every_other_case(tmp_path):
    cohort = table_cohort(45)
    folds = stratified_folds(cohort)
    path = write_nnunet(tmp_path / "splits_final.json", folds)
    data = json.loads(path.read_text())
    leak = folds[1][0]
    data[1]["train"].append(leak)
    path.write_text(json.dumps(data))
    with pytest.raises(ProtocolError, match=rf"fold 1 of .*: case\(s\) {leak} are in both its train and val lists"):
        splits_of(cohort, tmp_path, path)
    data[1]["train"].remove(leak)
    dropped = data[2]["train"].pop()
    path.write_text(json.dumps(data))
    with pytest.raises(ProtocolError, match=rf"fold 2 of .*: its train list must be .* but lacks {dropped}$"):
        splits_of(cohort, tmp_path, path)


@pytest.mark.parametrize(
    "protocol, message",
    [
        ({"repeats": 2}, "protocol.repeats is 2, but predefined folds .* give one partition"),
        ({"outer_folds": 5}, "outer_folds is 5 but .* holds 3 folds; leave outer_folds out"),
        ({"folds_column": "fold"}, "protocol.folds_column 'fold' names a CSV column, but .* is an nnU-Net"),
    ],
    ids=["repeats", "outer_folds", "folds_column-of-json"],
)
def test_protocol_settings_that_contradict_the_folds_are_refused(tmp_path, protocol, message):
    cohort = table_cohort(45)
    path = write_nnunet(tmp_path / "splits_final.json", stratified_folds(cohort))
    with pytest.raises(ProtocolError, match=message):
        splits_of(cohort, tmp_path, path, **protocol)
    assert splits_of(cohort, tmp_path, path, outer_folds=3).outer_folds == 3  # the same number is fine


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "folds file .* does not exist"),
        ("{not json", "is not valid JSON"),
        ('{"train": [], "val": []}', r"is not an nnU-Net splits_final.json \(a list of"),
        ('[{"train": ["a"], "val": ["b"]}, {"train": ["b"]}]', "is not an nnU-Net splits_final.json"),
    ],
    ids=["missing", "not-json", "not-a-list", "no-val"],
)
def test_unreadable_nnunet_files_are_named(tmp_path, content, message):
    path = tmp_path / "splits_final.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ProtocolError, match=message):
        read_folds(path)


def test_csv_without_the_fold_column_and_folds_column_without_a_table(tmp_path):
    path = tmp_path / "folds.csv"
    path.write_text("case_id,split\ncase_000,0\n")
    with pytest.raises(ProtocolError, match=r"has no fold column 'fold' \(columns: case_id, split\)"):
        read_folds(path)
    cfg = config(tmp_path / "run", "dummy", outer_folds=None, folds_column="fold").resolved()
    with pytest.raises(ProtocolError, match="the embedded synthetic cohort has none"):
        build_splits(cfg, table_cohort(45))
    with pytest.raises(ProtocolError, match=r"protocol.folds must be a string, got 3"):
        ExperimentConfig.from_dict({"protocol": {"folds": 3}})


# -- warned -------------------------------------------------------------------------------------
def test_unstratified_folds_are_warned_about_and_recorded(tmp_path):
    cohort = table_cohort(45)
    ids, labels = np.asarray(cohort.case_ids), cohort.labels
    stratified = Messages()
    splits_of(cohort, tmp_path, write_nnunet(tmp_path / "strat.json", stratified_folds(cohort)), stratified)
    assert stratified.warnings == []
    order = np.argsort(labels, kind="stable")  # sorted by class: fold 0 all resectable, fold 2 mostly LA
    folds = [list(ids[order][k::3]) for k in range(3)]  # interleaved: still stratified
    assert splits_of(cohort, tmp_path, write_nnunet(tmp_path / "inter.json", folds)).warnings == []
    folds = [list(ids[order][k * 15 : (k + 1) * 15]) for k in range(3)]
    listener = Messages()
    path = write_nnunet(tmp_path / "sorted.json", folds)
    cfg = config(tmp_path / "run", "dummy", outer_folds=None, folds=str(path))
    bench = prepare(cfg, cohort=cohort, listener=listener)
    (warning,) = listener.warnings
    assert warning.startswith("warning: the imported folds are not stratified: fold 0 R/BR/LA 100/0/0 %")
    assert "against R/BR/LA 49/31/20 % in the cohort" in warning and "10 percentage points" in warning
    assert json.loads(bench.store.splits_path.read_text())["warnings"] == [warning.removeprefix("warning: ")]


def test_folds_that_split_a_group_are_warned_about(tmp_path):
    cohort = with_patients(table_cohort(45))
    folds = stratified_folds(cohort)
    fold_of = {c: k for k, f in enumerate(folds) for c in f}
    patients = cohort.table["patient"]
    split = sorted(p for p in set(patients) if len({fold_of[c] for c in patients.index[patients == p]}) > 1)
    listener = Messages()
    splits_of(cohort, tmp_path, write_nnunet(tmp_path / "splits_final.json", folds), listener, group_by="patient")
    (warning,) = listener.warnings
    assert f"split {len(split)} group(s) of protocol.group_by over test folds: {split[0]} (folds " in warning
    by_patient = [[c for c in cohort.case_ids if int(patients[c][1:]) % 3 == k] for k in range(3)]
    quiet = Messages()
    splits_of(cohort, tmp_path, write_nnunet(tmp_path / "patients.json", by_patient), quiet, group_by="patient")
    assert not [w for w in quiet.warnings if "group" in w]


# -- resumed ------------------------------------------------------------------------------------
def test_resume_with_a_changed_folds_file_is_refused(tmp_path):
    cohort = table_cohort(45)
    folds = stratified_folds(cohort)
    path = write_nnunet(tmp_path / "splits_final.json", folds)
    cfg = config(tmp_path / "run", "dummy", outer_folds=None, folds=str(path))
    prepare(cfg, cohort=cohort)
    moved = write_nnunet(tmp_path / "elsewhere.json", folds)  # the same content in another place resumes
    prepare(replace(cfg, protocol=replace(cfg.protocol, folds=str(moved))), cohort=cohort)
    path.write_text(path.read_text() + "\n")  # the same partition, but not the file the run was made with
    with pytest.raises(ProtocolError, match="holds results for a different split"):
        prepare(cfg, cohort=cohort)
