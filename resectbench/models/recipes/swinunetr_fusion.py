"""``swinunetr-fusion``: The paper's model: Swin-UNETR (+ auxiliary segmentation) + clinical MLP, concatenation fusion, dice-step schedule."""

from __future__ import annotations

from ...registry import component
from ...search_space import Categorical
from .compose import DEFAULT_LR, TRAINING_SPACE, NeuralRecipe


@component(
    "swinunetr-fusion",
    tags=("neural", "multimodal", "segments", "paper"),
    description="The paper's model: Swin-UNETR (+ auxiliary segmentation) + clinical MLP, concatenation fusion, dice-step schedule",
    search_space={
        **TRAINING_SPACE,
        "feature_size": Categorical([None, 24, 36, 48]),
        "batch_size": Categorical([None, 8, 16]),
    },
)
def swinunetr_fusion(
    backbone: str | None = "swin-unetr",
    clinical_encoder: str = "mlp",
    fusion: str = "concat",
    loss_schedule: str = "dice-step",
    lr: float = DEFAULT_LR,
    feature_size: int | None = None,
    seg_ce: float = 0.4,
    seg_dice: float = 0.4,
    seg_focal: float = 0.2,
    batch_size: int | None = None,
    **options,
) -> NeuralRecipe:
    """The paper's multitask fusion model (Ochs et al., MIDL 2026).

    Swin-UNETR image backbone with its 16-class segmentation decoder as auxiliary task, the
    64 -> 32 clinical MLP, concatenation fusion (256 + 32) into an MLP head, and the adaptive
    ``dice-step`` loss schedule (tumor Dice 0.1 / 0.5 -> w_seg 3 / 1.5 / 1, w_cls = 1 / w_seg).
    Search space as in the paper: lr {1e-3, 5e-4, 1e-4}, feature_size {24, 36, 48} (MONAI needs
    multiples of 12, so the paper's 32 becomes 36), batch size {8, 16}, segmentation loss
    weights a, b, c in [0.2, 0.6]. ``None`` means "the profile's value" (cpu: feature_size 12,
    window 4, 32^3 at 3 mm, batch 2, 8 epochs; paper: 48, window 7, 160^3 at 1 mm, 16).

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
