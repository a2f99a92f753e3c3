"""Balancing strategies (resectbench.balancing): each does what it claims, inside the one training loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from resectbench import registry as reg
from resectbench.balancing import OGMGE, AuxiliaryHeads, GradientBlending, ModalityDropout, StagedTraining
from resectbench.fusion.concat import ConcatFusion
from resectbench.losses.schedules.cls_only import ClsOnlySchedule
from resectbench.models.backbones.base import BackboneOutput
from resectbench.models.engine import CaseArrays, TrainConfig, train_network
from resectbench.models.network import MultitaskNet
from resectbench.testing import check_balancing


class ToyBackbone(nn.Module):
    """The image branch: a linear map of the (tiny) volume."""

    embed_dim, segments = 4, False

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, x):
        return BackboneOutput(embedding=self.lin(x.flatten(1)), seg_logits=None)


class ToyEncoder(nn.Module):
    out_dim = 3

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 3)

    def forward(self, x):
        return self.lin(x)


def toy_net(seed=0):
    torch.manual_seed(seed)
    return MultitaskNet(ToyBackbone(), ToyEncoder(), ConcatFusion(4, 3, 3, head_hidden=8, dropout=0.0))


def cases(n, seed=0, clinical_noise=0.05, image_noise=2.0):
    """The clinical columns carry the label almost exactly (the fast modality); the image weakly."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = [(labels[i] + rng.normal(0, image_noise, (1, 2, 2, 2))).astype(np.float32) for i in range(n)]
    clinical = (labels[:, None] + rng.normal(0, clinical_noise, (n, 5))).astype(np.float32)
    return CaseArrays([f"c{i}" for i in range(n)], clinical, labels, images)


def fit(net, strategy, epochs=4, valid=True, **config):
    settings = dict(lr=1e-2, batch_size=4, max_epochs=epochs, patience=epochs, n_classes=3, **config)
    return train_network(
        net,
        schedule=ClsOnlySchedule(),
        seg_loss=None,
        cls_loss=nn.CrossEntropyLoss(),
        train=cases(24),
        valid=cases(9, seed=1) if valid else None,
        config=TrainConfig(**settings),
        balancing=strategy,
    )


def test_registered_listed_and_composable():
    assert {"none", "modality-dropout", "staged", "aux-heads", "gradient-blending", "ogm-ge"} <= set(reg.balancing)
    model = reg.models.create("swinunetr-fusion", balancing="ogm-ge", **{"balancing.alpha": 0.3})
    assert model.balancing == "ogm-ge" and model.balancing_kwargs == {"alpha": 0.3}
    assert model.build_balancing(seed=3).alpha == 0.3
    with pytest.raises(Exception, match="unknown balancing 'ogm'"):
        reg.models.create("swinunetr-fusion", balancing="ogm").build_balancing(seed=0)


def test_single_modality_networks_are_refused_by_name():
    image_only = MultitaskNet(ToyBackbone(), None, ConcatFusion(4, 0, 3))
    for strategy in (ModalityDropout(), StagedTraining(), AuxiliaryHeads(), GradientBlending(), OGMGE()):
        with pytest.raises(ValueError, match=strategy.name):
            strategy.setup(image_only, 3)


def test_modality_dropout_zeroes_the_clinical_embedding_at_the_stated_rate():
    strategy = ModalityDropout(clinical_rate=0.3, image_rate=0.2, seed=1)
    net = toy_net()
    x = cases(3000)
    out = strategy.forward(net, torch.from_numpy(np.stack(x.images)), torch.from_numpy(x.clinical))
    clinical_zero = (out.clinical_embedding == 0).all(dim=1)
    image_zero = (out.image_embedding == 0).all(dim=1)
    assert abs(float(clinical_zero.float().mean()) - 0.3) < 0.03
    # image dropped at 0.2 of the cases that kept their clinical embedding; never both
    assert abs(float(image_zero.float().mean()) - 0.2 * 0.7) < 0.03
    assert not bool((clinical_zero & image_zero).any())
    # only while training: the hooks are gone after the forward pass
    again = net(torch.from_numpy(np.stack(x.images[:5])), torch.from_numpy(x.clinical[:5]))
    assert bool((again.clinical_embedding != 0).any(dim=1).all())
    row = fit(toy_net(), ModalityDropout(clinical_rate=0.5, seed=0), epochs=2).history[-1]
    assert 0.2 < row["dropped_clinical"] < 0.8 and row["dropped_image"] == 0.0


