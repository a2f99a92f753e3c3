"""Fusions: shapes with every modality combination, gradient flow, late averaging, mean-embedding ablation."""

import pytest
import torch

from resectbench import registry

FUSIONS = [
    "concat",
    "gated",
    "film",
    "cross-attention",
    "low-rank-tensor",
    "late",
    "image-only",
    "clinical-only",
    "mean-image",
    "mean-clinical",
]
# which modality combinations each fusion must accept: (image present, clinical present)
ACCEPTS = {
    "concat": {(1, 1), (1, 0), (0, 1)},
    "late": {(1, 1), (1, 0), (0, 1)},
    "gated": {(1, 1)},
    "film": {(1, 1)},
    "cross-attention": {(1, 1)},
    "low-rank-tensor": {(1, 1)},
    "image-only": {(1, 1), (1, 0)},
    "clinical-only": {(1, 1), (0, 1)},
    "mean-image": {(1, 1), (1, 0)},
    "mean-clinical": {(1, 1), (0, 1)},
}
# fusions whose output should depend on both embeddings during training
USES_BOTH = ["concat", "gated", "film", "cross-attention", "low-rank-tensor", "late", "mean-image", "mean-clinical"]
IMAGE_DIM, CLINICAL_DIM, BATCH = 12, 6, 5


def _inputs(image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(BATCH, image_dim, generator=g, requires_grad=grad),
        torch.randn(BATCH, clinical_dim, generator=g, requires_grad=grad),
    )


def test_all_fusions_registered_and_described():
    assert set(FUSIONS) <= set(registry.fusions.list())
    for name in FUSIONS:
        info = registry.fusions.describe(name)
        assert info["description"] and info["doc"]
        assert info["search_space"], f"{name} declares no search space"


