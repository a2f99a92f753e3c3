"""Clinical encoders: registration, shapes, gradients, validation of bad input."""

import pytest
import torch

from resectbench import registry

ENCODERS = ["mlp", "linear", "ft-transformer", "none"]


def test_all_encoders_registered_with_search_space():
    assert set(ENCODERS) <= set(registry.clinical_encoders.list())
    for name in ENCODERS:
        info = registry.clinical_encoders.describe(name)
        assert info["description"] and info["doc"]
        assert registry.clinical_encoders.get(name).search_space is not None


@pytest.mark.parametrize("name", ENCODERS)
def test_forward_shape_matches_out_dim(name):
    torch.manual_seed(0)
    enc = registry.clinical_encoders.create(name, in_features=7)
    out = enc(torch.randn(5, 7))
    assert out.shape == (5, enc.out_dim)
    assert torch.isfinite(out).all()


def test_paper_mlp_is_64_then_32_with_layernorm_relu():
    enc = registry.clinical_encoders.create("mlp", in_features=20)
    assert enc.out_dim == 32
    kinds = [type(m).__name__ for m in enc.net]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Dropout", "Linear", "LayerNorm", "ReLU"]
    assert enc.net[0].out_features == 64 and enc.net[4].out_features == 32
    # ReLU output: non-negative
    assert (enc(torch.randn(8, 20)) >= 0).all()


def test_none_encoder_has_zero_width_and_no_parameters():
    enc = registry.clinical_encoders.create("none", in_features=17)
    assert enc.out_dim == 0
    assert sum(p.numel() for p in enc.parameters()) == 0
    assert enc(torch.randn(3, 17)).shape == (3, 0)


@pytest.mark.parametrize("name", ["mlp", "linear", "ft-transformer"])
def test_gradient_reaches_every_input_feature(name):
    torch.manual_seed(0)
    enc = registry.clinical_encoders.create(name, in_features=6)
    x = torch.randn(4, 6, requires_grad=True)
    # a random readout: a plain sum of a LayerNorm output is constant and would have no gradient
    (enc(x) * torch.randn(enc.out_dim)).sum().backward()
    assert x.grad is not None
    assert (x.grad.abs().sum(dim=0) > 0).all(), "every feature should influence the embedding"


def test_ft_transformer_tokens_one_per_feature_plus_cls():
    enc = registry.clinical_encoders.create("ft-transformer", in_features=9, d_token=16, n_layers=1)
    assert enc.tokens(torch.randn(2, 9)).shape == (2, 10, 16)
    assert enc.out_dim == 16


def test_ft_transformer_output_depends_on_each_sample_only():
    torch.manual_seed(0)
    enc = registry.clinical_encoders.create("ft-transformer", in_features=5).eval()
    x = torch.randn(4, 5)
    full = enc(x)
    assert torch.allclose(full[:2], enc(x[:2]), atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "linear", "ft-transformer"])
def test_zero_features_is_a_clear_error(name):
    with pytest.raises(ValueError, match="'none'"):
        registry.clinical_encoders.create(name, in_features=0)


def test_wrong_input_width_names_the_encoder():
    enc = registry.clinical_encoders.create("mlp", in_features=4)
    with pytest.raises(ValueError, match=r"'mlp' expects input of shape \(batch, 4\)"):
        enc(torch.randn(2, 5))


def test_ft_transformer_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        registry.clinical_encoders.create("ft-transformer", in_features=3, d_token=30, n_heads=4)


def test_same_seed_same_weights():
    torch.manual_seed(3)
    a = registry.clinical_encoders.create("ft-transformer", in_features=4)
    torch.manual_seed(3)
    b = registry.clinical_encoders.create("ft-transformer", in_features=4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
