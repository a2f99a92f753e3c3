"""``vit3d-fusion``: 3D ViT (UNETR encoder/decoder) + clinical MLP, concatenation fusion, dice-step schedule."""

from __future__ import annotations

from ...registry import component
from ...search_space import Categorical
from .compose import DEFAULT_LR, TRAINING_SPACE, NeuralRecipe


@component(
    "vit3d-fusion",
    tags=("neural", "multimodal", "segments"),
    description="3D ViT (UNETR encoder/decoder) + clinical MLP, concatenation fusion, dice-step schedule",
    search_space={**TRAINING_SPACE, "batch_size": Categorical([None, 8, 16])},
)
def vit3d_fusion(
    backbone: str | None = "vit3d",
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
    """A plain 3D ViT backbone (MONAI ViT with the UNETR decoder) in the paper's multitask setup.

    Everything but the backbone as in ``swinunetr-fusion``: auxiliary segmentation through the
    UNETR decoder, clinical MLP, concatenation, ``dice-step``. Compares a global-attention
    transformer with Swin's windowed one.

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
