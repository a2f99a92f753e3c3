"""Bad run, configuration and command-line inputs (issue 25): each is refused with ``error: ...`` naming the
file or key and the problem (exit 2, no traceback), before any work where it can be, and a finished result is
never lost or overwritten (docs/data.md, "Bad input")."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sqlite3
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

import optuna
import pytest
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.protocol.config import (
    _KINDS,
    DataConfig,
    ExperimentConfig,
    ExternalSpec,
    ModelSpec,
    ProtocolConfig,
)
from resectbench.protocol.coordination import UnitBoard, open_storage
from resectbench.protocol.errors import ProtocolError


def invoke(*args):
    # catch_exceptions=False: an unexpected exception (a traceback for the user) fails the test
    return CliRunner().invoke(build_app(), list(map(str, args)), catch_exceptions=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_args(cohort, run_dir, *more):
    return ["run", "-m", "dummy", "--no-references", "--data", cohort, "--outer-folds", "3", "--run-dir", run_dir,
            "--no-progress", *more]  # fmt: skip


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from resectbench.data.synth import tiny_cohort

    return tiny_cohort(tmp_path_factory.mktemp("data"), n=18).root


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cohort):
    """A finished run (dummy, 3 outer folds, final model); tests work on copies (:func:`copy_of`)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result = invoke(*run_args(cohort, run_dir, "--final-model"))
    assert result.exit_code == 0, result.output
    return run_dir


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder nobody may write in (for root, whom permission bits do not stop, os.access says so)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        access = os.access
        monkeypatch.setattr(
            os, "access", lambda p, mode, **kw: access(p, mode, **kw) and not (mode & os.W_OK and Path(p) == folder)
        )
    yield folder
    folder.chmod(0o755)


# -- 1, 2: the run directory -------------------------------------------------------------------------------
def test_run_dir_that_is_a_file(tmp_path, cohort):
    path = tmp_path / "results"
    path.write_text("my notes\n")
    result = invoke(*run_args(cohort, path))
    assert result.exit_code == 2
    assert f"error: run directory {path} is a file, not a folder; give another --run-dir" in flat(result.output)
    assert snapshot(tmp_path) == {"results": b"my notes\n"}


def test_run_dir_in_a_read_only_folder(read_only, cohort):
    result = invoke(*run_args(cohort, read_only / "run"))
    assert result.exit_code == 2
    assert f"error: run directory {read_only / 'run'} cannot be created: {read_only} is read-only" in flat(
        result.output
    )
    assert not any(read_only.iterdir())


