"""Compute profiles: one place that sizes data, models and the protocol for the hardware at hand.

``cpu`` (the default) is sized so ``resectbench run --model swinunetr-fusion`` on the embedded cohort
fits in 15 minutes on 2 CPU cores with the image branch learning: image models see a 1.5 mm window
around the tumour that a localiser trained on each fold predicted (:class:`Cascade`), for 10 epochs.
``cpu-cascade`` is the same view with 16 epochs, a 30-epoch localiser and lr 1e-3 (the settings its
boards were measured with); ``cpu-whole`` shows
the whole 96 mm view at 3 mm (cheap, used by tests; image models learn little there); ``paper``
follows the paper (160^3 at 1 mm, GPU). Values here are defaults: components and CLI options may
override any of them.
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
    # default learning rate of the neural recipes (their ``lr=None``, trial 0 of a study): a short
    # budget needs a larger step than the paper's hundreds of epochs
    lr: float = 1e-3
    # `resectbench run`'s processes computing units side by side, one thread each (protocol/local_jobs.py)
    jobs: int = 1
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


#: the cascade of the cpu profiles: the localiser sees the whole 96 mm view at 3 mm (32^3); the image
#: model a 32^3 window at 1.5 mm (vessels 2-3 voxels in radius) cut from a cached 64^3 context
CPU_CASCADE = Cascade(context_roi=(64, 64, 64), localiser_epochs=15)

PROFILES = {
    # the main job: a localiser (15 epochs) per outer fold, then Swin-UNETR (feature_size 12, window 4)
    # on the 32^3 window around its tumour for 10 epochs at lr 3e-3; 3 one-thread processes share the 5
    # folds (2 rounds), sized to finish in 15 minutes on 2 cores with cohort generation (figures:
    # benchmarks/results/main_job_board.md, protocol.json). Batch 2 gives twice the optimiser steps of 4 for the
    # same compute.
    "cpu": Profile(
        name="cpu",
        n_cases=159,
        volume_shape=(64, 64, 64),
        spacing_mm=(1.5, 1.5, 1.5),
        target_spacing_mm=(1.5, 1.5, 1.5),
        roi=(32, 32, 32),
        feature_size=12,
        window_size=4,
        max_epochs=10,
        patience=10,
        batch_size=2,
        trials=1,
        lr=3e-3,
        jobs=3,
        refit=False,
        cascade=CPU_CASCADE,
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
        lr=1e-3,
        refit=True,
    ),
}

# the same view with 16 window epochs and a 30-epoch localiser (benchmarks/paper/*cascade*.toml; their
# neural rows set lr 3e-3 themselves)
PROFILES["cpu-cascade"] = PROFILES["cpu"].with_(
    name="cpu-cascade",
    max_epochs=16,
    patience=6,
    lr=1e-3,
    jobs=1,
    cascade=Cascade(context_roi=(64, 64, 64)),
    cohort="cpu",
)

# the cpu cohort's whole 96 mm view at 3 mm (32^3), no cascade: Swin-UNETR trains at ~0.15 s per volume
# (~13 s per epoch), 8 epochs x 5 folds in ~10 minutes, but the SMA is one voxel wide and image models
# learn little (tumour Dice 0.00). The cheapest input: tests and a model's fit outside a protocol use it.
PROFILES["cpu-whole"] = PROFILES["cpu"].with_(
    name="cpu-whole",
    target_spacing_mm=(3.0, 3.0, 3.0),
    max_epochs=8,
    patience=4,
    lr=1e-3,
    jobs=1,
    cascade=None,
    cohort="cpu",
)


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        from .errors import ResectbenchError

        raise ResectbenchError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
