"""The registered neural recipes, as one table: each a :class:`~.compose.NeuralRecipe` preset.

A preset names its four components (backbone, clinical encoder, fusion, loss schedule), its balancing
strategy (``none`` unless it says otherwise), its tags,
description and search space, and its docstring. Every recipe takes the same keywords - the four
component names and ``balancing`` (so ``--backbone/--fusion/--clinical-encoder/--loss-schedule/--balancing``
can swap any part),
``lr``, the segmentation loss weights, ``batch_size`` (and ``feature_size`` for the Swin-UNETR
recipes) - and passes any other keyword to :class:`~.compose.NeuralRecipe`, after the preset's
own ``options`` (which a caller may override). A preset passes its keywords flat, so a group
object (``training=TrainingSettings(...)``, :mod:`.settings`) holding one of them is refused: a
recipe takes those flat.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from ...registry import component
from ...search_space import Categorical, Param
from .compose import TRAINING_SPACE, NeuralRecipe

BATCH_SIZES = Categorical([None, 8, 16])
#: the paper's space: lr, segmentation loss weights, Swin-UNETR width, batch size
SWIN_SPACE: dict[str, Param] = {
    **TRAINING_SPACE,
    "feature_size": Categorical([None, 24, 36, 48]),
    "batch_size": BATCH_SIZES,
}
SEGMENTING_SPACE: dict[str, Param] = {**TRAINING_SPACE, "batch_size": BATCH_SIZES}
#: no segmentation loss: no segmentation weights to tune
CLASSIFYING_SPACE: dict[str, Param] = {"lr": TRAINING_SPACE["lr"], "batch_size": BATCH_SIZES}


@dataclass(frozen=True)
class Preset:
    name: str
    components: tuple[str | None, str, str, str]  # backbone, clinical encoder, fusion, loss schedule
    tags: tuple[str, ...]
    description: str
    search_space: dict[str, Param]
    takes_feature_size: bool
    doc: str
    options: tuple[tuple[str, object], ...] = ()  # NeuralRecipe keywords the preset sets (callers may override)
    balancing: str = "none"  # how the image and clinical branches are trained together (resectbench.balancing)


PRESETS: tuple[Preset, ...] = (
    Preset(
        name="swinunetr-fusion",
        components=("swin-unetr", "mlp", "late", "dice-step"),
        tags=("neural", "multimodal", "segments", "paper"),
        description="The paper's model: Swin-UNETR (+ auxiliary segmentation) + clinical MLP, trained staged, "
        "a head per modality (late fusion), dice-step schedule",
        search_space=SWIN_SPACE,
        options=(
            ("small_roi_norm", "group"),
            ("backbone.embedding", "contact"),
            ("fusion.dropout", 0.5),
            ("clinical.dropout", 0.3),
        ),
        balancing="staged",
        takes_feature_size=True,
        doc="""The paper's multitask fusion model (Ochs et al., MIDL 2026).

        Swin-UNETR image backbone with its 16-class segmentation decoder as auxiliary task, the
        64 -> 32 clinical MLP and the adaptive ``dice-step`` loss schedule (tumor Dice 0.1 / 0.5 ->
        w_seg 3 / 1.5 / 1, w_cls = 1 / w_seg). Our defaults where the paper's joint training fails on
        ~130 cases (docs/models.md, "Balancing the modalities"): ``staged`` balancing (the image branch
        trained first, the clinical branch withheld; then each modality's head fitted on the frozen
        embeddings and stopped on its own), ``late`` fusion (a head per modality, logits averaged:
        the paper concatenates 256 + 32 into one MLP head), the tumour-vessel contact read off the
        segmentation as image embedding (``backbone.embedding="contact"``; the paper pools the
        bottleneck), dropout 0.5 in the heads and 0.3 in the clinical MLP. The paper's joint model
        is ``--fusion concat --balancing none --param backbone.embedding=pooled``.
        Search space as in the paper: lr {1e-3, 5e-4, 1e-4} (+ None, the profile's), feature_size {24, 36, 48} (MONAI needs
        multiples of 12, so the paper's 32 becomes 36), batch size {8, 16}, segmentation loss
        weights a, b, c in [0.2, 0.6]. ``None`` means "the profile's value" (cpu: lr 3e-3,
        feature_size 12, window 4, a 32^3 window at 1.5 mm around the localised tumour, batch 2,
        10 epochs; paper: lr 1e-3, 48, window 7, 160^3 at 1 mm, 16).

        Below 64^3 (the cpu profiles) the decoder uses group normalisation: instance norm cannot train
        there and batch norm at the 1-voxel bottleneck would couple the few cases of a batch.""",
    ),
    Preset(
        name="swinunetr-image-only",
        components=("swin-unetr", "none", "image-only", "dice-step"),
        tags=("neural", "image-only", "segments", "ablation"),
        description="Ablation: the paper's Swin-UNETR multitask model without clinical variables (CT-only)",
        search_space=SWIN_SPACE,
        options=(("small_roi_norm", "group"), ("backbone.embedding", "contact"), ("head_refit_steps", 300)),
        takes_feature_size=True,
        doc="""The paper's "CT-only" ablation: ``swinunetr-fusion`` without the clinical branch.

        Same backbone, auxiliary segmentation, ``dice-step`` schedule and contact embedding; the clinical
        encoder is ``none`` and the ``image-only`` fusion classifies the image embedding alone, its head
        refitted on the frozen embeddings after training (``head_refit_steps=300``), as the fusion's
        image head is.

        Below 64^3 (the cpu profile) the decoder uses group normalisation: instance norm cannot train
        there and batch norm at the 1-voxel bottleneck would couple the few cases of a batch.""",
    ),
    Preset(
        name="tat",
        components=("tat", "mlp", "concat", "dice-step"),
        tags=("neural", "multimodal", "segments", "geometry", "paper-baseline"),
        description="Adapted TAT baseline: texture + tumor-vessel structure/distance from its own predicted masks, + clinical MLP",
        search_space=SEGMENTING_SPACE,
        takes_feature_size=False,
        doc="""The paper's adapted TAT baseline (after Dong et al. 2023) with clinical variables.

        The ``tat`` backbone (texture SegResNet + segmentation head, soft tumor-vessel distances for
        SMA, SMV, portal vein and celiac trunk, patches at the closest tumor-vessel points) is
        fused with the clinical MLP by concatenation. Its geometry is computed from masks the
        network itself predicts, so inference needs no mask (``mask_source = "predicted"``). The
        segmentation head is trained with the same ``dice-step`` schedule as the paper's model
        (our choice: the paper does not say how TAT's segmentation was weighted).""",
    ),
    Preset(
        name="cnn3d-fusion",
        components=("cnn3d", "mlp", "concat", "dice-step"),
        tags=("neural", "multimodal", "segments"),
        description="3D CNN (MONAI SegResNet) + clinical MLP, concatenation fusion, dice-step schedule",
        search_space=SEGMENTING_SPACE,
        takes_feature_size=False,
        doc="""A convolutional backbone (MONAI SegResNet) in the paper's multitask setup.

        Everything but the backbone as in ``swinunetr-fusion``. The CNN is the cheapest 3D
        backbone on CPU, so it shows how much of the fusion model's result needs a transformer.""",
    ),
    Preset(
        name="vit3d-fusion",
        components=("vit3d", "mlp", "concat", "dice-step"),
        tags=("neural", "multimodal", "segments"),
        description="3D ViT (UNETR encoder/decoder) + clinical MLP, concatenation fusion, dice-step schedule",
        search_space=SEGMENTING_SPACE,
        takes_feature_size=False,
        doc="""A plain 3D ViT backbone (MONAI ViT with the UNETR decoder) in the paper's multitask setup.

        Everything but the backbone as in ``swinunetr-fusion``: auxiliary segmentation through the
        UNETR decoder, clinical MLP, concatenation, ``dice-step``. Compares a global-attention
        transformer with Swin's windowed one.""",
    ),
    Preset(
        name="timm2.5d-fusion",
        components=("timm-2.5d", "mlp", "concat", "cls-only"),
        tags=("neural", "multimodal", "2.5d"),
        description="timm 2D model on axial slices with attention pooling (2.5D) + clinical MLP, concatenation, classification only",
        search_space=CLASSIFYING_SPACE,
        takes_feature_size=False,
        doc="""A 2.5D model: a timm 2D network on axial slices, attention-pooled, + clinical MLP.

        The ``timm-2.5d`` backbone has no segmentation head, so the schedule is ``cls-only``
        (classification loss alone); the segmentation weights are not tuned.""",
    ),
    Preset(
        name="clinical-only",
        components=(None, "mlp", "clinical-only", "cls-only"),
        tags=("neural", "clinical-only", "ablation"),
        description="Ablation: neural tabular-only model (clinical MLP + MLP head), no image",
        search_space=CLASSIFYING_SPACE,
        takes_feature_size=False,
        doc="""The paper's "tabular-only" ablation as a network: clinical MLP + MLP head, no image branch.

        Trained by the same engine (AdamW, cosine schedule, early stopping on inner-validation
        macro-F1, class weights (1, 2, 2.5)); no volumes are loaded. The scikit-learn tabular
        baselines live in :mod:`resectbench.baselines`.""",
    ),
)


