"""The paper's "mean embedding" ablations: one modality's embedding is replaced by its training mean.

The mean is tracked like a BatchNorm running statistic: a buffer updated from every batch seen
in training mode (detached, so it carries no gradient) and never from evaluation batches, so it
only ever summarises training cases (no leakage) and is saved with the weights.

When the replacement happens (``replace_at``):

- ``"eval"`` (default): training is ordinary concatenation fusion on both real embeddings; in
  evaluation mode (validation, early stopping, test predictions) the replaced modality is
  swapped for its training mean. This measures how much the *trained* multimodal model relies
  on that modality, which is what distinguishes this ablation from the image-only and
  clinical-only ablations (those train without the modality); it is our reading of the paper,
  which does not say.
- ``"both"``: the head also sees the mean during training (after the batch has updated it), so
  the network learns without that modality's case-to-case information while keeping the
  architecture and parameter count of the full model.
"""

from __future__ import annotations

import torch

from ..registry import component
from .base import Fusion
from .head import HEAD_SPACE, ClassificationHead


class MeanEmbeddingFusion(Fusion):
    """Concatenation fusion in which the ``replaced`` modality's embedding becomes its training mean.

    ``momentum`` (default 0.1) is the weight of each new training batch in an exponential
    moving average, as in BatchNorm: the embedding drifts while the backbone trains, so recent
    batches describe the final model best. ``momentum=None`` keeps the exact mean of every
    training embedding seen (cumulative over all epochs). The first training batch initialises
    the mean. Evaluating before any training batch raises an error (the mean is undefined).
    """

    replaced: str = "image"

    def __init__(
        self,
        image_dim: int,
        clinical_dim: int,
        n_classes: int = 3,
        replace_at: str = "eval",
        momentum: float | None = 0.1,
        head_hidden: int = 128,
        dropout: float = 0.2,
    ):
        super().__init__(image_dim, clinical_dim, n_classes)
        if replace_at not in ("eval", "both"):
            raise ValueError(f"fusion {self.name!r}: replace_at must be 'eval' or 'both', got {replace_at!r}")
        if momentum is not None and not 0.0 < momentum <= 1.0:
            raise ValueError(f"fusion {self.name!r}: momentum must be in (0, 1] or None, got {momentum!r}")
        self.replace_at = replace_at
        self.momentum = momentum
        dim = image_dim if self.replaced == "image" else clinical_dim
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("n_seen", torch.zeros((), dtype=torch.long))
        self.head = ClassificationHead(image_dim + clinical_dim, n_classes, head_hidden, dropout)

    @torch.no_grad()
    def _track(self, emb: torch.Tensor) -> None:
        batch_mean = emb.detach().float().mean(dim=0)
        n = emb.shape[0]
        if self.n_seen == 0:
            self.running_mean.copy_(batch_mean)
        elif self.momentum is None:
            self.running_mean.add_((batch_mean - self.running_mean) * (n / float(self.n_seen + n)))
        else:
            self.running_mean.lerp_(batch_mean, self.momentum)
        self.n_seen += n

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:
        embs = {"image": image_emb, "clinical": clinical_emb}
        own = embs[self.replaced]
        if self.training:
            self._track(own)
        replace = not self.training or self.replace_at == "both"
        if replace:
            if self.n_seen == 0:
                raise RuntimeError(
                    f"fusion {self.name!r} has seen no training batch, so the training mean of the "
                    f"{self.replaced} embedding is undefined; train it before evaluating"
                )
            embs[self.replaced] = self.running_mean.to(own.dtype).expand_as(own)
        return self.head(torch.cat([embs["image"], embs["clinical"]], dim=1))


@component(
    "mean-image",
    tags=("ablation", "paper"),
    description="Ablation (paper): concat fusion with the image embedding replaced by its training-set "
    "running mean (at eval by default)",
    search_space=dict(HEAD_SPACE),
)
class MeanImageFusion(MeanEmbeddingFusion):
    """The paper's "image replaced by mean embedding" ablation. Needs ``image_dim > 0``.

    Concatenation fusion whose image embedding is swapped for its training-set mean (a running
    mean kept like a BatchNorm buffer, updated only from training-mode batches). By default
    (``replace_at="eval"``) the model trains on the real embeddings and the swap happens in
    evaluation mode (validation, early stopping and test predictions), measuring how much the
    trained model relies on the image; ``replace_at="both"`` swaps during training too. The
    replacement policy is part of the ablation's definition, so it is not in the search space.
    Details: :mod:`resectbench.fusion.mean_embedding`.
    """

    name = "mean-image"
    needs = "image"
    replaced = "image"


@component(
    "mean-clinical",
    tags=("ablation", "paper"),
    description="Ablation (paper): concat fusion with the clinical embedding replaced by its training-set "
    "running mean (at eval by default)",
    search_space=dict(HEAD_SPACE),
)
class MeanClinicalFusion(MeanEmbeddingFusion):
    """The paper's "tabular replaced by mean embedding" ablation. Needs ``clinical_dim > 0``.

    Concatenation fusion whose clinical embedding is swapped for its training-set mean (a
    running mean kept like a BatchNorm buffer, updated only from training-mode batches). By
    default (``replace_at="eval"``) the model trains on the real embeddings and the swap happens
    in evaluation mode (validation, early stopping and test predictions), measuring how much the
    trained model relies on the clinical data; ``replace_at="both"`` swaps during training too.
    The replacement policy is part of the ablation's definition, so it is not in the search
    space. Details: :mod:`resectbench.fusion.mean_embedding`.
    """

    name = "mean-clinical"
    needs = "clinical"
    replaced = "clinical"