def test_staged_training_leaves_frozen_weights_unchanged():
    net = toy_net()
    snapshots = {}

    def remember(epoch, _row):
        snapshots[epoch] = {k: v.clone() for k, v in net.state_dict().items()}

    initial = {k: v.clone() for k, v in net.state_dict().items()}
    strategy = StagedTraining(image_fraction=0.5, then="frozen", head_steps=0)
    train_network(
        net,
        schedule=ClsOnlySchedule(),
        seg_loss=None,
        cls_loss=nn.CrossEntropyLoss(),
        train=cases(24),
        valid=None,
        config=TrainConfig(lr=1e-2, batch_size=4, max_epochs=4, patience=4, n_classes=3),
        on_epoch=remember,
        balancing=strategy,
    )
    backbone = [k for k in initial if k.startswith("backbone.")]
    clinical = [k for k in initial if k.startswith("clinical_encoder.")]
    # stage 1 (epochs 1-2): the image branch learns, the clinical encoder is untouched
    assert any(not torch.equal(snapshots[2][k], initial[k]) for k in backbone)
    assert all(torch.equal(snapshots[2][k], initial[k]) for k in clinical)
    # stage 2 (epochs 3-4): the backbone is frozen, the clinical encoder learns
    assert all(torch.equal(snapshots[4][k], snapshots[2][k]) for k in backbone)
    assert any(not torch.equal(snapshots[4][k], snapshots[2][k]) for k in clinical)
    rows = {int(r["epoch"]): r["stage"] for r in fit(toy_net(), StagedTraining(0.5, head_steps=0)).history}
    assert rows == {1: 1.0, 2: 1.0, 3: 2.0, 4: 2.0}


def test_staged_withholds_the_clinical_embedding_in_stage_one_only():
    net = toy_net()
    strategy = StagedTraining(image_fraction=0.5, head_steps=0)
    optimizer = torch.optim.AdamW(net.parameters())
    x = cases(6)
    strategy.start_epoch(1, 4, net, optimizer)
    out = net(torch.from_numpy(np.stack(x.images)), torch.from_numpy(x.clinical))
    assert bool((out.clinical_embedding == 0).all())
    strategy.start_epoch(3, 4, net, optimizer)
    out = net(torch.from_numpy(np.stack(x.images)), torch.from_numpy(x.clinical))
    assert bool((out.clinical_embedding != 0).any())


def test_staged_slow_scales_the_image_rate():
    net = toy_net()
    optimizer = torch.optim.AdamW(
        [
            {
                "params": list(net.clinical_encoder.parameters()) + list(net.fusion.parameters()),
                "lr": 1e-2,
                "name": "head",
            },
            {"params": list(net.backbone.parameters()), "lr": 1e-2, "name": "image"},
        ]
    )
    strategy = StagedTraining(image_fraction=0.5, then="slow", image_lr_scale=0.1, head_steps=0)
    for epoch in (1, 2, 3):
        strategy.start_epoch(epoch, 4, net, optimizer)
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates["head"] == pytest.approx(1e-2) and rates["image"] == pytest.approx(1e-3)


def test_staged_needs_a_clinical_stage():
    with pytest.raises(ValueError, match="head_steps"):
        StagedTraining(image_fraction=1.0, head_steps=0)


