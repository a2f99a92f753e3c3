"""``NeuralRecipe``'s hyper-parameters in four groups, each a frozen dataclass that checks its own values.

- ``training=`` :class:`TrainingSettings`: lr, weight_decay, batch_size, max_epochs, patience,
  grad_accum, grad_clip, amp, channels_last, backbone_lr_scale, head_refit_steps
- ``loss=`` :class:`LossSettings`: seg_ce, seg_dice, seg_focal, focal_gamma, class_weights
- ``inputs=`` :class:`InputSettings`: roi, spacing, patch_size, augment, hu_clip
- ``architecture=`` :class:`ArchitectureSettings`: feature_size, embed_dim, small_roi_norm

The field names are the recipe's flat keywords (``NeuralRecipe(lr=1e-3, seg_ce=0.5)``), which
search spaces, ``params`` of experiment files, ``--param`` and the registered recipes use; a group
object (``NeuralRecipe(training=TrainingSettings(lr=1e-3))``) is the other way to give the same
values. ``None`` means "the profile's value" at fit time.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any

PAPER_CLASS_WEIGHTS = (1.0, 2.0, 2.5)


def _tuple_or_none(value) -> tuple | None:
    return tuple(value) if value else None


@dataclass(frozen=True)
class TrainingSettings:
    """How the engine optimises (``resectbench.models.engine.TrainConfig``), and the optional head refit."""

    lr: float | None = None  # None: the profile's (profiles.Profile.lr)
    weight_decay: float = 1e-5
    batch_size: int | None = None
    max_epochs: int | None = None
    patience: int | None = None
    grad_accum: int = 1
    grad_clip: float | None = 1.0
    amp: str = "auto"  # auto = bf16 on CUDA, off on CPU; bf16, fp16, off
    channels_last: bool = False
    backbone_lr_scale: float = 1.0  # the backbone's lr relative to ``lr``
    head_refit_steps: int = 0  # > 0: refit the head on the frozen backbone's embeddings (engine/head_refit.py)

    def __post_init__(self):
        if self.head_refit_steps < 0:
            raise ValueError(f"head_refit_steps must be >= 0, got {self.head_refit_steps}")
        object.__setattr__(self, "head_refit_steps", int(self.head_refit_steps))


@dataclass(frozen=True)
class LossSettings:
    """The auxiliary segmentation loss's term weights and the classification loss's class weights."""

    seg_ce: float = 0.4
    seg_dice: float = 0.4
    seg_focal: float = 0.2
    focal_gamma: float = 2.0
    class_weights: tuple[float, ...] | str = PAPER_CLASS_WEIGHTS  # or "inverse-frequency", "none"

    def __post_init__(self):
        for name in ("seg_ce", "seg_dice", "seg_focal"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not isinstance(self.class_weights, str):
            object.__setattr__(self, "class_weights", tuple(self.class_weights))


@dataclass(frozen=True)
class InputSettings:
    """The volumes the network sees: grid, crop and intensity window, and training augmentation."""

    roi: tuple[int, int, int] | None = None
    spacing: tuple[float, float, float] | None = None
    patch_size: tuple[int, int, int] | None = None  # train on random crops of this size, infer by sliding window
    augment: bool = True
    hu_clip: tuple[float, float] | None = None

    def __post_init__(self):
        for name in ("roi", "spacing", "patch_size", "hu_clip"):
            object.__setattr__(self, name, _tuple_or_none(getattr(self, name)))


@dataclass(frozen=True)
class ArchitectureSettings:
    """Sizes and normalisation the recipe gives the backbone (only those its factory takes)."""

    feature_size: int | None = None
    embed_dim: int = 256
    small_roi_norm: str = "batch"  # the backbone's ``norm_name`` below compose.INSTANCE_NORM_MIN_ROI


#: group keyword of NeuralRecipe -> its settings class (in the order the groups are checked)
GROUPS: dict[str, type] = {
    "architecture": ArchitectureSettings,
    "loss": LossSettings,
    "training": TrainingSettings,
    "inputs": InputSettings,
}
#: flat keyword -> its group keyword
FLAT_KEYWORDS: dict[str, str] = {f.name: group for group, cls in GROUPS.items() for f in dataclasses.fields(cls)}


def group_settings(flat: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Group keyword -> settings object: the one ``given`` for it, else one built from ``flat`` (flat
    keyword -> value; those absent keep the field's default). A group given together with any of its
    flat keywords, or given as something other than its class, raises ``TypeError``."""
    out = {}
    for group, cls in GROUPS.items():
        own = {k: v for k, v in flat.items() if FLAT_KEYWORDS[k] == group}
        settings = given.get(group)
        if settings is None:
            out[group] = cls(**own)
            continue
        if not isinstance(settings, cls):
            raise TypeError(f"NeuralRecipe: {group}= takes a {cls.__name__}, got {settings!r}")
        if own:
            raise TypeError(
                f"NeuralRecipe got {group}= together with {', '.join(own)}, which {cls.__name__} holds: give "
                f"each setting once, flat or in the group (the registered recipes pass their own keywords flat)"
            )
        out[group] = settings
    return out


def with_flat_keywords(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` (ending in ``**kwargs``) with every flat keyword listed before the ``**kwargs``,
    keyword-only, with its field's default and annotation."""
    *params, var_keyword = signature.parameters.values()
    flat = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
        for cls in GROUPS.values()
        for f in dataclasses.fields(cls)
    ]
    return signature.replace(parameters=[*params, *flat, var_keyword])
