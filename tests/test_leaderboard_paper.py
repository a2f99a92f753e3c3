"""benchmarks/paper/: the experiment files load, resolve and build every model, and fill every
row of the paper layout."""

from pathlib import Path

import pytest

from resectbench import registry as reg
from resectbench.leaderboard.paper import TABLES
from resectbench.protocol.config import ExperimentConfig

PAPER = Path(__file__).resolve().parents[1] / "benchmarks" / "paper"


@pytest.mark.parametrize("name", ["experiment.toml", "table1.toml"])
def test_experiment_files_build_every_model(name):
    config = ExperimentConfig.from_toml(PAPER / name).resolved()
    assert config.profile == "cpu-whole" and config.protocol.outer_folds == 5
    assert any(m.name == "dummy" for m in config.models)  # the chance row
    for spec in config.models:
        model = reg.models.create(spec.name, **spec.params)  # bad parameters raise here
        assert hasattr(model, "fit")


def test_experiment_fills_every_paper_row():
    labels = {m.label for m in ExperimentConfig.from_toml(PAPER / "experiment.toml").resolved().models}
    for table in TABLES:
        for row in table.rows:
            assert labels & set(row.labels), f"{table.title}: no model of experiment.toml fills {row.method!r}"


def test_ablation_models_differ_from_the_full_model_as_the_paper_says():
    models = {
        m.label: reg.models.create(m.name, **m.params)
        for m in ExperimentConfig.from_toml(PAPER / "experiment.toml").resolved().models
    }
    assert models["loss-fixed-2-0.5"].schedule_kwargs == {"w_seg": 2.0, "w_cls": 0.5}
    assert tuple(models["cw-1-1-1"].loss.class_weights) == (1.0, 1.0, 1.0)
    assert tuple(models["swinunetr-fusion"].loss.class_weights) == (1.0, 2.0, 2.5)
    assert models["mean-image"].fusion == "mean-image" and models["ct-only"].fusion == "image-only"
