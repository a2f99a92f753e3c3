"""``tat``: Adapted TAT baseline: texture + tumor-vessel structure/distance from its own predicted masks, + clinical MLP."""

from __future__ import annotations

from ...registry import component
from ...search_space import Categorical
from .compose import DEFAULT_LR, TRAINING_SPACE, NeuralRecipe


@component(
    "tat",
    tags=("neural", "multimodal", "segments", "geometry", "paper-baseline"),
    description="Adapted TAT baseline: texture + tumor-vessel structure/distance from its own predicted masks, + clinical MLP",
    search_space={**TRAINING_SPACE, "batch_size": Categorical([None, 8, 16])},
)
def tat(
    backbone: str | None = "tat",
    clinical_encoder: str = "mlp",
    fusion: str = "concat",
    loss_schedule: str = "dice-step",
    lr: float = DEFAULT_LR,
    seg_ce: float = 0.4,
    seg_dice: float = 0.4,
    seg_focal: float = 0.2,
    batch_size: int | None = None,
    **options,
) -> NeuralRecipe:
    """The paper's adapted TAT baseline (after Dong et al. 2023) with clinical variables.

    The ``tat`` backbone (texture SegResNet + segmentation head, soft tumor-vessel distances for
    SMA, SMV, portal vein and celiac trunk, patches at the closest tumor-vessel points) is
    fused with the clinical MLP by concatenation. Its geometry is computed from masks the
    network itself predicts, so inference needs no mask (``mask_source = "predicted"``). The
    segmentation head is trained with the same ``dice-step`` schedule as the paper's model
    (our choice: the paper does not say how TAT's segmentation was weighted).

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
