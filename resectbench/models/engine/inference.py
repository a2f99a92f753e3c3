"""Mask-free inference: images + clinical in, class logits (and optionally predicted masks) out.

When a volume is larger than the network's patch size, MONAI's ``sliding_window_inference`` with
Gaussian blending covers it (as in the paper). Class logits are not spatial, so each window's
logits are broadcast over its patch: the Gaussian-blended map is then a weighted average of the
windows' logits, and its spatial mean is the case's logits (windows near the centre count most).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..network import MultitaskNet
from .batches import CaseArrays, make_loader
from .precision import autocast


@dataclass
class Predictions:
    logits: np.ndarray  # (N, n_classes) float32
    masks: np.ndarray | None = None  # (N, *roi) uint8 predicted canonical labels, when asked and segmenting
    image_embedding: np.ndarray | None = None  # (N, image_dim) float32, when asked (whole-volume input only)
    clinical_embedding: np.ndarray | None = None  # (N, clinical_dim) float32, when asked


def _needs_window(spatial: tuple[int, ...], patch_size) -> bool:
    return patch_size is not None and any(s > p for s, p in zip(spatial, patch_size))


@torch.no_grad()
def predict(
    net: MultitaskNet,
    arrays: CaseArrays,
    *,
    batch_size: int,
    device: str,
    amp_dtype: torch.dtype | None = None,
    patch_size: tuple[int, int, int] | None = None,
    want_masks: bool = False,
    channels_last: bool = False,
    overlap: float = 0.25,
    n_classes: int = 3,
    want_embeddings: bool = False,
) -> Predictions:
    """Class logits for every case of ``arrays`` (no masks read), in order; with ``want_embeddings`` the
    image and clinical embeddings too (not with sliding-window inference: a window's embedding is not the
    case's)."""
    net.eval()
    logits_out, masks_out, embeddings = [], [], {"image": [], "clinical": []}
    loader = make_loader(arrays, batch_size=batch_size, shuffle=False)
    for batch in loader:
        clinical = batch["clinical"].to(device)
        image = batch.get("image")
        seg_logits = None
        if image is not None and net.uses_image:
            image = image.to(device)
            if channels_last:
                image = image.contiguous(memory_format=torch.channels_last_3d)
        if image is not None and net.uses_image and _needs_window(tuple(image.shape[2:]), patch_size):
            if want_embeddings:
                raise ValueError("predict: embeddings are not available with sliding-window inference")
            from monai.inferers import sliding_window_inference  # lazy: monai costs seconds at registry load

            # one case at a time, so each window is paired with that case's clinical row
            blended = torch.cat(
                [
                    sliding_window_inference(
                        image[i : i + 1],
                        roi_size=patch_size,
                        sw_batch_size=1,
                        predictor=_WindowPredictor(net, clinical[i : i + 1], amp_dtype, device, want_masks),
                        overlap=overlap,
                        mode="gaussian",
                    )
                    for i in range(image.shape[0])
                ]
            )
            logits = blended[:, :n_classes].flatten(2).mean(dim=2)
            if blended.shape[1] > n_classes:
                seg_logits = blended[:, n_classes:]
        else:
            with autocast(amp_dtype, device):
                out = net(image if net.uses_image else None, clinical)
            logits = out.logits.float()
            seg_logits = out.seg_logits
            if want_embeddings:
                embeddings["image"].append(out.image_embedding.float().cpu().numpy())
                embeddings["clinical"].append(out.clinical_embedding.float().cpu().numpy())
        logits_out.append(logits.cpu().numpy().astype(np.float32))
        if want_masks and seg_logits is not None:
            masks_out.append(seg_logits.argmax(dim=1).to(torch.uint8).cpu().numpy())
    masks = np.concatenate(masks_out) if masks_out else None
    joined = {m: np.concatenate(v) if v else None for m, v in embeddings.items()} if want_embeddings else {}
    return Predictions(
        logits=np.concatenate(logits_out) if logits_out else np.zeros((0, n_classes), np.float32),
        masks=masks,
        image_embedding=joined.get("image"),
        clinical_embedding=joined.get("clinical"),
    )


class _WindowPredictor:
    """Patch -> class logits broadcast over the patch (+ segmentation logits when wanted)."""

    def __init__(self, net, clinical, amp_dtype, device, want_masks):
        self.net, self.clinical, self.amp_dtype, self.device, self.want_masks = (
            net,
            clinical,
            amp_dtype,
            device,
            want_masks,
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        clinical = self.clinical.expand(x.shape[0], -1)
        with autocast(self.amp_dtype, self.device):
            out = self.net(x, clinical)
        cls = out.logits.float()
        cls_map = cls[(...,) + (None,) * (x.ndim - 2)].expand(*cls.shape, *x.shape[2:])
        if self.want_masks and out.seg_logits is not None:
            return torch.cat([cls_map, out.seg_logits.float()], dim=1)
        return cls_map
