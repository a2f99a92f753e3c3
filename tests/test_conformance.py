"""Every registered component passes the conformance checks of resectbench.testing; the checks catch breakage.

The parametrisation reads the registries, so a new built-in (or a plugin loaded in the test process)
is checked without being listed here. ``SMALL`` only shrinks known components to keep CPU time low; a
component missing from it is checked with its factory defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from protocol_helpers import table_cohort
from torch import nn

from resectbench import registry
from resectbench.fusion.base import Fusion
from resectbench.models.backbones.base import BackboneOutput
from resectbench.models.base import ResectabilityModel
from resectbench.search_space import Categorical, Float
from resectbench.testing import (
    check_backbone,
    check_balancing,
    check_clinical_encoder,
    check_fusion,
    check_loss_schedule,
    check_recipe,
    check_search_space,
)

ROOT = Path(__file__).resolve().parents[1]
# smaller than the defaults, for speed only (32^3 volumes on a CPU)
SMALL = {
    "swin-unetr": dict(feature_size=12, norm_name="group"),
    "cnn3d": dict(init_filters=8),
    "vit3d": dict(hidden_size=64, num_layers=4, feature_size=8),
    "timm-2.5d": dict(model_name="resnet10t", slice_stride=4),
    "tat": dict(init_filters=8, patch_size=8, patch_width=4),
}


@pytest.mark.parametrize("name", registry.backbones.list())
def test_backbone_conforms(name):
    check_backbone(name, **SMALL.get(name, {}))


@pytest.mark.parametrize("name", registry.clinical_encoders.list())
def test_clinical_encoder_conforms(name):
    check_clinical_encoder(name)


@pytest.mark.parametrize("name", registry.fusions.list())
def test_fusion_conforms(name):
    check_fusion(name)


@pytest.mark.parametrize("name", registry.loss_schedules.list())
def test_loss_schedule_conforms(name):
    check_loss_schedule(name)


@pytest.mark.parametrize("name", registry.balancing.list())
def test_balancing_conforms(name):
    check_balancing(name)


def test_a_strategy_that_leaves_its_hook_or_freezes_fails():
    from resectbench.balancing import BalancingStrategy

    class Leaky(BalancingStrategy):
        name = "leaky"

        def setup(self, net, n_classes):
            net.clinical_encoder.register_forward_hook(lambda _m, _i, out: out * 0)
            return []

    class Freezer(BalancingStrategy):
        name = "freezer"

        def start_epoch(self, epoch, max_epochs, net, optimizer):
            for p in net.backbone.parameters():
                p.requires_grad_(False)
            return {}

    with pytest.raises(AssertionError, match="hooks left"):
        check_balancing(Leaky)
    with pytest.raises(AssertionError, match="left frozen"):
        check_balancing(Freezer)


@pytest.mark.parametrize("name", registry.models.list())
def test_recipe_conforms(name):
    check_recipe(name)


# recipes that learn from the clinical table alone are also fitted here (images: tests/test_recipes.py,
# ensembles of an image expert: tests/test_ensemble.py)
IMAGE_TAGS = {"neural", "geometric", "ensemble"}
TABLE_ONLY = [n for n in registry.models.list() if not IMAGE_TAGS & set(registry.models.get(n).tags)]


@pytest.mark.parametrize("name", TABLE_ONLY)
def test_table_recipe_fits_and_predicts(name):
    assert TABLE_ONLY, "no registered recipe learns from the clinical table alone"
    fitted = check_recipe(name, cohort=table_cohort(30))
    assert fitted.n_parameters() >= 0


# -- the checks fail on broken components ---------------------------------------------------------


class GoodFusion(Fusion):
    name = "good"
    needs = "any"

    def __init__(self, image_dim: int, clinical_dim: int, n_classes: int = 3, hidden: int = 8):
        super().__init__(image_dim, clinical_dim, n_classes)
        self.head = nn.Sequential(nn.Linear(image_dim + clinical_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def fuse(self, image_emb, clinical_emb):
        return self.head(torch.cat([image_emb, clinical_emb], 1))


class UncheckedFusion(nn.Module):
    """Right shapes on good input, but a wrong clinical width slips through (no ValueError)."""

    def __init__(self, image_dim: int, clinical_dim: int, n_classes: int = 3):
        super().__init__()
        if image_dim == 0:
            raise ValueError("unchecked needs an image")
        self.head = nn.Linear(image_dim, n_classes)

    def forward(self, image_emb, clinical_emb):
        if image_emb.shape[1] != self.head.in_features:
            raise ValueError("wrong image width")
        return self.head(image_emb)


class BatchMixingFusion(GoodFusion):
    """Subtracts the batch mean: a case's logits depend on the other cases."""

    def fuse(self, image_emb, clinical_emb):
        logits = super().fuse(image_emb, clinical_emb)
        return logits - logits.mean(0, keepdim=True)


