"""Image backbones on tiny volumes: shapes, gradients, registry, pretrained loading, TAT geometry."""

import pytest
import torch

from resectbench.errors import RegistryError
from resectbench.models.backbones.base import BackboneOutput, PretrainedLoadError
from resectbench.models.backbones.swin_unetr import SwinUNETRBackbone
from resectbench.models.backbones.tat import VESSELS, SoftDistance, TATBackbone, crop_patches
from resectbench.models.backbones.timm25d import Timm25DBackbone
from resectbench.registry import backbones

ROI = (32, 32, 32)
# the smallest configuration of each built-in that trains at 32^3 on a CPU
TINY = {
    "swin-unetr": dict(feature_size=12, norm_name="group"),
    "cnn3d": dict(init_filters=8),
    "vit3d": dict(hidden_size=64, num_layers=4, feature_size=8),
    "timm-2.5d": dict(model_name="resnet10t", slice_stride=4),
    "tat": dict(init_filters=8, patch_size=8, patch_width=4),
}
SEGMENTING = ["swin-unetr", "cnn3d", "vit3d", "tat"]


def build(name, n_seg_classes=16, embed_dim=32, **kw):
    torch.manual_seed(0)
    return backbones.create(
        name, in_channels=1, roi=ROI, n_seg_classes=n_seg_classes, embed_dim=embed_dim, **{**TINY[name], **kw}
    )


def test_every_builtin_is_registered():
    assert set(TINY) <= set(backbones.list())
    for name in TINY:
        info = backbones.describe(name)
        assert info["search_space"], name
        assert len(info["doc"]) > 200, f"{name} should document its choices"


@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_shapes_and_gradients(name):
    net = build(name).train()
    x = torch.randn(2, 1, *ROI)
    out = net(x)
    assert isinstance(out, BackboneOutput)
    assert net.embed_dim == 32 and out.embedding.shape == (2, 32)
    if name in SEGMENTING:
        assert net.segments and out.seg_logits.shape == (2, 16, *ROI)
        loss = out.embedding.pow(2).mean() + out.seg_logits.logsumexp(1).mean()
    else:
        assert not net.segments and out.seg_logits is None
        loss = out.embedding.pow(2).mean()
    loss.backward()
    params = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    no_grad = [n for n, p in params if p.grad is None]
    assert not no_grad, f"{name}: parameters outside the graph: {no_grad[:5]}"
    nonzero = sum(bool(p.grad.abs().sum() > 0) for _, p in params)
    # (timm ResNets zero-initialise each block's last BN scale, which blocks part of the gradient at step 0)
    assert nonzero >= 0.6 * len(params), f"{name}: only {nonzero}/{len(params)} parameters got a gradient"
    first = next(p for n, p in params if "project" not in n)
    assert first.grad.abs().sum() > 0, f"{name}: no gradient reaches the input layer"
    assert torch.isfinite(out.embedding).all()


@pytest.mark.parametrize("name", ["swin-unetr", "cnn3d", "vit3d"])
def test_encoder_only_skips_the_decoder(name):
    full, encoder = build(name), build(name, n_seg_classes=0)
    assert not encoder.segments
    out = encoder(torch.randn(1, 1, *ROI))
    assert out.seg_logits is None and out.embedding.shape == (1, 32)
    assert sum(p.numel() for p in encoder.parameters()) < sum(p.numel() for p in full.parameters())


@pytest.mark.parametrize("name,norm", [("vit3d", "group"), ("vit3d", "batch"), ("swin-unetr", "batch")])
def test_decoder_norm_choices(name, norm):
    out = build(name, norm_name=norm).train()(torch.randn(2, 1, *ROI))
    assert out.seg_logits.shape == (2, 16, *ROI)
    with pytest.raises(ValueError, match="norm_name must be one of"):
        build(name, norm_name="layer")


