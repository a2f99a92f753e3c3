"""``cnn3d-fusion``: 3D CNN (MONAI SegResNet) + clinical MLP, concatenation fusion, dice-step schedule."""

from __future__ import annotations

from ...registry import component
from ...search_space import Categorical
from .compose import DEFAULT_LR, TRAINING_SPACE, NeuralRecipe


@component(
    "cnn3d-fusion",
    tags=("neural", "multimodal", "segments"),
    description="3D CNN (MONAI SegResNet) + clinical MLP, concatenation fusion, dice-step schedule",
    search_space={**TRAINING_SPACE, "batch_size": Categorical([None, 8, 16])},
)
def cnn3d_fusion(
    backbone: str | None = "cnn3d",
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
    """A convolutional backbone (MONAI SegResNet) in the paper's multitask setup.

    Everything but the backbone as in ``swinunetr-fusion``. The CNN is the cheapest 3D
    backbone on CPU, so it shows how much of the fusion model's result needs a transformer.

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
