"""Low-rank multimodal fusion (LMF, Liu et al. 2018): an outer-product fusion with low-rank factors."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import component
from ..search_space import Categorical, Int
from .base import Fusion
from .head import HEAD_SPACE, ClassificationHead


@component(
    "low-rank-tensor",
    tags=("interaction", "tensor"),
    description="Low-rank multimodal fusion (Liu et al. 2018): rank-r factorised outer product of "
    "[image, 1] and [clinical, 1] -> MLP head",
    search_space={"rank": Int(2, 8), "fusion_dim": Categorical([32, 64, 128]), **HEAD_SPACE},
)
class LowRankTensorFusion(Fusion):
    """Low-rank Multimodal Fusion (Liu et al., ACL 2018).

    The full tensor fusion ``W . ([x_img, 1] (x) [x_cli, 1])`` would need
    ``(image_dim + 1) * (clinical_dim + 1) * fusion_dim`` weights; LMF factorises ``W`` into
    ``rank`` modality-specific factors: ``h = sum_r w_r * (z_img F_img^r) * (z_cli F_cli^r) + b``
    with ``z = [x, 1]`` (the appended 1 keeps the unimodal terms). ``h`` (R^fusion_dim) then goes
    through the classification head (LMF itself maps straight to the output; we keep the shared
    head so fusions differ only in how they combine). Factors use Xavier-normal initialisation
    as in the reference implementation. Defaults rank 4 and fusion_dim 64 are our choices.
    Needs both modalities.
    """

    name = "low-rank-tensor"
    needs = "both"

    def __init__(
        self,
        image_dim: int,
        clinical_dim: int,
        n_classes: int = 3,
        rank: int = 4,
        fusion_dim: int = 64,
        head_hidden: int = 128,
        dropout: float = 0.2,
    ):
        super().__init__(image_dim, clinical_dim, n_classes)
        if rank < 1 or fusion_dim < 1:
            raise ValueError(f"fusion 'low-rank-tensor': rank and fusion_dim must be >= 1, got {rank}, {fusion_dim}")
        self.rank = rank
        self.image_factor = nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, image_dim + 1, fusion_dim)))
        self.clinical_factor = nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, clinical_dim + 1, fusion_dim)))
        self.rank_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, rank)))
        self.bias = nn.Parameter(torch.zeros(fusion_dim))
        self.head = ClassificationHead(fusion_dim, n_classes, head_hidden, dropout)

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:
        one = image_emb.new_ones(image_emb.shape[0], 1)
        image_r = torch.einsum("bd,rdo->rbo", torch.cat([image_emb, one], dim=1), self.image_factor)
        clinical_r = torch.einsum("bd,rdo->rbo", torch.cat([clinical_emb, one], dim=1), self.clinical_factor)
        h = torch.einsum("r,rbo->bo", self.rank_weights[0], image_r * clinical_r) + self.bias
        return self.head(h)
