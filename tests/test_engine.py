"""The training engine on toy networks and generated arrays (no registry, no cohort files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from resectbench.errors import TrainingError
from resectbench.models.engine import CaseArrays, TrainConfig, load_weights, predict, train_network
from resectbench.models.engine.metrics import TUMOR, mean_structure_dice
from resectbench.models.engine.trainer import checkpoint_score
from resectbench.models.network import MultitaskNet


class ToyOut:
    def __init__(self, embedding, seg_logits):
        self.embedding, self.seg_logits = embedding, seg_logits


class ToyBackbone(nn.Module):
    embed_dim = 8
    segments = True

    def __init__(self, n_seg=3):
        super().__init__()
        self.conv = nn.Conv3d(1, 8, 3, padding=1)
        self.seg = nn.Conv3d(8, n_seg, 1)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return ToyOut(h.mean(dim=(2, 3, 4)), self.seg(h))


class ToyEncoder(nn.Module):
    def __init__(self, in_features, out_dim=4):
        super().__init__()
        self.out_dim = out_dim
        self.lin = nn.Linear(in_features, out_dim)

    def forward(self, x):
        return torch.relu(self.lin(x))


class ToyFusion(nn.Module):
    def __init__(self, image_dim, clinical_dim, n_classes=3):
        super().__init__()
        self.lin = nn.Linear(image_dim + clinical_dim, n_classes)

    def forward(self, image_emb, clinical_emb):
        return self.lin(torch.cat([image_emb, clinical_emb], dim=1))


class StepSchedule(nn.Module):
    """The dice-step rule, written out here so the engine's use of a schedule is tested on its own."""

    uses_segmentation = True

    def __init__(self):
        super().__init__()
        self.w_seg = 3.0
        self.seen = []

    def combine(self, seg_loss, cls_loss):
        if seg_loss is None:
            return cls_loss, {"w_seg": 0.0, "w_cls": 1.0}
        return self.w_seg * seg_loss + cls_loss / self.w_seg, {"w_seg": self.w_seg, "w_cls": 1 / self.w_seg}

    def end_epoch(self, stats):
        self.seen.append(stats["tumor_dice"])
        tau = stats["tumor_dice"] or 0.0
        self.w_seg = 3.0 if tau < 0.1 else 1.5 if tau < 0.5 else 1.0