def test_aux_heads_loss_is_the_weighted_sum_of_the_heads():
    net = toy_net()
    strategy = AuxiliaryHeads(image_weight=0.7, clinical_weight=0.2, fused_weight=1.5)
    strategy.setup(net, 3)
    x = cases(6)
    labels = torch.from_numpy(x.labels)
    out = net(torch.from_numpy(np.stack(x.images)), torch.from_numpy(x.clinical))
    ce = nn.CrossEntropyLoss()
    total, _ = strategy.loss(out, labels, ce)
    expected = (
        1.5 * ce(out.logits, labels)
        + 0.7 * ce(strategy.heads["image"](out.image_embedding), labels)
        + 0.2 * ce(strategy.heads["clinical"](out.clinical_embedding), labels)
    )
    assert float(total.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    # the image head's loss reaches the backbone
    total.backward()
    assert net.backbone.lin.weight.grad is not None and float(net.backbone.lin.weight.grad.abs().sum()) > 0


def test_gradient_blending_weights_follow_generalisation_over_overfitting():
    strategy = GradientBlending(min_weight=0.05)
    train0 = {"fused": 1.0, "image": 1.0, "clinical": 1.0}
    val0 = {"fused": 1.1, "image": 1.1, "clinical": 1.1}
    # image: validation improved by 0.1, the gap shrank by 0.05: weight 0.1 / 0.05^2 = 40;
    # fused: improved 0.1, gap grew 0.1: 10; clinical: training fell, validation rose (overfits): floor
    train1 = {"fused": 0.8, "image": 0.95, "clinical": 0.2}
    val1 = {"fused": 1.0, "image": 1.0, "clinical": 1.3}
    w = strategy.blend(train0, val0, train1, val1)
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["clinical"] == pytest.approx(0.05)
    assert w["image"] == pytest.approx(0.95 * 0.8) and w["fused"] == pytest.approx(0.95 * 0.2)
    # nothing generalised better: the weights stay
    assert strategy.blend(train1, val1, train1, val1) == strategy.weights
    history = fit(toy_net(), GradientBlending(), epochs=4).history
    assert history[0]["weight_image"] == pytest.approx(1 / 3)  # equal weights before two epochs are seen
    for row in history:
        assert sum(row[f"weight_{h}"] for h in ("fused", "image", "clinical")) == pytest.approx(1.0)
        assert math.isfinite(row["val_loss_clinical"])


def test_ogm_ge_damps_the_dominant_branch_gradient():
    net = toy_net()
    with torch.no_grad():  # the image branch says nothing: the clinical one dominates
        net.backbone.lin.weight.zero_()
        net.backbone.lin.bias.zero_()
    fit(net, None, epochs=3)
    x = cases(12, seed=2)
    labels = torch.from_numpy(x.labels)
    strategy = OGMGE(alpha=0.8, noise=False)
    strategy.setup(net, 3)
    strategy.start_epoch(1, 1, net, None)
    out = net(torch.from_numpy(np.stack(x.images)), torch.from_numpy(x.clinical))
    coeff = strategy.coefficients(net, out, labels)
    assert coeff["clinical"] < 1.0 and coeff["image"] == 1.0
    nn.CrossEntropyLoss()(out.logits, labels).backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    strategy.after_backward(net, out, labels)
    for name, p in net.named_parameters():
        factor = coeff["clinical"] if name.startswith("clinical_encoder.") else 1.0
        assert torch.allclose(p.grad, grads[name] * factor), name
    # with GE noise the damped gradient moves off the scaled one; the image gradient stays exact
    noisy = OGMGE(alpha=0.8, noise=True, seed=0)
    net.zero_grad()
    out = net(torch.from_numpy(np.stack(x.images)), torch.from_numpy(x.clinical))
    nn.CrossEntropyLoss()(out.logits, labels).backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    noisy.start_epoch(1, 1, net, None)
    noisy.after_backward(net, out, labels)
    assert not torch.allclose(
        net.clinical_encoder.lin.weight.grad, grads["clinical_encoder.lin.weight"] * coeff["clinical"]
    )
    assert torch.equal(net.backbone.lin.weight.grad, grads["backbone.lin.weight"])


def test_a_plugin_strategy_in_one_file(tmp_path, monkeypatch):
    (tmp_path / "my_balancing.py").write_text(
        "from resectbench import hookimpl\n"
        "from resectbench.balancing import BalancingStrategy\n"
        "class HalfClinical(BalancingStrategy):\n"
        "    name = 'half-clinical'\n"
        "    def loss(self, out, labels, cls_loss):\n"
        "        return cls_loss(out.logits.float(), labels), {}\n"
        "@hookimpl\n"
        "def register_balancing(registry):\n"
        "    registry.register('half-clinical', description='a plugin strategy')(HalfClinical)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "my_balancing")
    from resectbench import plugins

    plugins.reset()
    try:
        assert "half-clinical" in reg.balancing
        check_balancing("half-clinical")
        assert reg.balancing.describe("half-clinical")["provider"] == "my_balancing"
    finally:
        plugins.reset()


def test_staged_leaves_parameters_frozen_by_someone_else_frozen():
    net = toy_net()
    net.backbone.lin.bias.requires_grad_(False)  # e.g. a backbone that keeps part of itself fixed
    fit(net, StagedTraining(image_fraction=0.5, head_steps=0), epochs=2)
    assert not net.backbone.lin.bias.requires_grad
    assert net.backbone.lin.weight.requires_grad and all(p.requires_grad for p in net.clinical_encoder.parameters())
