"""The fold-level segmenter: trains on masked cases only, predicts masks from the CT alone."""

import numpy as np
import pytest
import torch

from resectbench.data.labels import INDEX
from resectbench.errors import DataError, TrainingError
from resectbench.models.engine.batches import CaseArrays
from resectbench.models.segmenter import Segmenter, SegmenterConfig, build_network, fit_segmentation

ROI = (16, 16, 16)


def blobs(n, seed=0):
    """Bright spheres labelled tumor and a bright rod labelled SMA on a noisy background."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in ROI], indexing="ij"))
    images, segs = [], []
    for _ in range(n):
        centre = rng.uniform(5, 11, size=3)
        seg = np.zeros(ROI, dtype=np.uint8)
        seg[((grid - centre[:, None, None, None]) ** 2).sum(0) < 9] = INDEX["tumor"]
        x = int(rng.integers(2, 5))
        seg[x : x + 2, 2:4, :] = INDEX["sma"]
        image = rng.normal(0, 0.3, ROI).astype(np.float32) + 2.0 * (seg == INDEX["tumor"]) - 2.0 * (seg == INDEX["sma"])
        images.append(image[None].astype(np.float32))
        segs.append(seg)
    return images, segs


def arrays(n=6, has_mask=None, seed=0):
    images, segs = blobs(n, seed)
    return CaseArrays(
        case_ids=[f"c{i}" for i in range(n)],
        clinical=np.zeros((n, 0), np.float32),
        images=images,
        segs=segs,
        has_mask=np.ones(n, bool) if has_mask is None else np.asarray(has_mask),
    )


def config(**kw):
    base = dict(roi=ROI, epochs=8, batch_size=2, lr=3e-3, backbone_kwargs={"init_filters": 8}, augment=False)
    return SegmenterConfig(**{**base, **kw})


def dice(pred, truth, index):
    p, t = pred == index, truth == index
    return 2 * (p & t).sum() / max(1, p.sum() + t.sum())


def test_training_learns_the_structures_and_predicts_from_images_only():
    cfg = config()
    torch.manual_seed(0)
    net = build_network(cfg)
    data = arrays(8)
    history = fit_segmentation(net, data, cfg)
    assert len(history) == 8 and history[-1]["seg_loss"] < history[0]["seg_loss"]
    assert history[-1]["tumor_dice"] > history[0]["tumor_dice"]
    seg = Segmenter(net, cfg)
    test_images, test_segs = blobs(3, seed=1)
    masks = seg.predict_arrays(test_images)
    assert masks.shape == (3, *ROI) and masks.dtype == np.uint8
    assert np.mean([dice(m, t, INDEX["tumor"]) for m, t in zip(masks, test_segs)]) > 0.6


def test_cases_without_masks_are_not_trained_on():
    cfg = config(epochs=1)
    seen = []
    data = arrays(4, has_mask=[True, False, True, False])
    fit_segmentation(build_network(cfg), data, cfg, on_progress=lambda done, total, msg: seen.append(total))
    assert seen[-1] == 1  # two masked cases, batch size 2 -> one batch per epoch
    with pytest.raises(DataError, match="no training case has a segmentation mask"):
        fit_segmentation(build_network(cfg), arrays(2, has_mask=[False, False]), cfg)


def test_same_seed_same_weights():
    cfg = config(epochs=2)
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = build_network(cfg)
        torch.manual_seed(99)  # training reseeds from cfg.seed, whatever the global RNG state
        fit_segmentation(net, arrays(4), cfg)
        nets.append(net)
    for (name, a), b in zip(nets[0].state_dict().items(), nets[1].state_dict().values()):
        assert torch.equal(a, b), name


def test_non_finite_input_names_the_case():
    data = arrays(2)
    data.images[1][0, 3, 3, 3] = np.nan
    with pytest.raises(TrainingError, match="epoch 1: non-finite image input for case.*c1"):
        fit_segmentation(build_network(config(epochs=1)), data, config(epochs=1, batch_size=2))


def test_save_and_load_round_trip(tmp_path):
    cfg = config(epochs=1)
    net = build_network(cfg)
    fit_segmentation(net, arrays(2), cfg)
    seg = Segmenter(net, cfg, history=[{"epoch": 1}])
    path = seg.save(tmp_path / "seg.pt")
    again = Segmenter.load(path)
    images, _ = blobs(2, seed=3)
    assert np.array_equal(seg.predict_arrays(images), again.predict_arrays(images))
    assert again.config == cfg and again.history == [{"epoch": 1}]


def test_backbone_without_a_segmentation_head_is_refused():
    with pytest.raises(ValueError, match="no segmentation head"):
        build_network(config(backbone="timm-2.5d", backbone_kwargs={}))


def test_train_segmenter_on_a_generated_cohort(tmp_path):
    from resectbench.data.synth import tiny_cohort
    from resectbench.models.base import FitContext
    from resectbench.models.segmenter import train_segmenter
    from resectbench.profiles import get_profile

    cohort = tiny_cohort(tmp_path / "data", n=9)
    train, test = cohort.subset(cohort.case_ids[:6]), cohort.subset(cohort.case_ids[6:])
    ctx = FitContext(seed=0, profile=get_profile("cpu-whole"), cache_dir=tmp_path / "cache")
    epochs = []
    seg = train_segmenter(
        train, ctx, epochs=2, backbone_kwargs={"init_filters": 8}, on_epoch=lambda e, m: epochs.append(m)
    )
    assert [m["epoch"] for m in epochs] == [1, 2] and all(np.isfinite(m["seg_loss"]) for m in epochs)
    masks = seg.predict_masks(test)
    assert list(masks) == test.case_ids
    roi, spacing = get_profile("cpu-whole").roi, get_profile("cpu-whole").target_spacing_mm
    for mask, mask_spacing in masks.values():
        assert mask.shape == tuple(roi) and mask.dtype == np.uint8 and mask.max() < 16
        assert mask_spacing == tuple(float(s) for s in spacing)
    # inference never reads masks: the same cases without mask files give the same prediction
    no_masks = test.subset(test.case_ids)
    no_masks.table["mask"] = None
    again = seg.predict_masks(no_masks)
    assert all(np.array_equal(masks[c][0], again[c][0]) for c in test.case_ids)
    assert set(seg.dice(test)) == set(test.case_ids)
    # trained once per (cases, configuration, seed): the second call loads the cached weights
    cached = train_segmenter(
        train, ctx, epochs=2, backbone_kwargs={"init_filters": 8}, on_epoch=lambda e, m: epochs.append(m)
    )
    assert len(epochs) == 2 and len(list((tmp_path / "cache" / "segmenters").glob("*.pt"))) == 1
    assert all(np.array_equal(masks[c][0], m) for c, (m, _) in cached.predict_masks(test).items())
