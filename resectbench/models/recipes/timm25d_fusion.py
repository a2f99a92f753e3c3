"""``timm2.5d-fusion``: timm 2D model on axial slices with attention pooling (2.5D) + clinical MLP, concatenation, classification only."""

from __future__ import annotations

from ...registry import component
from ...search_space import Categorical
from .compose import DEFAULT_LR, TRAINING_SPACE, NeuralRecipe


@component(
    "timm2.5d-fusion",
    tags=("neural", "multimodal", "2.5d"),
    description="timm 2D model on axial slices with attention pooling (2.5D) + clinical MLP, concatenation, classification only",
    search_space={"lr": TRAINING_SPACE["lr"], "batch_size": Categorical([None, 8, 16])},
)
def timm25d_fusion(
    backbone: str | None = "timm-2.5d",
    clinical_encoder: str = "mlp",
    fusion: str = "concat",
    loss_schedule: str = "cls-only",
    lr: float = DEFAULT_LR,
    seg_ce: float = 0.4,
    seg_dice: float = 0.4,
    seg_focal: float = 0.2,
    batch_size: int | None = None,
    **options,
) -> NeuralRecipe:
    """A 2.5D model: a timm 2D network on axial slices, attention-pooled, + clinical MLP.

    The ``timm-2.5d`` backbone has no segmentation head, so the schedule is ``cls-only``
    (classification loss alone); the segmentation weights are not tuned.

    Any other :class:`~resectbench.models.recipes.compose.NeuralRecipe` keyword (``roi``,
    ``max_epochs``, ``class_weights``, ``fusion.dropout`` ...) may be passed through ``options``.
    """
    return NeuralRecipe(
        backbone,
        clinical_encoder,
        fusion,
        loss_schedule,
        lr=lr,
        seg_ce=seg_ce,
        seg_dice=seg_dice,
        seg_focal=seg_focal,
        batch_size=batch_size,
        **options,
    )
