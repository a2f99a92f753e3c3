"""Losses: the auxiliary segmentation loss, the class-weighted classification loss, Dice helpers.

Loss-weight schedules (registry ``loss_schedules``) live in :mod:`resectbench.losses.schedules`.
"""

from .classification import PAPER_CLASS_WEIGHTS, classification_loss, inverse_frequency_weights
from .dice import class_dice, tumor_dice
from .segmentation import SEARCH_SPACE as SEGMENTATION_SEARCH_SPACE, SegmentationLoss

__all__ = [
    "PAPER_CLASS_WEIGHTS",
    "SEGMENTATION_SEARCH_SPACE",
    "SegmentationLoss",
    "class_dice",
    "classification_loss",
    "inverse_frequency_weights",
    "tumor_dice",
]
