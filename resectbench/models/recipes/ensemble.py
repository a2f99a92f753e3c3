"""``expert-ensemble``: decision-level fusion of separately fitted experts (an image model and a clinical model).

The paper fuses CT and clinical variables inside one network. On small cohorts the joint head of such a
network can memorise the training cases through the clinical branch before the image branch has learned
anything (benchmarks/paper/README.md, "Neural image models through the cascade"). Fusing at the decision
level avoids that: each expert is fitted on its own, on the same training part of the fold, and only
their class probabilities are combined:

- ``combine="geometric"``: ``p ~ p_image^w * p_clinical^(1-w)`` renormalised (a product of experts: a
  class either expert rules out stays unlikely);
- ``combine="arithmetic"``: ``p = w p_image + (1-w) p_clinical``.

``image_weight`` (w) defaults to 0.5 and is tunable by the inner loop; nothing is fitted on the held-out
cases. Each expert is a registered model created with its own defaults plus the parameters given with
its prefix (``image.lr``, ``image.backbone.embedding``, ``clinical.C``); each gets the fit's seed and the
fit's training part, so with ``refit = false`` (the cpu profiles) an expert predicts exactly what the same
model predicts as its own leaderboard row. With ``refit = true`` a standalone row that needs no validation
set learns from the whole outer-training part, the ensemble's experts from its inner-training part (the
image expert stops early on the inner validation slice). Masks, Dice and contact angles are the image
expert's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import registry
from ...errors import RegistryError
from ...registry import component
from ...search_space import Categorical, Float
from ..base import FitContext, ResectabilityModel

COMBINES = ("geometric", "arithmetic")
ROLES = ("image", "clinical")
#: probabilities are clipped before the logarithm of the geometric mean (a 0 would veto a class for good)
EPS = 1e-6


def combine_probabilities(p_image: np.ndarray, p_clinical: np.ndarray, weight: float, how: str) -> np.ndarray:
    """Rows of class probabilities combined with weight ``weight`` on the image expert; rows sum to 1."""
    if how == "arithmetic":
        out = weight * p_image + (1.0 - weight) * p_clinical
    else:
        log = weight * np.log(np.clip(p_image, EPS, 1.0)) + (1.0 - weight) * np.log(np.clip(p_clinical, EPS, 1.0))
        out = np.exp(log - log.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


@component(
    "expert-ensemble",
    tags=("ensemble", "decision-level", "multimodal", "segments"),
    description="Decision-level fusion: image expert and clinical expert fitted apart, probabilities combined",
    search_space={"image_weight": Float(0.25, 0.75), "combine": Categorical(list(COMBINES))},
)
class ExpertEnsemble(ResectabilityModel):
    """An image expert (default ``swinunetr-image-only``) and a clinical expert (default ``clinical-sklearn``),
    each fitted on the training part, their probabilities combined (``combine``, ``image_weight``).
    ``image.<param>`` / ``clinical.<param>`` go to the expert of that role."""

    def __init__(
        self,
        image: str = "swinunetr-image-only",
        clinical: str = "clinical-sklearn",
        combine: str = "geometric",
        image_weight: float = 0.5,
        **expert_params: Any,
    ):
        super().__init__()
        if combine not in COMBINES:
            raise ValueError(f"expert-ensemble combine must be one of {', '.join(COMBINES)}, got {combine!r}")
        if not 0.0 <= float(image_weight) <= 1.0:
            raise ValueError(f"expert-ensemble image_weight must lie in [0, 1], got {image_weight}")
        params: dict[str, dict[str, Any]] = {role: {} for role in ROLES}
        for key, value in expert_params.items():
            role, dot, name = key.partition(".")
            if role not in ROLES or not dot or not name:
                raise RegistryError(
                    f"expert-ensemble got unknown parameter {key!r}; an expert's parameter takes its role as "
                    f"prefix ({', '.join(r + '.' for r in ROLES)}), e.g. 'image.lr' or 'clinical.C'"
                )
            params[role][name] = value
        self.combine, self.image_weight = combine, float(image_weight)
        names = {"image": image, "clinical": clinical}
        self._recipes = {role: (names[role], params[role]) for role in ROLES}  # for shared fits
        #: role -> recipe (unfitted until ``fit``); models/persist.py saves and loads each in its own folder
        self.experts: dict[str, ResectabilityModel] = {
            role: registry.models.create(names[role], **params[role]) for role in ROLES
        }
        # masks come from the image expert: "predicted" when it segments, never "oracle" unnoticed
        self.mask_source = getattr(self.experts["image"], "mask_source", "none")

    def trains(self) -> str:
        return " and ".join(t for t in (expert.trains() for expert in self.experts.values()) if t)

    def needs(self, profile=None):
        image, clinical = (self.experts[role].needs(profile) for role in ROLES)
        return image | clinical

    @property
    def uses_validation(self) -> bool:
        """The image expert's early stopping decides: the clinical expert ignores a validation set it does not use."""
        return any(getattr(expert, "uses_validation", True) for expert in self.experts.values())

    def fit(self, train, valid, ctx: FitContext) -> "ExpertEnsemble":
        from ..shared_fits import fit_shared

        for role in ROLES:
            # in a run that also has the expert's own row, its fitted network is loaded, not trained again
            self.experts[role] = fit_shared(*self._recipes[role], train, valid, ctx)
        self.history = list(getattr(self.experts["image"], "history", []) or [])
        return self

    def predict_proba(self, cohort, ctx: FitContext) -> np.ndarray:
        p_image = np.asarray(self.experts["image"].predict_proba(cohort, ctx), dtype=float)
        p_clinical = np.asarray(self.experts["clinical"].predict_proba(cohort, ctx), dtype=float)
        return combine_probabilities(p_image, p_clinical, self.image_weight, self.combine)

    def predict_masks(self, cohort, ctx: FitContext) -> dict:
        predict_masks = getattr(self.experts["image"], "predict_masks", None)
        return predict_masks(cohort, ctx) if predict_masks is not None else {}

    def mask_grid(self, cohort, ctx: FitContext) -> dict:
        mask_grid = getattr(self.experts["image"], "mask_grid", None)
        return mask_grid(cohort, ctx) if mask_grid is not None else {}

    def extra_outputs(self, cohort, ctx: FitContext, **options) -> dict[str, Any]:
        return self.experts["image"].extra_outputs(cohort, ctx, **options) or {}

    def n_parameters(self) -> int:
        return int(sum(expert.n_parameters() for expert in self.experts.values()))