def test_same_seed_same_output():
    x = torch.randn(1, 1, *ROI)
    a, b = build("cnn3d").eval(), build("cnn3d").eval()
    with torch.no_grad():
        assert torch.equal(a(x).embedding, b(x).embedding)


def test_bad_shapes_fail_clearly():
    with pytest.raises(ValueError, match="divisible by 32"):
        build("swin-unetr", roi=(48, 32, 32)) if False else backbones.create("swin-unetr", roi=(48, 32, 32))
    with pytest.raises(ValueError, match="instance.*cannot train"):
        backbones.create("swin-unetr", roi=ROI, feature_size=12, norm_name="instance")
    with pytest.raises(ValueError, match="multiple of 12"):
        backbones.create("swin-unetr", roi=ROI, feature_size=16, norm_name="group")
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 1, 32, 32, 32\)"):
        build("cnn3d")(torch.zeros(1, 1, 16, 32, 32))
    with pytest.raises(RegistryError, match="feature_size"):
        backbones.create("swin-unetr", feature_sise=12)
    with pytest.raises(ValueError, match="did you mean"):
        build("timm-2.5d", model_name="convnext_atom")


# -- pretrained checkpoints -------------------------------------------------------------------
def _swin(**kw):
    return SwinUNETRBackbone(roi=ROI, feature_size=12, norm_name="group", embed_dim=32, **kw).eval()


def test_swin_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    source = _swin()
    path = tmp_path / "own.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(2)
    target = _swin(pretrained=str(path))
    x = torch.randn(1, 1, *ROI)
    with torch.no_grad():
        assert torch.allclose(source(x).seg_logits, target(x).seg_logits)
        assert torch.allclose(source(x).embedding, target(x).embedding)
    assert not target.pretrained_report.missing and not target.pretrained_report.shape_mismatch


def test_swin_loads_btcv_and_ssl_layouts(tmp_path):
    torch.manual_seed(1)
    source = _swin()
    state = source.state_dict()
    # BTCV fine-tuned layout: wrapped, DataParallel prefix, a 14-class output layer
    btcv = {"module." + k: v for k, v in state.items() if not k.startswith("project.")}
    btcv["module.out.conv.conv.weight"] = torch.zeros(14, 12, 1, 1, 1)
    btcv["module.out.conv.conv.bias"] = torch.zeros(14)
    torch.save({"epoch": 5, "state_dict": btcv}, tmp_path / "btcv.pt")
    report = _swin(pretrained=str(tmp_path / "btcv.pt")).pretrained_report
    assert any(m.startswith("out.conv.conv.weight") for m in report.shape_mismatch)
    assert "project.weight" in report.missing and "swinViT.patch_embed.proj.weight" in report.loaded
    # self-supervised encoder layout (model_swinvit.pt): module.patch_embed.* -> swinViT.*
    ssl = {"module." + k[len("swinViT.") :]: v for k, v in state.items() if k.startswith("swinViT.")}
    ssl["module.rotation_head.weight"] = torch.zeros(4, 8)
    torch.save({"state_dict": ssl}, tmp_path / "ssl.pt")
    target = _swin(pretrained=str(tmp_path / "ssl.pt"))
    assert torch.equal(target.swinViT.patch_embed.proj.weight, source.swinViT.patch_embed.proj.weight)
    assert "module.rotation_head.weight" in target.pretrained_report.unexpected


def test_corrupt_mismatched_and_unsafe_checkpoints_fail_naming_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    torch.save(_swin().state_dict(), corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:2000])
    with pytest.raises(PretrainedLoadError, match="corrupt.pt"):
        _swin(pretrained=str(corrupt))
    other = tmp_path / "cnn.pt"
    torch.save(build("cnn3d").state_dict(), other)
    with pytest.raises(PretrainedLoadError, match=r"cnn.pt.*does not match"):
        _swin(pretrained=str(other))
    unsafe = tmp_path / "pickled.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": Timm25DBackbone}, unsafe)  # pickles a class
    with pytest.raises(PretrainedLoadError, match="pickled.pt.*weights-only"):
        _swin(pretrained=str(unsafe))
    with pytest.raises(PretrainedLoadError, match="does not exist"):
        _swin(pretrained=str(tmp_path / "missing.pt"))