def make_arrays(n=12, size=8, seed=0, features=5):
    """Class signal in both the clinical table and the image (a bright cube whose size grows with the class)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    clinical = rng.normal(size=(n, features)).astype(np.float32)
    clinical[:, 0] += labels * 1.5
    images, segs = [], []
    for y in labels:
        img = rng.normal(scale=0.1, size=(1, size, size, size)).astype(np.float32)
        seg = np.zeros((size,) * 3, np.uint8)
        r = 1 + int(y)
        seg[size // 2 - r : size // 2 + r, size // 2 - r : size // 2 + r, size // 2 - r : size // 2 + r] = 2
        img[0][seg == 2] += 2.0
        images.append(img)
        segs.append(seg)
    return CaseArrays(
        case_ids=[f"c{i}" for i in range(n)],
        clinical=clinical,
        labels=labels,
        images=images,
        segs=segs,
        has_mask=np.ones(n, bool),
    )


def make_net(seed=0, features=5):
    torch.manual_seed(seed)
    return MultitaskNet(ToyBackbone(), ToyEncoder(features), ToyFusion(ToyBackbone.embed_dim, 4))


def dice_ce(logits, target):
    return nn.functional.cross_entropy(logits, target[:, 0])


def fit(net, train, valid=None, **cfg):
    config = TrainConfig(**{"lr": 1e-2, "batch_size": 4, "max_epochs": 3, "patience": 5, **cfg})
    schedule = StepSchedule()
    result = train_network(
        net,
        schedule=schedule,
        seg_loss=dice_ce,
        cls_loss=nn.CrossEntropyLoss(),
        train=train,
        valid=valid,
        config=config,
    )
    return result, schedule


def test_history_has_one_row_per_epoch_with_losses_weights_and_dice():
    result, schedule = fit(make_net(), make_arrays(), make_arrays(seed=1), max_epochs=3)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    for row in result.history:
        for key in (
            "train_loss",
            "train_cls_loss",
            "train_seg_loss",
            "w_seg",
            "w_cls",
            "tumor_dice",
            "val_macro_f1",
            "val_loss",
            "val_accuracy",
            "lr",
        ):
            assert row[key] is not None, key
        assert row["w_cls"] == pytest.approx(1 / row["w_seg"])
    # the weights used in epoch e+1 follow from the tumor Dice measured in epoch e
    for prev, row in zip(result.history, result.history[1:]):
        tau = prev["tumor_dice"]
        assert row["w_seg"] == (3.0 if tau < 0.1 else 1.5 if tau < 0.5 else 1.0)
    assert schedule.seen == [r["tumor_dice"] for r in result.history]


def test_training_reduces_loss_and_learns_the_classes():
    result, _ = fit(make_net(), make_arrays(n=24), make_arrays(n=12, seed=1), max_epochs=8, lr=3e-2)
    assert result.history[-1]["train_cls_loss"] < result.history[0]["train_cls_loss"]
    assert max(r["val_macro_f1"] for r in result.history) > 0.6


def test_best_epoch_restored_from_weights_only_checkpoint(tmp_path):
    net = make_net()
    config = TrainConfig(lr=1e-2, batch_size=4, max_epochs=4, patience=10)
    result = train_network(
        net,
        schedule=StepSchedule(),
        seg_loss=dice_ce,
        cls_loss=nn.CrossEntropyLoss(),
        train=make_arrays(),
        valid=make_arrays(seed=1),
        config=config,
        checkpoint_path=tmp_path / "best.pt",
    )
    saved = load_weights(tmp_path / "best.pt")
    for k, v in net.state_dict().items():
        assert torch.equal(v, saved[k])
    # a segmenting network is judged on validation macro-F1 and tumour Dice together
    assert all(0.0 <= r["val_tumor_dice"] <= 1.0 for r in result.history)
    best = max(result.history, key=lambda r: (checkpoint_score(r), -r["val_loss"]))
    assert result.best_epoch == best["epoch"]


def test_checkpoint_weighs_validation_tumour_dice_only_when_it_can():
    # the fold that motivated it: epoch 2 had the best macro-F1 but an untrained segmentation
    early = {"val_macro_f1": 0.67, "val_tumor_dice": 0.0}
    later = {"val_macro_f1": 0.62, "val_tumor_dice": 0.64}
    assert checkpoint_score(later) > checkpoint_score(early)
    assert checkpoint_score({"val_macro_f1": 0.5}) == 0.5  # no masks / no segmentation: macro-F1 alone
    tumour = np.zeros((4, 4, 4), np.uint8)
    tumour[1:3, 1:3, 1:3] = TUMOR
    assert mean_structure_dice([tumour, tumour], [tumour, np.zeros_like(tumour)], TUMOR) == 1.0  # cases with one
    assert mean_structure_dice([tumour], [np.zeros_like(tumour)], TUMOR) is None
    # validation cases without masks: no Dice logged, macro-F1 alone picks the epoch
    valid = make_arrays(seed=1)
    valid.has_mask = np.zeros(len(valid), bool)
    result, _ = fit(make_net(), make_arrays(), valid, max_epochs=3, patience=10)
    assert all("val_tumor_dice" not in r for r in result.history)
    best = max(result.history, key=lambda r: (r["val_macro_f1"], -r["val_loss"]))
    assert result.best_epoch == best["epoch"]


def test_early_stopping_honours_patience():
    # lr 0: nothing changes, so no epoch after the first improves
    result, _ = fit(make_net(), make_arrays(), make_arrays(seed=1), lr=0.0, max_epochs=10, patience=2)
    assert len(result.history) == 3 and result.stopped_early and result.best_epoch == 1


def test_on_epoch_callback_sees_metrics_and_may_stop_the_fit():
    seen = []

    class Pruned(Exception):
        pass

    def on_epoch(epoch, metrics):
        seen.append((epoch, metrics["val_macro_f1"]))
        if epoch == 2:
            raise Pruned()

    with pytest.raises(Pruned):
        train_network(
            make_net(),
            schedule=StepSchedule(),
            seg_loss=dice_ce,
            cls_loss=nn.CrossEntropyLoss(),
            train=make_arrays(),
            valid=make_arrays(seed=1),
            config=TrainConfig(lr=1e-2, max_epochs=5),
            on_epoch=on_epoch,
        )
    assert [e for e, _ in seen] == [1, 2]


def test_non_finite_input_names_epoch_and_case():
    train = make_arrays()
    train.clinical[5, 2] = np.nan
    with pytest.raises(TrainingError, match=r"epoch 1: non-finite clinical input .*c5"):
        fit(make_net(), train)


def test_non_finite_loss_names_epoch_and_term():
    with pytest.raises(TrainingError, match=r"epoch \d+: non-finite \w+ loss"):
        fit(make_net(), make_arrays(), lr=1e12, max_epochs=3, grad_clip=None)


def test_same_seed_same_predictions_and_different_seed_differs():
    def run(seed):
        net = make_net(seed)
        fit(net, make_arrays(), make_arrays(seed=1), seed=seed, max_epochs=2)
        return predict(net, make_arrays(seed=2), batch_size=4, device="cpu").logits

    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_gradient_accumulation_matches_large_batch_for_batch_independent_net():
    # no batch-dependent layers and a mean loss: 2 x batch 2 accumulated == 1 x batch 4
    arrays = make_arrays(n=4)

    def one_epoch(batch_size, accum):
        net = make_net()
        train_network(
            net,
            schedule=StepSchedule(),
            seg_loss=dice_ce,
            cls_loss=nn.CrossEntropyLoss(),
            train=arrays,
            valid=None,
            config=TrainConfig(lr=1e-2, batch_size=batch_size, grad_accum=accum, max_epochs=1, grad_clip=None),
        )
        return net.fusion.lin.weight.detach().clone()

    torch.testing.assert_close(one_epoch(4, 1), one_epoch(2, 2), rtol=1e-4, atol=1e-6)


def test_sliding_window_inference_on_volumes_larger_than_the_patch():
    net = make_net()
    arrays = make_arrays(n=3, size=12)
    whole = predict(net, arrays, batch_size=2, device="cpu", want_masks=True)
    windowed = predict(net, arrays, batch_size=2, device="cpu", patch_size=(8, 8, 8), want_masks=True)
    assert windowed.logits.shape == whole.logits.shape == (3, 3)
    assert windowed.masks.shape == whole.masks.shape == (3, 12, 12, 12)
    assert np.isfinite(windowed.logits).all()


def test_inference_needs_no_masks():
    net = make_net()
    arrays = make_arrays(n=3)
    no_masks = CaseArrays(case_ids=arrays.case_ids, clinical=arrays.clinical, images=arrays.images)
    np.testing.assert_allclose(
        predict(net, no_masks, batch_size=2, device="cpu").logits,
        predict(net, arrays, batch_size=2, device="cpu").logits,
    )


def test_registered_dice_step_weights_switch_at_the_thresholds(monkeypatch):
    """The engine feeds each epoch's training tumor Dice to the real `dice-step` schedule; the weights
    logged for the next epoch step at tau 0.1 and 0.5 (a threshold belongs to the upper step)."""
    from resectbench import registry
    from resectbench.models.engine import trainer

    taus = [0.05, 0.1, 0.49, 0.5, 0.0]
    state = {"tau": taus[0]}
    monkeypatch.setattr(
        trainer, "structure_dice", lambda logits, target, index: torch.full((logits.shape[0],), state["tau"])
    )

    def on_epoch(epoch, metrics):
        state["tau"] = taus[epoch] if epoch < len(taus) else 0.0

    result = train_network(
        make_net(),
        schedule=registry.loss_schedules.create("dice-step"),
        seg_loss=dice_ce,
        cls_loss=nn.CrossEntropyLoss(),
        train=make_arrays(),
        valid=None,
        config=TrainConfig(lr=1e-2, max_epochs=5),
        on_epoch=on_epoch,
    )
    assert [r["tumor_dice"] for r in result.history] == pytest.approx(taus)
    assert [r["w_seg"] for r in result.history] == [3.0, 3.0, 1.5, 1.5, 1.0]
    assert [r["w_cls"] for r in result.history] == pytest.approx([1 / 3, 1 / 3, 1 / 1.5, 1 / 1.5, 1.0])


def test_backbone_learning_rate_scale_applies_to_the_image_backbone_only():
    net = make_net()
    backbone_before = [p.detach().clone() for p in net.backbone.parameters()]
    fusion_before = net.fusion.lin.weight.detach().clone()
    fit(net, make_arrays(), max_epochs=1, backbone_lr_scale=0.0)
    assert all(torch.equal(a, b) for a, b in zip(backbone_before, net.backbone.parameters()))
    assert not torch.equal(fusion_before, net.fusion.lin.weight)


def test_gradient_clipping_is_per_parameter_group(monkeypatch):
    # the backbone's (segmentation-weighted) gradient must not shrink the clinical branch's via one global norm
    clipped = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(params, max_norm, *args, **kwargs):
        params = list(params)
        clipped.append({id(p) for p in params})
        return real_clip(params, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    net = make_net()
    fit(net, make_arrays(n=4), max_epochs=1, grad_clip=1.0)
    backbone = {id(p) for p in net.backbone.parameters()}
    rest = {id(p) for p in net.parameters()} - backbone
    assert clipped, "gradient clipping never ran"
    assert all(group in (backbone, rest) for group in clipped)
    assert backbone in clipped and rest in clipped
