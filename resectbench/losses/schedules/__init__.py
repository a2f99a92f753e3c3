"""Loss-weight schedules (registry ``loss_schedules``): how the segmentation and classification
losses are weighted, batch by batch and epoch by epoch. See :mod:`.base` for the interface."""

from .base import LossSchedule
from .cls_only import ClsOnlySchedule
from .dice_smooth import DiceSmoothSchedule
from .dice_step import DiceStepSchedule
from .fixed import FixedSchedule
from .uncertainty import UncertaintySchedule

__all__ = [
    "ClsOnlySchedule",
    "DiceSmoothSchedule",
    "DiceStepSchedule",
    "FixedSchedule",
    "LossSchedule",
    "UncertaintySchedule",
]
