"""Head refit on the frozen image embedding (models/engine/head_refit.py), on a toy network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from resectbench.models.engine import CaseArrays, snapshot
from resectbench.models.engine.head_refit import HeadRefit, image_embeddings, refit_head
from resectbench.models.network import MultitaskNet


class ClassBackbone(nn.Module):
    """Embedding = the image's mean intensity per channel block: it carries the class; not trainable here."""

    embed_dim = 4
    segments = False

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3, 4))[:, None] * self.scale
        return type("Out", (), {"embedding": torch.cat([m, m**2, -m, torch.ones_like(m)], dim=1), "seg_logits": None})


class Encoder(nn.Module):
    def __init__(self, in_features=3, out_dim=2):
        super().__init__()
        self.out_dim = out_dim
        self.lin = nn.Linear(in_features, out_dim)

    def forward(self, x):
        return self.lin(x)


class Fusion(nn.Module):
    def __init__(self, image_dim=4, clinical_dim=2):
        super().__init__()
        self.head = nn.Sequential(nn.LayerNorm(image_dim + clinical_dim), nn.Linear(image_dim + clinical_dim, 3))

    def forward(self, image_emb, clinical_emb):
        return self.head(torch.cat([image_emb, clinical_emb], dim=1))


def arrays(n, seed):
    """Class k: images of mean intensity k (+ noise); clinical columns are noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = [(labels[i] + rng.normal(0, 0.1, size=(1, 4, 4, 4))).astype(np.float32) for i in range(n)]
    clinical = rng.normal(size=(n, 3)).astype(np.float32)
    return CaseArrays(case_ids=[f"c{i}" for i in range(n)], clinical=clinical, labels=labels, images=images)


def net():
    torch.manual_seed(0)
    model = MultitaskNet(ClassBackbone(), Encoder(), Fusion())
    with torch.no_grad():  # a jointly trained head that ended at the prior: every case "resectable"
        model.fusion.head[1].weight.zero_()
        model.fusion.head[1].bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    return model


def test_refit_learns_the_classes_from_frozen_embeddings_and_leaves_the_backbone_alone():
    model = net()
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    train, valid = arrays(30, 0), arrays(12, 1)
    report = refit_head(
        model, train, valid, nn.CrossEntropyLoss(), HeadRefit(steps=200), batch_size=4, device="cpu", seed=0
    )
    assert report["joint_head_val_macro_f1"] < 0.3  # the prior
    assert report["head_refit_step"] > 0 and report["head_refit_val_macro_f1"] == 1.0
    assert report["head_refit_train_macro_f1"] == 1.0
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key])
    logits = model(torch.stack([torch.from_numpy(a) for a in valid.images]), torch.from_numpy(valid.clinical)).logits
    assert (logits.argmax(dim=1).numpy() == valid.labels).all()


def test_refit_keeps_the_joint_head_when_it_validates_better():
    model = net()
    train, valid = arrays(30, 0), arrays(12, 1)
    refit_head(model, train, valid, nn.CrossEntropyLoss(), HeadRefit(steps=200), batch_size=4, device="cpu", seed=0)
    good = snapshot(model)
    # a second refit that cannot learn (no steps worth keeping: lr 0) must keep the head it was given
    report = refit_head(
        model, train, valid, nn.CrossEntropyLoss(), HeadRefit(steps=30, lr=0.0), batch_size=4, device="cpu", seed=0
    )
    assert report["head_refit_step"] == 0
    for key, value in model.state_dict().items():
        assert torch.equal(value, good[key])


def test_refit_is_reproducible_and_without_validation_keeps_the_last_step():
    results = []
    for _ in range(2):
        model = net()
        report = refit_head(
            model, arrays(30, 0), None, nn.CrossEntropyLoss(), HeadRefit(steps=50), batch_size=4, device="cpu", seed=3
        )
        assert report["head_refit_step"] == 50 and report["joint_head_val_macro_f1"] is None
        results.append(snapshot(model))
    for key, value in results[0].items():
        assert torch.equal(value, results[1][key])


def test_image_embeddings_follow_case_order():
    model, data = net(), arrays(7, 2)
    emb = image_embeddings(model, data, batch_size=3, device="cpu")
    assert emb.shape == (7, 4)
    assert np.allclose(emb[:, 0].numpy(), [img.mean() for img in data.images], atol=1e-6)


def late_net():
    from resectbench.fusion.late import LateFusion

    torch.manual_seed(0)
    return MultitaskNet(ClassBackbone(), Encoder(), LateFusion(4, 2, 3, head_hidden=8, dropout=0.0))


def test_unimodal_refit_stops_each_modality_head_on_its_own():
    """Image informative, clinical noise: the image head trains on, the clinical head keeps an early check."""
    model = late_net()
    train, valid = arrays(30, 0), arrays(12, 1)
    report = refit_head(
        model,
        train,
        valid,
        nn.CrossEntropyLoss(),
        HeadRefit(steps=200, lr=3e-2, objective="unimodal"),
        batch_size=4,
        device="cpu",
        seed=0,
        keep_joint=False,
    )
    assert report["head_refit_val_macro_f1"] == 1.0
    assert report["head_refit_step"] == report["head_refit_step_image"]
    assert report["head_refit_step_clinical"] < 200  # noise: its validation peaks early, then it memorises
    # the kept clinical part is the one of its own best check: refitting with that many steps gives it back
    again = late_net()
    refit_head(
        again,
        train,
        valid,
        nn.CrossEntropyLoss(),
        HeadRefit(steps=report["head_refit_step_clinical"], lr=3e-2, objective="unimodal"),
        batch_size=4,
        device="cpu",
        seed=0,
        keep_joint=False,
    )
    for key, value in model.state_dict().items():
        if key.startswith(("clinical_encoder.", "fusion.heads.clinical.")):
            assert torch.equal(value, again.state_dict()[key]), key


def test_unimodal_refit_needs_a_head_per_modality():
    with pytest.raises(ValueError, match="head per modality"):
        refit_head(
            net(),
            arrays(6, 0),
            None,
            nn.CrossEntropyLoss(),
            HeadRefit(objective="unimodal"),
            batch_size=4,
            device="cpu",
            seed=0,
        )
    with pytest.raises(ValueError, match="objective"):
        HeadRefit(objective="joint")
