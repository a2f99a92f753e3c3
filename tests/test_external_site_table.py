"""Another site's clinical table as it comes: its own data dictionary per external cohort (names, units,
missing tokens), and development variables it does not record imputed by the final models, only when allowed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.data.synth import generate_cohort, tiny_cohort
from resectbench.errors import ResectbenchError
from resectbench.leaderboard import build_leaderboard, load_run
from resectbench.leaderboard.formats import render
from resectbench.protocol import DataConfig, ExperimentConfig, ModelSpec, ProtocolConfig, run_benchmark
from resectbench.protocol.config import ExternalSpec

PROBS = ["prob_resectable", "prob_borderline", "prob_locally_advanced"]
#: the site's own spelling of three variables, one in another unit, and its "not recorded" code
SITE_DICTIONARY = """
charlson_index = { column = "charlson_comorbidity_index" }
glucose = { column = "blood_glucose", unit = "mmol/L" }
neoadjuvant = { column = "neoadjuvant_therapy" }
bmi = { missing = [-99] }
"""


def _site(source, folder, edit):
    """A copy of the cohort at ``source`` whose clinical.csv went through ``edit``."""
    shutil.copytree(source, folder)
    table = pd.read_csv(folder / "clinical.csv")
    edit(table).to_csv(folder / "clinical.csv", index=False)
    return folder


def _site_coding(t):
    t = t.rename(
        columns={
            "charlson_index": "charlson_comorbidity_index",
            "glucose": "blood_glucose",
            "neoadjuvant": "neoadjuvant_therapy",
        }
    )
    t["blood_glucose"] = t["blood_glucose"] / 18.016  # mg/dL -> mmol/L
    t.loc[0, "bmi"] = -99
    return t


def _unrecorded_bmi(t):
    t.loc[0, "bmi"] = np.nan
    return t


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("sites")
    dev = tiny_cohort(root, n=18, seed=0)
    site = generate_cohort(root / "site", n=9, seed=3, profile="tiny", workers=1, class_mix=(1, 1, 1))
    (root / "site_b.toml").write_text(SITE_DICTIONARY)
    return {
        "dev": dev,
        "root": root,
        "canonical": _site(site, root / "site_b", _unrecorded_bmi),
        "own": _site(site, root / "site_b_own", _site_coding),
        "lacking": _site(site, root / "site_d", lambda t: t.drop(columns="ca19_9_change")),
        "blank": _site(site, root / "site_e", lambda t: t.assign(ca19_9_change=np.nan)),
    }


def _config(run_dir, **data):
    return ExperimentConfig(
        models=[ModelSpec("clinical-sklearn")],
        protocol=ProtocolConfig(outer_folds=3, trials=1),
        data=DataConfig(**data),
        run_dir=str(run_dir),
    )


def _scores(run_dir, name):
    """The predictions (by case) and metrics of the final model on the external cohort ``name``."""
    folder = run_dir / "models" / "clinical-sklearn" / "external" / name
    return pd.read_csv(folder / "predictions.csv").set_index("case_id"), json.loads(
        (folder / "metrics.json").read_text()
    )


def test_site_table_read_through_its_own_dictionary_scores_like_canonical_columns(sites, tmp_path):
    dictionary = str(sites["root"] / "site_b.toml")
    own = ExternalSpec(str(sites["own"]), data_dictionary=dictionary)
    run_benchmark(_config(tmp_path, external=[str(sites["canonical"])], externals=[own]), cohort=sites["dev"])
    (canonical, canonical_metrics), (renamed, metrics) = _scores(tmp_path, "site_b"), _scores(tmp_path, "site_b_own")
    assert len(renamed) == 9
    np.testing.assert_allclose(renamed.loc[canonical.index, PROBS], canonical[PROBS], rtol=0, atol=1e-9)
    assert metrics["data_dictionary"] == dictionary and metrics["imputed_variables"] == []
    assert canonical_metrics["data_dictionary"].endswith("site_b/data_dictionary.csv")
    index = json.loads((tmp_path / "external.json").read_text())
    assert index["site_b_own"]["data_dictionary"] == dictionary and index["site_b"]["data_dictionary"] is None
    # read through the site folder's own data_dictionary.csv instead, its missing-value code is refused
    with pytest.raises(ResectbenchError, match="'bmi': value -99 outside the plausible range"):
        run_benchmark(_config(tmp_path / "plain", external=[str(sites["own"])]), cohort=sites["dev"])


def invoke(*args):
    return CliRunner().invoke(build_app(), [str(a) for a in args], catch_exceptions=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_lacking_development_variable_is_refused_then_imputed_recorded_and_on_the_board(sites, tmp_path):
    run_dir = tmp_path / "run"
    dev = sites["dev"].root
    first = invoke(
        "run", "-m", "clinical-sklearn", "--no-references", "--data", dev, "--outer-folds", 3, "--trials", 1,
        "--run-dir", run_dir, "--external", sites["lacking"], "--no-progress",
    )  # fmt: skip
    assert first.exit_code == 2
    out = flat(first.output)
    assert "external cohort site_d" in out and "no column for development variable(s) ca19_9_change" in out
    assert (
        "--external-allow-missing site_d=ca19_9_change" in out and 'allow_missing_variables = ["ca19_9_change"]' in out
    )
    assert not (run_dir / "models" / "clinical-sklearn" / "final" / "DONE").exists()  # refused before the fit

    # the same run, the variable allowed: scored by the stored final model; a copy with the column present but
    # empty gets the same predictions (the development-fitted imputer fills both)
    again = invoke(
        "run", "--run-dir", run_dir, "--external-allow-missing", "site_d=ca19_9_change",
        "--external", sites["blank"], "--no-progress",
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    (lacking, lacking_metrics), (blank, blank_metrics) = _scores(run_dir, "site_d"), _scores(run_dir, "site_e")
    np.testing.assert_allclose(lacking.loc[blank.index, PROBS], blank[PROBS], rtol=0, atol=1e-9)
    assert lacking_metrics["imputed_variables"] == ["ca19_9_change"] and blank_metrics["imputed_variables"] == []
    index = json.loads((run_dir / "external.json").read_text())
    assert index["site_d"]["allow_missing_variables"] == ["ca19_9_change"]
    note = "imputed for site_d: ca19_9_change (not recorded there;"
    board = build_leaderboard(load_run(run_dir), n_boot=50)
    imputed = [n for n in board.notes if n.startswith("imputed for")]
    assert len(imputed) == 1 and imputed[0].startswith(note)
    assert note in flat(render(board, "markdown")) and note in flat(again.output)


def test_allowing_a_variable_that_is_not_a_development_variable_is_a_named_error(sites, tmp_path):
    exp = tmp_path / "exp.toml"
    exp.write_text(
        'models = ["clinical-sklearn"]\n[protocol]\nouter_folds = 3\ntrials = 1\n'
        f'[data]\npath = "{sites["dev"].root}"\n'
        f'[[data.externals]]\npath = "{sites["lacking"]}"\nallow_missing_variables = ["ca19_9_absolute"]\n'
    )
    result = invoke("run", "--config", exp, "--run-dir", tmp_path / "run", "--no-progress")
    assert result.exit_code == 2
    assert (
        "external cohort site_d: allow_missing_variables ca19_9_absolute: not a development variable "
        "(the final models are fitted on age, sex, bmi, charlson_index,"
    ) in flat(result.output)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"externals": "site_b"}, "data.externals must be a list of tables ([[data.externals]]), got 'site_b'"),
        ({"externals": [{"data_dictionary": "x.toml"}]}, "[data.externals[0]] lacks the key(s) path"),
        ({"externals": [{"path": "b", "allow": []}]}, "unknown key(s) allow in [data.externals[0]]"),
        (
            {"externals": [{"path": "b", "allow_missing_variables": "grade"}]},
            "data.externals[0].allow_missing_variables must be a list of strings, got 'grade'",
        ),
    ],
    ids=["not-a-list", "no-path", "unknown-key", "allow-not-a-list"],
)
def test_external_options_in_an_experiment_file_are_type_checked_naming_the_key(data, message):
    with pytest.raises(ResectbenchError) as err:
        ExperimentConfig.from_dict({"models": ["dummy"], "data": data})
    assert message in str(err.value)


def test_command_line_options_name_an_external_cohort_that_exists(sites, tmp_path):
    result = invoke(
        "run", "-m", "dummy", "--no-references", "--data", sites["dev"].root, "--run-dir", tmp_path / "run",
        "--external", sites["canonical"], "--external-dictionary", "site_c=x.toml", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--external-dictionary site_c=x.toml: no external cohort is named 'site_c' (external cohorts: site_b)" in (
        flat(result.output)
    )
    assert not (tmp_path / "run").exists()