#: the closing paragraph of every recipe's docstring
_OPTIONS_DOC = """

        Any other :class:`~resectbench.models.recipes.compose.NeuralRecipe` keyword (``roi``,
        ``max_epochs``, ``class_weights``, ``fusion.dropout`` ...) may be passed through ``options``."""


def _factory(preset: Preset):
    """The registered factory of ``preset``: explicit keywords (the registry reads its signature)."""
    backbone, clinical_encoder, fusion, loss_schedule = preset.components
    balancing = preset.balancing

    def make(
        backbone=backbone,
        clinical_encoder=clinical_encoder,
        fusion=fusion,
        loss_schedule=loss_schedule,
        balancing=balancing,
        lr=None,
        feature_size=None,
        seg_ce=0.4,
        seg_dice=0.4,
        seg_focal=0.2,
        batch_size=None,
        **options,
    ) -> NeuralRecipe:
        return NeuralRecipe(
            backbone,
            clinical_encoder,
            fusion,
            loss_schedule,
            balancing,
            lr=lr,
            feature_size=feature_size,
            seg_ce=seg_ce,
            seg_dice=seg_dice,
            seg_focal=seg_focal,
            batch_size=batch_size,
            **{**dict(preset.options), **options},
        )

    P = inspect.Parameter
    keywords = [
        P("backbone", P.POSITIONAL_OR_KEYWORD, default=backbone, annotation="str | None"),
        P("clinical_encoder", P.POSITIONAL_OR_KEYWORD, default=clinical_encoder, annotation="str"),
        P("fusion", P.POSITIONAL_OR_KEYWORD, default=fusion, annotation="str"),
        P("loss_schedule", P.POSITIONAL_OR_KEYWORD, default=loss_schedule, annotation="str"),
        P("balancing", P.POSITIONAL_OR_KEYWORD, default=balancing, annotation="str"),
        P("lr", P.POSITIONAL_OR_KEYWORD, default=None, annotation="float | None"),
    ]
    if preset.takes_feature_size:
        keywords.append(P("feature_size", P.POSITIONAL_OR_KEYWORD, default=None, annotation="int | None"))
    keywords += [
        P(k, P.POSITIONAL_OR_KEYWORD, default=v, annotation="float")
        for k, v in (("seg_ce", 0.4), ("seg_dice", 0.4), ("seg_focal", 0.2))
    ]
    keywords += [
        P("batch_size", P.POSITIONAL_OR_KEYWORD, default=None, annotation="int | None"),
        P("options", P.VAR_KEYWORD),
    ]
    make.__signature__ = inspect.Signature(keywords, return_annotation="NeuralRecipe")
    make.__name__ = make.__qualname__ = preset.name.replace("-", "_").replace(".", "")
    make.__doc__ = preset.doc + _OPTIONS_DOC
    return component(
        preset.name, tags=preset.tags, description=preset.description, search_space=dict(preset.search_space)
    )(make)


#: the factories; also module attributes, since the registry registers a module's marked callables
RECIPES = {preset.name: _factory(preset) for preset in PRESETS}
globals().update({factory.__name__: factory for factory in RECIPES.values()})