def test_a_conforming_fusion_passes_and_broken_ones_fail():
    check_fusion(GoodFusion, search_space={"hidden": Categorical([4, 8])})
    with pytest.raises(AssertionError, match="wrong width"):
        check_fusion(UncheckedFusion)
    with pytest.raises(AssertionError, match="depends on the other cases"):
        check_fusion(BatchMixingFusion)
    with pytest.raises(AssertionError, match="not a parameter of its factory"):
        check_fusion(GoodFusion, search_space={"width": Categorical([4, 8])})
    with pytest.raises(AssertionError, match="which the caller sets"):
        check_fusion(GoodFusion, search_space={"clinical_dim": Categorical([4, 8])})
    with pytest.raises(AssertionError, match="does not build"):
        check_fusion(GoodFusion, search_space={"hidden": Categorical([-1])})
    with pytest.raises(AssertionError, match="low >= high"):
        check_search_space("fusions", GoodFusion, {"hidden": Float(1.0, 0.5)})


class FlatBackbone(nn.Module):
    def __init__(self, in_channels=1, roi=(8, 8, 8), n_seg_classes=0, embed_dim=16, lie_about_segments=False):
        super().__init__()
        self.project = nn.Linear(in_channels, embed_dim)
        self.embed_dim, self.in_channels = embed_dim, in_channels
        self.segments = lie_about_segments

    def forward(self, x):
        if x.shape[1] != self.in_channels:
            raise ValueError("wrong channel count")
        return BackboneOutput(self.project(x.mean((2, 3, 4))), None)


class ShrunkBackbone(FlatBackbone):
    def forward(self, x):
        out = super().forward(x)
        return BackboneOutput(out.embedding[:, :-1], None)


def test_a_conforming_backbone_passes_and_broken_ones_fail():
    check_backbone(FlatBackbone, roi=(8, 8, 8))
    with pytest.raises(AssertionError, match="embedding shape"):
        check_backbone(ShrunkBackbone, roi=(8, 8, 8))
    with pytest.raises(AssertionError, match="segments=True needs seg_logits"):
        check_backbone(FlatBackbone, roi=(8, 8, 8), lie_about_segments=True)


class WideEncoder(nn.Module):
    """Claims out_dim 4 but returns 5 columns, and accepts in_features=0."""

    def __init__(self, in_features: int, out_dim: int = 4):
        super().__init__()
        self.out_dim = out_dim
        self.linear = nn.Linear(max(in_features, 1), out_dim + 1)

    def forward(self, x):
        return self.linear(x)


def test_a_broken_clinical_encoder_fails():
    with pytest.raises(AssertionError, match="output shape"):
        check_clinical_encoder(WideEncoder)


class ForgetfulSchedule(nn.Module):
    """Follows the Dice in a plain attribute (not a buffer): the state does not survive state_dict."""

    uses_segmentation = True

    def __init__(self):
        super().__init__()
        self.tau = 0.0

    def current_weights(self):
        w_seg = 3.0 if self.tau < 0.5 else 1.0
        return {"w_seg": w_seg, "w_cls": 1.0 / w_seg}

    def combine(self, seg_loss, cls_loss):
        w = self.current_weights()
        return w["w_cls"] * cls_loss + (0 if seg_loss is None else w["w_seg"] * seg_loss), w

    def end_epoch(self, stats):
        if stats.get("tumor_dice") is not None and not np.isnan(stats["tumor_dice"]):
            self.tau = float(stats["tumor_dice"])


def test_a_schedule_whose_state_is_lost_fails():
    with pytest.raises(AssertionError, match="state_dict does not round-trip"):
        check_loss_schedule(ForgetfulSchedule)


class UnnormalisedRecipe(ResectabilityModel):
    def __init__(self, scale: float = 2.0):
        super().__init__()
        self.scale = scale

    def fit(self, train, valid, ctx):
        return self

    def predict_proba(self, cohort, ctx):
        return np.full((len(cohort.case_ids), 3), self.scale / 3)


def test_a_recipe_whose_rows_do_not_sum_to_one_fails():
    check_recipe(UnnormalisedRecipe, scale=1.0, cohort=table_cohort(12))
    with pytest.raises(AssertionError, match="sum to 1"):
        check_recipe(UnnormalisedRecipe, cohort=table_cohort(12))


def test_the_example_plugin_passes_its_own_conformance_tests():
    """The example plugin's tests (plugins/resectbench-example/tests) use resectbench.testing."""
    example = ROOT / "plugins" / "resectbench-example"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(example), os.environ.get("PYTHONPATH", "")])}
    env.pop("RESECTBENCH_PLUGINS", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(example / "tests")],
        capture_output=True,
        text=True,
        env=env,
        cwd=example,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
