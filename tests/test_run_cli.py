"""``resectbench run`` / ``resectbench worker`` from the command line, on a tiny generated cohort."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from resectbench.cli.app import build_app


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from resectbench.data.synth import tiny_cohort

    cohort = tiny_cohort(tmp_path_factory.mktemp("cli-data"), n=18)
    return cohort.root


def invoke(*args):
    return CliRunner().invoke(build_app(), list(map(str, args)), catch_exceptions=False)


def test_bad_model_name_lists_the_available_ones(tmp_path, toy_plugins):
    result = invoke("run", "--model", "dumy", "--run-dir", tmp_path / "r", "--no-progress")
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "unknown models 'dumy'" in out and "Did you mean: dummy" in out
    assert "Available:" in out and "clinical-sklearn" in out and "marker-centroids" in out


def test_plugin_recipe_end_to_end_with_config_file_and_overrides(tmp_path, tiny_data, toy_plugins):
    exp = tmp_path / "exp.toml"
    exp.write_text(
        textwrap.dedent(f"""
        [data]
        path = "{tiny_data}"

        [protocol]
        outer_folds = 4
        trials = 2

        [[models]]
        name = "dummy"

        [[models]]
        name = "marker-centroids"
        label = "age-centroids"
        params = {{ column = "age" }}
    """)
    )
    run = tmp_path / "run"
    args = ["run", "--config", exp, "--outer-folds", "3", "--seed", "5", "--run-dir", run, "--no-progress"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "age-centroids" in result.output and "dummy" in result.output and "macro-F1" in result.output
    assert len(list(run.glob("models/*/fold_0_*/DONE"))) == 6
    written = (run / "config.toml").read_text()
    assert "outer_folds = 3" in written and "seed = 5" in written and 'column = "age"' in written
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["cohort"]["n_cases"] == 18 and manifest["config"]["protocol"]["trials"] == 2

    again = invoke(*args)  # same command: resumes, nothing left to compute
    assert again.exit_code == 0 and manifest["data_fingerprint"] in (run / "manifest.json").read_text()
    assert json.loads((run / "manifest.json").read_text())["last_session"]["units_computed"] == 0
    worker = invoke("worker", run, "--no-progress")
    assert worker.exit_code == 0 and "computed 0 unit(s)" in worker.output

    # the resolved config.toml is itself a runnable experiment file
    rerun = invoke("run", "--config", run / "config.toml", "--no-progress")
    assert rerun.exit_code == 0, rerun.output


def test_worker_on_a_folder_that_is_no_run(tmp_path, toy_plugins):
    result = invoke("worker", tmp_path, "--no-progress")
    assert result.exit_code == 2 and "not a resectbench run directory" in " ".join(result.output.split())


def test_reference_rows_join_the_models_given_on_the_command_line(tmp_path, tiny_data):
    run = tmp_path / "run"
    result = invoke("run", "-m", "dummy", "--data", tiny_data, "--outer-folds", "3", "--run-dir", run, "--no-progress")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (run / "models").iterdir()) == ["clinical-sklearn", "dummy"]
    bare = tmp_path / "bare"
    args = ["run", "-m", "dummy", "--data", tiny_data, "--outer-folds", "3", "--run-dir", bare]
    result = invoke(*args, "--no-references", "--no-progress")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (bare / "models").iterdir()] == ["dummy"]


def test_balancing_flag_composes_every_model_and_names_it():
    from resectbench.protocol.config import ExperimentConfig, default_run_name, merge_overrides

    cfg = merge_overrides(
        ExperimentConfig(), models=["swinunetr-fusion"], parts={"balancing": "ogm-ge"}, references=True
    )
    assert [m.label for m in cfg.models] == ["swinunetr-fusion+ogm-ge", "dummy", "clinical-sklearn"]
    assert cfg.models[0].params == {"balancing": "ogm-ge"}
    assert default_run_name(cfg) == "swinunetr-fusion+ogm-ge-cpu-s0"  # reference rows stay out of the name
    plain = merge_overrides(ExperimentConfig(), models=["dummy"], references=False)
    assert [m.label for m in plain.models] == ["dummy"]