# -- timm 2.5D ----------------------------------------------------------------------------------
def test_timm_slices_are_axial_with_adjacent_channels():
    net = build("timm-2.5d", slice_stride=8)
    x = torch.arange(32.0).view(1, 1, 1, 1, 32).expand(1, 1, *ROI)  # voxel value = its z index
    slices = net._slices(x)
    centre = net.slice_index.tolist()
    assert slices.shape == (len(centre), 3, 32, 32)
    for s, z in enumerate(centre):
        assert slices[s, :, 0, 0].tolist() == [max(z - 1, 0), z, min(z + 1, 31)]
    out = net(torch.randn(2, 1, *ROI))
    assert out.embedding.shape == (2, net.embed_dim)
    assert torch.allclose(net.last_slice_weights.sum(1), torch.ones(2))


# -- TAT ----------------------------------------------------------------------------------------
def test_soft_distance_measures_distance_to_a_mask():
    p = torch.zeros(1, 1, *ROI)
    p[0, 0, 16, 16, 16] = 1
    d = SoftDistance(max_distance=10, stride=1)(p)[0, 0]
    assert d[16, 16, 16] == 0 and d[16, 16, 20] == 4
    assert 4 <= d[19, 20, 16] <= 5  # between chessboard (4) and Euclidean (5) distance
    assert d[16, 16, 31] == 10  # saturates at max_distance
    half = SoftDistance(max_distance=10, stride=1)(p * 0.5)[0, 0]
    assert d[16, 16, 20] < half[16, 16, 20] < 10  # a less certain mask reads farther
    coarse = SoftDistance(max_distance=16, stride=2)(p)[0, 0]
    assert coarse.shape == (16, 16, 16) and coarse[8, 8, 10] == 4  # in full-resolution voxels


def test_crop_patches_centres_on_the_requested_point():
    volume = torch.zeros(1, 1, *ROI)
    volume[0, 0, 10, 20, 5] = 1
    patch = crop_patches(volume, torch.tensor([[10.0, 20.0, 5.0]]), 5)
    assert patch.shape == (1, 1, 5, 5, 5) and patch[0, 0, 2, 2, 2] == 1 and patch.sum() == 1


def _tumor_vessel_maps(gap):
    """Tumor cube at x 8..15, an SMA tube along z at x = 15 + gap; other vessels far away."""
    prob = torch.zeros(1, 1 + len(VESSELS), *ROI)
    prob[0, 0, 8:16, 12:20, 12:20] = 1
    prob[0, 1, 15 + gap, 15:17, :] = 1
    prob[0, 2:, 30, 30, :] = 1
    return prob


def test_tat_geometry_measures_distance_and_closest_point():
    net = build("tat", geometry_stride=1, max_distance=12)
    touching, apart = net.geometry(_tumor_vessel_maps(1)), net.geometry(_tumor_vessel_maps(6))
    assert touching["min_distance"][0, 0] < 1.5
    assert apart["min_distance"][0, 0] == pytest.approx(6.0, abs=1.0)
    assert touching["vessel_near_tumor"][0, 0] > apart["vessel_near_tumor"][0, 0]
    assert touching["tumor_near_vessel"][0, 0] > apart["tumor_near_vessel"][0, 0]
    point = apart["closest_points"][0, 0]
    assert point[0] == pytest.approx(15, abs=1.0) and 14 <= point[1] <= 18  # tumor face nearest the SMA
    assert apart["min_distance"][0, 1] > 10  # far vessels read far


