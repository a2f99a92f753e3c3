"""The search spaces of the components an experiment chooses reach Optuna (docs/protocol.md).

The plugin below is written from docs/plugins.md alone: a fusion registered with its own search
space. Chosen with ``--fusion`` (``params = { fusion = ... }``), its space is tuned next to the
recipe's, with trial 0 still the defaults; the recipe's own components keep the recipe's space.
"""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest
from protocol_helpers import table_cohort

from resectbench import plugins, registry as reg
from resectbench.protocol import ExperimentConfig, ProtocolConfig, run_benchmark
from resectbench.protocol.config import compose_spec
from resectbench.protocol.tuning import default_params, tunable_space

PLUGIN = """
    import torch
    from torch import nn

    from resectbench import hookimpl
    from resectbench.search_space import Categorical, Float


    class MyFusion(nn.Module):
        def __init__(self, image_dim, clinical_dim, n_classes=3, hidden=32, dropout=0.0):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(image_dim + clinical_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, n_classes))

        def forward(self, image_emb, clinical_emb):
            return self.net(torch.cat([image_emb, clinical_emb], dim=1))


    @hookimpl
    def register_fusions(registry):
        registry.register("my-fusion", tags=("attention",),
                          search_space={"hidden": Categorical([32, 64]), "dropout": Float(0.0, 0.3)})(MyFusion)
"""


@pytest.fixture
def my_fusion(tmp_path, monkeypatch):
    (tmp_path / "my_fusion_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "my_fusion_plugin")
    monkeypatch.delenv("RESECTBENCH_DISABLE_PLUGINS", raising=False)
    plugins.reset()
    yield "my-fusion"
    plugins.reset()


def test_a_chosen_component_brings_its_space_and_its_defaults(my_fusion):
    recipe = reg.models.get("swinunetr-fusion")
    own = tunable_space(recipe, {})
    assert not any(k.startswith(("fusion.", "backbone.", "clinical.", "schedule.")) for k in own)  # unchanged
    assert tunable_space(recipe, {"fusion": "late"}) == own  # the recipe's default component: its space

    space = tunable_space(recipe, {"fusion": my_fusion})
    assert set(space) == set(own) | {"fusion.hidden", "fusion.dropout"}
    first = default_params(recipe, space, {"fusion": my_fusion})
    assert first == {**default_params(recipe, own), "fusion.hidden": 32, "fusion.dropout": 0.0}
    # a fixed component option is not tuned
    assert "fusion.hidden" not in tunable_space(recipe, {"fusion": my_fusion, "fusion.hidden": 64})
    # a parameter the recipe resolves itself (feature_size, against the profile) stays the recipe's
    swapped = tunable_space(reg.models.get("cnn3d-fusion"), {"backbone": "swin-unetr"})
    assert "backbone.drop_path_rate" in swapped and "backbone.feature_size" not in swapped


def test_a_plugin_fusion_space_is_tuned_in_a_real_run(tmp_path, my_fusion):
    spec = compose_spec("clinical-only", {"fusion": my_fusion}, {"max_epochs": 2})
    config = ExperimentConfig(
        models=[spec], protocol=ProtocolConfig(outer_folds=2, trials=3), run_dir=str(tmp_path / "run")
    )
    result = run_benchmark(config, cohort=table_cohort(45))
    unit = result.run_dir / "models" / spec.label / "fold_0_0"
    trials = pd.read_csv(unit / "trials.csv")
    assert {"params_fusion.hidden", "params_fusion.dropout", "params_lr"} <= set(trials.columns)
    assert len(trials) == 3
    first = trials.iloc[0]
    assert first["params_fusion.hidden"] == 32 and first["params_fusion.dropout"] == 0.0  # trial 0: defaults
    assert trials["params_fusion.dropout"].nunique() > 1  # then sampled
    best = json.loads((unit / "best_params.json").read_text())
    assert best["fusion"] == my_fusion and "fusion.hidden" in best and "fusion.dropout" in best
    info = json.loads((unit.parent / "model.json").read_text())
    assert "fusion.hidden" in info["search_space"]


def test_conditional_parameters_are_sampled_only_where_they_act():
    import optuna

    from resectbench import registry as reg, search_space as ss

    space = reg.models.get("clinical-sklearn").search_space
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kinds = set()
    for _ in range(20):
        params = ss.suggest(space, study.ask())
        logistic = params["classifier"] == "logistic"
        kinds.add(logistic)
        assert ("C" in params) == logistic and ("learning_rate" in params) == (not logistic)
    assert kinds == {True, False}
    rest = {k: v for k, v in space.items() if k != "classifier"}  # the classifier fixed by the experiment
    boosted = ss.suggest(rest, study.ask(), fixed={"classifier": "gradient-boosting"})
    assert "C" not in boosted and {"learning_rate", "max_depth", "n_estimators"} <= set(boosted)
    assert "C" in ss.suggest({"C": space["C"]}, study.ask())  # its condition unknown here: sampled
    assert str(space["C"]).endswith("if classifier = 'logistic'")
