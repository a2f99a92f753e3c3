"""``swinunetr-image-only``: Ablation: the paper's Swin-UNETR multitask model without clinical variables (CT-only)."""

from __future__ import annotations

from ...registry import component
from ...search_space import Categorical
from .compose import DEFAULT_LR, TRAINING_SPACE, NeuralRecipe


@component(
    "swinunetr-image-only",
    tags=("neural", "image-only", "segments", "ablation"),
    description="Ablation: the paper's Swin-UNETR multitask model without clinical variables (CT-only)",
    search_space={
        **TRAINING_SPACE,
        "feature_size": Categorical([None, 24, 36, 48]),
        "batch_size": Categorical([None, 8, 16]),
    },
)
def swinunetr_image_only(
    backbone: str | None = "swin-unetr",
    clinical_encoder: str = "none",
    fusion: str = "image-only",
    loss_schedule: str = "dice-step",
    lr: float = DEFAULT_LR,
    feature_size: int | None = None,
    seg_ce: float = 0.4,
    seg_dice: float = 0.4,
    seg_focal: float = 0.2,
    batch_size: int | None = None,
    **options,
) -> NeuralRecipe:
    """The paper's "CT-only" ablation: ``swinunetr-fusion`` without the clinical branch.

    Same backbone, auxiliary segmentation and ``dice-step`` schedule; the clinical encoder is
    ``none`` and the ``image-only`` fusion classifies the 256-d image embedding alone.

    Below 64^3 (the cpu profile) the decoder uses group normalisation: instance norm cannot train
    there and batch norm at the 1-voxel bottleneck would couple the few cases of a batch.

    Any other :class:`~resectbench.models.recipes.compose.NeuralRecipe` keyword (``roi``,
    ``max_epochs``, ``class_weights``, ``fusion.dropout`` ...) may be passed through ``options``.
    """
    return NeuralRecipe(
        backbone,
        clinical_encoder,
        fusion,
        loss_schedule,
        lr=lr,
        feature_size=feature_size,
        seg_ce=seg_ce,
        seg_dice=seg_dice,
        seg_focal=seg_focal,
        batch_size=batch_size,
        **{"small_roi_norm": "group", **options},
    )
