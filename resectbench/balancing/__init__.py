"""Balancing strategies (registry ``balancing``): how the image and clinical branches of a multimodal
network are trained together - the field's remedies for a fast modality that starves a slow one. Each is
a set of hooks into the one training loop (:mod:`.base`); ``none`` is the paper's joint training."""

from .aux_heads import AuxiliaryHeads
from .base import BalancingStrategy, unimodal_logits
from .gradient_blending import GradientBlending
from .joint import JointTraining
from .modality_dropout import ModalityDropout
from .ogm_ge import OGMGE
from .staged import StagedTraining

__all__ = [
    "AuxiliaryHeads",
    "BalancingStrategy",
    "GradientBlending",
    "JointTraining",
    "ModalityDropout",
    "OGMGE",
    "StagedTraining",
    "unimodal_logits",
]
