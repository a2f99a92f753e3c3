"""Compute profiles: one place that sizes data, models and the protocol for the hardware at hand.

``cpu`` is sized so ``resectbench run --model swinunetr-fusion`` on the embedded cohort fits in
about 15 minutes on 2 CPU cores; ``cpu-cascade`` shows image models the same cohort through a
localiser and a fine window around the tumour (:class:`Cascade`); ``paper`` follows the paper (160^3 at 1 mm, GPU). Values here are
defaults: components and CLI options may override any of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Cascade:
    """Two-stage input (after nnU-Net's cascade): a small segmenter trained on the training cases finds
    the tumour on a coarse grid; the image model sees a fine window (the profile's ``roi`` at its
    ``target_spacing_mm``) centred there, cut from a larger cached ``context_roi`` on the fine grid.
    Training windows are centred on the true tumour and shifted by up to ``jitter_vox`` voxels per axis
    (the localiser's typical error); validation and test windows on the localiser's prediction."""

    context_roi: tuple[int, int, int]
    localiser_spacing_mm: tuple[float, float, float] = (3.0, 3.0, 3.0)
    localiser_roi: tuple[int, int, int] = (32, 32, 32)
    localiser_epochs: int = 30
    jitter_vox: int = 4


@dataclass(frozen=True)
class Profile:
    name: str
    # synthetic cohort
    n_cases: int
    volume_shape: tuple[int, int, int]  # voxels of a generated phantom
    spacing_mm: tuple[float, float, float]  # nominal spacing of a generated phantom (x, y, z)
    # model input
    target_spacing_mm: tuple[float, float, float]
    roi: tuple[int, int, int]  # crop/pad size fed to image models
    feature_size: int  # Swin-UNETR width
    window_size: int  # Swin attention window (7: MONAI/paper; 4 tiles a 32^3 ROI)
    # training
    max_epochs: int
    patience: int
    batch_size: int
    trials: int  # Optuna trials per outer fold
    # protocol: refit the best configuration after tuning (True), or score the best trial's
    # already-fitted model (False: one fit fewer per outer fold; see docs/protocol.md)
    refit: bool = True
    # model input: the scan's centre (None) or a window around a predicted tumour centre
    cascade: Cascade | None = None
    # the embedded synthetic cohort is that of this profile ("": its own)
    cohort: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> "Profile":
        return replace(self, **changes)


PROFILES = {
    # model input: the phantoms' whole 96 mm field of view at 3 mm (32^3). Swin-UNETR (feature_size 12)
    # trains at ~0.15 s per volume there on 2 cores vs ~3.7 s at 64^3 (see docs/models.md, benchmarks/models.py).
    # window 4 (not 7) tiles the 16^3 first stage exactly: ~13 s per epoch of ~100 volumes on 2 cores, so
    # 8 epochs x 5 folds fit ~10 minutes with start-up (benchmarks/protocol.py); batch 2 gives twice the
    # optimiser steps for the same compute (the segmenter measured the same). At 3 mm the SMA is one
    # voxel wide: image models learn little here (see cpu-cascade).
    "cpu": Profile(
        name="cpu",
        n_cases=159,
        volume_shape=(64, 64, 64),
        spacing_mm=(1.5, 1.5, 1.5),
        target_spacing_mm=(3.0, 3.0, 3.0),
        roi=(32, 32, 32),
        feature_size=12,
        window_size=4,
        max_epochs=8,
        patience=4,
        batch_size=2,
        trials=1,
        refit=False,
    ),
    "paper": Profile(
        name="paper",
        n_cases=159,
        volume_shape=(160, 160, 160),
        spacing_mm=(1.0, 1.0, 1.0),
        target_spacing_mm=(1.0, 1.0, 1.0),
        roi=(160, 160, 160),
        feature_size=48,
        window_size=7,
        max_epochs=300,
        patience=20,
        batch_size=16,
        trials=20,
        refit=True,
    ),
}

# the cpu cohort seen through the cascade (models/cascade.py): a 32^3 window at 1.5 mm around the tumour
# that a localiser (32^3 at 3 mm over the whole 96 mm view) predicted; vessels 2-3 voxels in radius.
# Costs a localiser (~2 min) per outer fold and twice the epochs (benchmarks/cascade.py).
PROFILES["cpu-cascade"] = PROFILES["cpu"].with_(
    name="cpu-cascade",
    target_spacing_mm=(1.5, 1.5, 1.5),
    max_epochs=16,
    patience=6,
    cascade=Cascade(context_roi=(64, 64, 64)),
    cohort="cpu",
)


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        from .errors import ResectbenchError

        raise ResectbenchError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