@pytest.mark.parametrize("name", FUSIONS)
@pytest.mark.parametrize("image_present,clinical_present", [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_shapes_and_modality_requirements(name, image_present, clinical_present):
    dims = dict(image_dim=IMAGE_DIM * image_present, clinical_dim=CLINICAL_DIM * clinical_present)
    if (image_present, clinical_present) not in ACCEPTS[name]:
        with pytest.raises(ValueError, match=f"fusion '{name}' needs"):
            registry.fusions.create(name, **dims)
        return
    torch.manual_seed(0)
    fusion = registry.fusions.create(name, **dims)
    image, clinical = _inputs(**dims)
    fusion.train()
    assert fusion(image, clinical).shape == (BATCH, 3)
    fusion.eval()
    out = fusion(image, clinical)
    assert out.shape == (BATCH, 3) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["concat", "late", "image-only"])
def test_absent_clinical_may_be_passed_as_none(name):
    fusion = registry.fusions.create(name, image_dim=IMAGE_DIM, clinical_dim=0)
    image, _ = _inputs()
    assert fusion(image, None).shape == (BATCH, 3)


def test_wrong_embedding_width_is_a_clear_error():
    fusion = registry.fusions.create("concat", image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM)
    image, clinical = _inputs(clinical_dim=CLINICAL_DIM + 1)
    with pytest.raises(ValueError, match="clinical embedding as"):
        fusion(image, clinical)


@pytest.mark.parametrize("name", USES_BOTH)
def test_gradients_reach_both_embeddings_in_training(name):
    torch.manual_seed(0)
    fusion = registry.fusions.create(name, image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM, dropout=0.0).train()
    image, clinical = _inputs(grad=True)
    (fusion(image, clinical) * torch.randn(BATCH, 3)).sum().backward()
    assert image.grad.abs().sum() > 0, f"{name}: no gradient to the image embedding"
    assert clinical.grad.abs().sum() > 0, f"{name}: no gradient to the clinical embedding"


@pytest.mark.parametrize("name,ignored", [("image-only", "clinical"), ("clinical-only", "image")])
def test_single_modality_ablations_ignore_the_other(name, ignored):
    torch.manual_seed(0)
    fusion = registry.fusions.create(name, image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM).eval()
    image, clinical = _inputs(grad=True)
    other_image, other_clinical = _inputs(seed=1)
    out = fusion(image, clinical)
    changed = fusion(
        other_image if ignored == "image" else image, other_clinical if ignored == "clinical" else clinical
    )
    assert torch.equal(out, changed)
    out.sum().backward()
    assert (image.grad if ignored == "image" else clinical.grad) is None


def test_concat_is_288_wide_for_paper_dims():
    fusion = registry.fusions.create("concat", image_dim=256, clinical_dim=32)
    assert fusion.head.net[0].normalized_shape == (288,)


def test_late_averages_per_modality_logits():
    torch.manual_seed(0)
    fusion = registry.fusions.create("late", image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM).eval()
    image, clinical = _inputs()
    per = fusion.modality_logits(image, clinical)
    # learned weights start equal: a plain average
    assert fusion.modality_weights() == pytest.approx({"image": 0.5, "clinical": 0.5})
    assert torch.allclose(fusion(image, clinical), (per["image"] + per["clinical"]) / 2, atol=1e-6)
    # after the weights move, it is the weighted average with softmax weights
    with torch.no_grad():
        fusion.alpha.copy_(torch.tensor([1.0, -1.0]))
    w = torch.softmax(torch.tensor([1.0, -1.0]), 0)
    assert torch.allclose(fusion(image, clinical), w[0] * per["image"] + w[1] * per["clinical"], atol=1e-6)
    assert fusion.alpha.requires_grad


def test_late_equal_weighting_is_fixed_and_one_modality_passes_through():
    fusion = registry.fusions.create("late", image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM, weighting="equal")
    assert "alpha" not in dict(fusion.named_parameters())
    single = registry.fusions.create("late", image_dim=IMAGE_DIM, clinical_dim=0).eval()
    image, _ = _inputs()
    assert torch.allclose(single(image, None), single.heads["image"](image))


def test_gated_exposes_gates_in_unit_interval():
    fusion = registry.fusions.create("gated", image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM, fusion_dim=16)
    fusion(*_inputs())
    assert fusion.last_gate.shape == (BATCH, 16)
    assert ((fusion.last_gate > 0) & (fusion.last_gate < 1)).all()


def test_film_starts_near_identity_modulation():
    fusion = registry.fusions.create("film", image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM)
    with torch.no_grad():
        fusion.generator.weight.zero_()
        fusion.generator.bias.zero_()
    image, clinical = _inputs()
    fusion.eval()
    # with a zero generator FiLM is the identity: output = head(image)
    assert torch.allclose(fusion(image, clinical), fusion.head(image))


def test_low_rank_tensor_parameter_count_is_low_rank():
    fusion = registry.fusions.create("low-rank-tensor", image_dim=256, clinical_dim=32, rank=4, fusion_dim=64)
    factors = fusion.image_factor.numel() + fusion.clinical_factor.numel()
    assert factors == 4 * (257 + 33) * 64
    assert factors < 257 * 33 * 64  # far fewer than the full tensor fusion


def test_cross_attention_mixes_clinical_into_output():
    torch.manual_seed(0)
    fusion = registry.fusions.create(
        "cross-attention",
        image_dim=IMAGE_DIM,
        clinical_dim=CLINICAL_DIM,
        d_model=16,
        n_heads=2,
        n_image_tokens=3,
        n_clinical_tokens=2,
    ).eval()
    image, clinical = _inputs()
    _, other_clinical = _inputs(seed=1)
    assert not torch.allclose(fusion(image, clinical), fusion(image, other_clinical))


@pytest.mark.parametrize("name,replaced", [("mean-image", "image"), ("mean-clinical", "clinical")])
def test_mean_embedding_ignores_replaced_modality_at_eval(name, replaced):
    torch.manual_seed(0)
    fusion = registry.fusions.create(name, image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM, momentum=None)
    seen = []
    fusion.train()
    for seed in range(3):
        image, clinical = _inputs(seed=seed)
        seen.append(image if replaced == "image" else clinical)
        fusion(image, clinical)
    # the buffer is the exact mean of the training embeddings (momentum=None)
    assert torch.allclose(fusion.running_mean, torch.cat(seen).mean(0), atol=1e-5)
    assert int(fusion.n_seen) == 3 * BATCH
    state = dict(fusion.state_dict())
    assert "running_mean" in state

    fusion.eval()
    image, clinical = _inputs(seed=10)
    other_image, other_clinical = _inputs(seed=11)
    out = fusion(image, clinical)
    if replaced == "image":
        assert torch.equal(out, fusion(other_image, clinical))
        assert not torch.allclose(out, fusion(image, other_clinical))
    else:
        assert torch.equal(out, fusion(image, other_clinical))
        assert not torch.allclose(out, fusion(other_image, clinical))
    # evaluation batches never update the training mean
    assert int(fusion.n_seen) == 3 * BATCH


def test_mean_embedding_uses_real_embedding_in_training_by_default_and_mean_with_both():
    torch.manual_seed(0)
    default = registry.fusions.create("mean-image", image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM, dropout=0.0)
    image, clinical = _inputs(grad=True)
    default.train()(image, clinical).sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0

    both = registry.fusions.create(
        "mean-image", image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM, dropout=0.0, replace_at="both"
    ).train()
    image, clinical = _inputs(grad=True)
    out = both(image, clinical)
    out.sum().backward()
    assert image.grad is None  # the mean is detached: nothing flows into the image branch
    # rows differ only through the clinical embedding
    _, other_clinical = _inputs(seed=3)
    assert not torch.allclose(out, both(image, other_clinical))


def test_mean_embedding_ema_and_untrained_error():
    fusion = registry.fusions.create("mean-clinical", image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM, momentum=0.5)
    with pytest.raises(RuntimeError, match="no training batch"):
        fusion.eval()(*_inputs())
    fusion.train()
    ones, twos = torch.ones(BATCH, CLINICAL_DIM), 2 * torch.ones(BATCH, CLINICAL_DIM)
    fusion(torch.zeros(BATCH, IMAGE_DIM), ones)
    assert torch.allclose(fusion.running_mean, torch.ones(CLINICAL_DIM))  # first batch initialises
    fusion(torch.zeros(BATCH, IMAGE_DIM), twos)
    assert torch.allclose(fusion.running_mean, torch.full((CLINICAL_DIM,), 1.5))


@pytest.mark.parametrize("name", FUSIONS)
def test_one_step_lowers_loss_on_fixed_batch(name):
    torch.manual_seed(0)
    fusion = registry.fusions.create(name, image_dim=IMAGE_DIM, clinical_dim=CLINICAL_DIM, dropout=0.0).train()
    image, clinical = _inputs()
    target = torch.tensor([0, 1, 2, 0, 1])
    opt = torch.optim.SGD(fusion.parameters(), lr=0.05)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(fusion(image, clinical), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[1] < losses[0]