def test_tat_gradients_reach_the_seg_head_only_through_the_geometry_when_allowed():
    x = torch.randn(1, 1, *ROI)
    for detach, expect in ((False, True), (True, False)):
        net = build("tat", detach_masks=detach)
        net(x).embedding.sum().backward()  # no segmentation loss: the seg head's gradient is geometric
        grad = net.texture.net.conv_final[-1].conv.weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == expect
    assert TATBackbone.mask_source == "predicted"
    with pytest.raises(ValueError, match="n_seg_classes >= 9"):
        build("tat", n_seg_classes=3)


def test_timm_loads_a_local_state_dict_and_skips_a_mismatched_stem(tmp_path):
    source = build("timm-2.5d")
    path = tmp_path / "resnet10t.pth"
    torch.save(source.encoder.state_dict(), path)
    same = build("timm-2.5d", pretrained=str(path))
    assert all(
        torch.equal(a, b) for a, b in zip(source.encoder.state_dict().values(), same.encoder.state_dict().values())
    )
    one_channel = build("timm-2.5d", pretrained=str(path), adjacent_slices=False)  # stem expects 1 channel
    report = one_channel.pretrained_report
    assert report.shape_mismatch and report.shape_mismatch[0].startswith("conv1.0.weight")
    assert len(report.loaded) > 0.9 * len(source.encoder.state_dict())


def test_contact_features_measure_how_far_the_predicted_tumour_wraps_a_vessel_and_can_be_the_swin_embedding():
    from resectbench.data.labels import INDEX
    from resectbench.models.backbones.base import CONTACT_VESSELS, N_CONTACT_FEATURES, contact_features

    def logits(tumour_sides: str, gap: int = 0) -> torch.Tensor:
        """A 3x3 SMA running along the last (axial) axis; tumour on the named sides, ``gap`` voxels of fat away."""
        label = torch.zeros(1, 16, 16, 12, dtype=torch.long)
        lo, hi = 6 - gap - 2, 9 + gap  # tumour slabs just outside the vessel (+ gap)
        if "x" in tumour_sides:
            label[0, lo : lo + 2, 4:11, 2:10] = INDEX["tumor"]
        if "X" in tumour_sides:
            label[0, hi : hi + 2, 4:11, 2:10] = INDEX["tumor"]
        if "y" in tumour_sides:
            label[0, 4:11, lo : lo + 2, 2:10] = INDEX["tumor"]
        if "Y" in tumour_sides:
            label[0, 4:11, hi : hi + 2, 2:10] = INDEX["tumor"]
        label[0, 6:9, 6:9, :] = INDEX["sma"]
        return torch.nn.functional.one_hot(label, 16).permute(0, 4, 1, 2, 3).float() * 20

    share = 1 + 3 * CONTACT_VESSELS.index("sma")  # the SMA's contact share of its most-encased slice
    one_side, all_round, apart = (contact_features(logits(s, g))[0] for s, g in (("x", 0), ("xXyY", 0), ("xXyY", 1)))
    assert one_side.shape == (N_CONTACT_FEATURES,)
    assert apart[share] == 0 and apart[share + 1] == 0  # a 1-voxel fat plane: no contact
    assert 0.3 < one_side[share] < 0.5 < all_round[share] == 1.0  # 3 of 8 boundary voxels vs all 8
    assert one_side[share + 1] < all_round[share + 1]  # more touching voxels
    net = backbones.create(
        "swin-unetr", roi=(32, 32, 32), feature_size=12, window_size=4, norm_name="batch", embedding="contact"
    )
    assert net.embed_dim == N_CONTACT_FEATURES and not hasattr(net, "project")
    out = net(torch.randn(2, 1, 32, 32, 32))
    assert torch.equal(out.embedding, contact_features(out.seg_logits))
    with pytest.raises(ValueError, match="needs n_seg_classes > 0"):
        backbones.create("swin-unetr", roi=(32, 32, 32), feature_size=12, n_seg_classes=0, embedding="contact")
    with pytest.raises(ValueError, match="embedding must be one of"):
        backbones.create("swin-unetr", roi=(32, 32, 32), feature_size=12, norm_name="batch", embedding="both")