# -- 3, 4: the experiment file -------------------------------------------------------------------------------
def test_config_that_is_a_folder(tmp_path):
    result = invoke("run", "--config", tmp_path, "--no-progress")
    assert result.exit_code == 2
    assert f"error: experiment file {tmp_path} is a folder; give the path of a .toml file" in flat(result.output)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "toml, message",
    [
        ('[protocol]\nouter_folds = "three"', "protocol.outer_folds must be a whole number, got 'three'"),
        ("[protocol]\ntrials = 1.5", "protocol.trials must be a whole number, got 1.5"),
        ("[protocol]\nrefit = 1", "protocol.refit must be true or false, got 1"),
        ('[data]\nskip_invalid = "no"', "data.skip_invalid must be true or false, got 'no'"),
        ('[data]\nexternal = "site_b"', "data.external must be a list of strings, got 'site_b'"),
        ('profile = ["cpu"]', "profile must be a string, got ['cpu']"),
        ('models = "dummy"', "models must be a list of recipe names or [[models]] tables, got 'dummy'"),
        ('[[models]]\nname = "dummy"\nparams = 3', "models.params must be a table, got 3"),
    ],
    ids=["outer_folds", "trials", "refit", "skip_invalid", "external", "profile", "models", "params"],
)
def test_config_value_of_the_wrong_type_names_the_key(tmp_path, cohort, toml, message):
    exp = tmp_path / "exp.toml"
    exp.write_text(('models = ["dummy"]\n' if "models" not in toml else "") + toml + "\n")
    result = invoke("run", "--config", exp, "--data", cohort, "--run-dir", tmp_path / "run", "--no-progress")
    assert result.exit_code == 2
    assert f"error: experiment file {exp}: {message}" in flat(result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.toml"]


def test_every_config_key_is_type_checked():
    """A value of the wrong type for each checked field is refused naming it; a field of a type the check does
    not know must be one the config builds itself (so a new field cannot slip past the check)."""
    wrong = {bool: "no", int: 1.5, float: "fast", str: 1, list[str]: "x", dict[str, Any]: 1}
    assert wrong.keys() == _KINDS.keys()
    built = {"models", "protocol", "data", "profile_spec", "externals"}
    for kind, section in (
        (ProtocolConfig, "protocol"),
        (DataConfig, "data"),
        (ModelSpec, "models"),
        (ExternalSpec, "data.externals[0]"),
        (ExperimentConfig, ""),
    ):
        for f in fields(kind):
            hint = get_type_hints(kind)[f.name]
            if type(None) in get_args(hint):  # X | None
                hint = next(a for a in get_args(hint) if a is not type(None))
            if hint not in _KINDS:
                assert f.name in built, f"{kind.__name__}.{f.name}: type {hint} is not checked"
                continue
            entry = {f.name: wrong[hint]}
            data = {
                "protocol": {"models": ["dummy"], "protocol": entry},
                "data": {"models": ["dummy"], "data": entry},
                "models": {"models": [{"name": "dummy", **entry}]},
                "data.externals[0]": {"models": ["dummy"], "data": {"externals": [{"path": "b", **entry}]}},
                "": {"models": ["dummy"], **entry},
            }[section]
            key = f"{section}.{f.name}" if section else f.name
            with pytest.raises(ProtocolError, match="^" + re.escape(f"{key} must be {_KINDS[hint]}, got ")):
                ExperimentConfig.from_dict(data)


def test_integers_stand_for_numbers_and_absent_optionals_stay_none():
    cfg = ExperimentConfig.from_dict({"models": ["dummy"], "protocol": {"timeout": 60, "valid_fraction": 1}})
    assert cfg.protocol.timeout == 60 and cfg.protocol.valid_fraction == 1 and cfg.protocol.trials is None


# -- 5: a full disk ------------------------------------------------------------------------------------------
def _no_temporary_files(run_dir):
    assert not [p for p in run_dir.rglob("*.tmp")]


def test_disk_full_while_writing_results_is_named_and_the_run_resumes(tmp_path, cohort, finished, monkeypatch):
    run_dir = tmp_path / "run"
    replace = os.replace

    def full(src, dst, *args, **kwargs):
        if Path(dst).name == "metrics.json" and Path(dst).parent.name == "fold_0_1":
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    result = invoke(*run_args(cohort, run_dir))
    assert result.exit_code == 2
    target = run_dir / "models" / "dummy" / "fold_0_1" / "metrics.json"
    assert f"error: the disk is full: could not write {target}" in flat(result.output)
    assert "run the same command again: a run resumes where it stopped" in flat(result.output)
    done = run_dir / "models" / "dummy" / "fold_0_0"
    before = snapshot(done)
    assert (done / "DONE").exists() and not (target.parent / "DONE").exists()
    _no_temporary_files(run_dir)

    monkeypatch.setattr(os, "replace", replace)  # space freed
    result = invoke(*run_args(cohort, run_dir))
    assert result.exit_code == 0, result.output
    assert snapshot(done) == before  # the finished unit was kept, not computed again
    for fold in ("fold_0_1", "fold_0_2"):
        ours, reference = (r / "models" / "dummy" / fold / "predictions.csv" for r in (run_dir, finished))
        assert ours.read_bytes() == reference.read_bytes()


def test_sqlite_storage_full_is_named_and_the_unit_is_released(tmp_path, cohort, monkeypatch):
    run_dir = tmp_path / "run"
    real = optuna.storages.RDBStorage.set_study_user_attr
    results = []

    def full(self, study_id, key, value):
        if key == "result":
            results.append(study_id)
        if len(results) == 2 and key == "result":  # the second unit's result does not fit
            try:  # what Optuna raises for a failed SQLite commit, with the driver's error behind it
                raise sqlite3.OperationalError("database or disk is full")
            except sqlite3.OperationalError as exc:
                raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
        return real(self, study_id, key, value)

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_study_user_attr", full)
    result = invoke(*run_args(cohort, run_dir))
    assert result.exit_code == 2
    assert f"error: the disk is full: could not write {run_dir / 'optuna.db'}" in flat(result.output)
    name = json.loads((run_dir / "manifest.json").read_text())["benchmark"]
    assert UnitBoard(open_storage(None, run_dir), name).status("dummy", "fold_0_1") == "stale"  # free to redo

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_study_user_attr", real)
    result = invoke(*run_args(cohort, run_dir))
    assert result.exit_code == 0, result.output
    assert len(list(run_dir.glob("models/dummy/fold_0_*/DONE"))) == 3


def test_disk_full_inside_a_fit_stops_the_unit_naming_the_file(tmp_path, cohort, monkeypatch):
    run_dir = tmp_path / "run"
    cache_file = run_dir / "cache" / "volume.npy"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(cache_file))

    monkeypatch.setattr("resectbench.protocol.tuning.fit_shared", full)
    result = invoke(*run_args(cohort, run_dir))
    assert result.exit_code == 2
    # not "no tuning trial completed" after trying every trial on a disk that stays full
    assert f"error: the disk is full: could not write {cache_file}" in flat(result.output)
    assert not list(run_dir.glob("models/*/*/DONE"))


