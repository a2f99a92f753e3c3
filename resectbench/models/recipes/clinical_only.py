"""``clinical-only``: Ablation: neural tabular-only model (clinical MLP + MLP head), no image."""

from __future__ import annotations

from ...registry import component
from ...search_space import Categorical
from .compose import DEFAULT_LR, TRAINING_SPACE, NeuralRecipe


@component(
    "clinical-only",
    tags=("neural", "clinical-only", "ablation"),
    description="Ablation: neural tabular-only model (clinical MLP + MLP head), no image",
    search_space={"lr": TRAINING_SPACE["lr"], "batch_size": Categorical([None, 8, 16])},
)
def clinical_only(
    backbone: str | None = None,
    clinical_encoder: str = "mlp",
    fusion: str = "clinical-only",
    loss_schedule: str = "cls-only",
    lr: float = DEFAULT_LR,
    seg_ce: float = 0.4,
    seg_dice: float = 0.4,
    seg_focal: float = 0.2,
    batch_size: int | None = None,
    **options,
) -> NeuralRecipe:
    """The paper's "tabular-only" ablation as a network: clinical MLP + MLP head, no image branch.

    Trained by the same engine (AdamW, cosine schedule, early stopping on inner-validation
    macro-F1, class weights (1, 2, 2.5)); no volumes are loaded. The scikit-learn tabular
    baselines live in :mod:`resectbench.baselines`.

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