# -- 6, 7: a damaged run directory ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, problem",
    [("{not json", "is not valid JSON"), ("[1, 2]", "holds a JSON list, not an object")],
    ids=["not-json", "list"],
)
def test_damaged_manifest_is_named_when_resuming_or_reading(tmp_path, finished, text, problem):
    run_dir = copy_of(finished, tmp_path)
    manifest = run_dir / "manifest.json"
    manifest.write_text(text)
    before = snapshot(run_dir)
    for args in (["run", "--run-dir", run_dir, "--no-progress"], ["worker", run_dir, "--no-progress"]):
        result = invoke(*args)
        assert result.exit_code == 2
        assert f"error: {manifest} {problem}" in flat(result.output)
        assert "restore it from a copy, or delete it" in flat(result.output)
    result = invoke("leaderboard", run_dir)
    assert result.exit_code == 2 and f"error: {manifest} {problem}" in flat(result.output)
    assert snapshot(run_dir) == before


@pytest.mark.parametrize(
    "tamper, problem",
    [
        (lambda info: info.pop("seed"), " lacks the key 'seed'"),
        (lambda info: info.pop("recipe"), " lacks the key 'recipe'"),
        (lambda info: info.update(params=[1]), ": 'params' must be an object, got [1]"),
    ],
    ids=["no-seed", "no-recipe", "params-list"],
)
def test_tampered_final_info_names_the_file_and_the_key(tmp_path, finished, tamper, problem):
    from resectbench.protocol.final import load_final

    run_dir = copy_of(finished, tmp_path)
    path = run_dir / "models" / "dummy" / "final" / "final.json"
    info = json.loads(path.read_text())
    tamper(info)
    path.write_text(json.dumps(info))
    with pytest.raises(ProtocolError) as caught:
        load_final(path.parent.parent, ctx=None)
    assert str(caught.value).startswith(f"{path}{problem}")
    assert f"run `resectbench run --run-dir {run_dir} --final-model` to fit it again" in str(caught.value)


def test_tampered_final_info_stops_a_run_scoring_an_external_cohort(tmp_path, finished):
    from resectbench.data.synth import tiny_cohort

    site_b = tiny_cohort(tmp_path / "site_b", n=9, seed=1).root
    run_dir = copy_of(finished, tmp_path)
    path = run_dir / "models" / "dummy" / "final" / "final.json"
    info = json.loads(path.read_text())
    del info["seed"]
    path.write_text(json.dumps(info))
    before = snapshot(run_dir / "models")
    result = invoke("run", "--run-dir", run_dir, "--external", site_b, "--no-progress")
    assert result.exit_code == 2
    assert f"error: {path} lacks the key 'seed'" in flat(result.output)
    assert snapshot(run_dir / "models") == before


# -- 8: an output file option given a folder -------------------------------------------------------------------
@pytest.mark.parametrize(
    "command, option",
    [
        (["geometry", "measure", "COHORT"], "--output"),
        (["geometry", "classify", "COHORT"], "--output"),
        (["leaderboard", "RUN", "-f", "csv"], "--output"),
        (["report", "RUN"], "--out"),
    ],
    ids=["measure", "classify", "leaderboard", "report"],
)
def test_output_file_option_given_a_folder(tmp_path, cohort, finished, monkeypatch, command, option):
    def never(*args, **kwargs):
        raise AssertionError("measured although the output cannot be written")

    monkeypatch.setattr("resectbench.cli.commands.geometry._measure", never)
    folder = tmp_path / "out"
    folder.mkdir()
    args = [{"COHORT": cohort, "RUN": finished}.get(a, a) for a in command]
    result = invoke(*args, option, folder)
    assert result.exit_code == 2
    assert f"error: {option} {folder} is a folder" in flat(result.output)
    assert not any(folder.iterdir())


# -- 9: a damaged predictions.csv --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cut, problem",
    [(-30, ": 1 row(s) with empty or non-numeric cells; the file was cut short or edited"), (20, " lacks column(s)")],
    ids=["mid-row", "in-header"],
)
def test_truncated_predictions_are_named_by_the_leaderboard(tmp_path, finished, cut, problem):
    run_dir = copy_of(finished, tmp_path)
    path = run_dir / "models" / "dummy" / "fold_0_1" / "predictions.csv"
    path.write_bytes(path.read_bytes()[:cut])
    result = invoke("leaderboard", run_dir)
    assert result.exit_code == 2
    assert f"error: {path}{problem}" in flat(result.output)


# -- 10: RESECTBENCH_CACHE -------------------------------------------------------------------------------------
def test_cache_variable_naming_a_file(tmp_path, cohort, monkeypatch):
    cache = tmp_path / "cache"
    cache.write_text("")
    monkeypatch.setenv("RESECTBENCH_CACHE", str(cache))
    result = invoke(*run_args(cohort, tmp_path / "run"))
    assert result.exit_code == 2
    assert f"error: RESECTBENCH_CACHE={cache} is a file, not a folder; point RESECTBENCH_CACHE at a writable" in flat(
        result.output
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_cache_variable_naming_a_read_only_folder(tmp_path, read_only, cohort, monkeypatch):
    monkeypatch.setenv("RESECTBENCH_CACHE", str(read_only))
    result = invoke(*run_args(cohort, tmp_path / "run"))
    assert result.exit_code == 2
    assert f"error: RESECTBENCH_CACHE={read_only} is read-only (not writable)" in flat(result.output)
    assert not any(read_only.iterdir()) and not (tmp_path / "run").exists()
