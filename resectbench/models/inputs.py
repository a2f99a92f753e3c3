"""``ModelInput``: what a neural recipe's network is given of a cohort's cases, as one object.

A :class:`~resectbench.models.recipes.compose.NeuralRecipe` sees each case as preprocessed clinical
values and, with an image branch, a cached volume on the profile's grid. Under a profile with a
cascade (:mod:`.cascade`) that volume is a window cut from a finer context around a centre: the
training mask's tumour for training cases, the localiser's guess from the CT alone for every other
case. Which centre a case gets, which masks may be read (never a test case's as an input) and where
a prediction therefore lies in the world are decided here, in one place, so that training,
validation, inference, scoring and a reloaded model all cut the same windows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import FitContext
from .cascade import Localiser, SmallUNet, cut_windows, train_localiser, training_centres, true_centres
from .engine.batches import CaseArrays
from .engine.checkpoint import snapshot
from .engine.precision import resolve_device


class ModelInput:
    """The input pipeline of one fitted network: clinical preprocessing, volume cache and optional localiser.

    ``roi`` and ``spacing`` are the network's window (voxels) and grid (mm); ``cascade`` the profile's
    :class:`~resectbench.profiles.Cascade` or None; ``images=False`` for a network without an image
    branch (clinical values only). :meth:`fit` (on the training cases) or :meth:`load_state` makes it
    ready; the localiser's centres are cached per cohort fingerprint and case.
    """

    def __init__(self, roi, spacing, *, cascade=None, hu_clip=None, images: bool = True):
        self.roi, self.cascade = roi, cascade
        self.image = _image_config(roi, spacing, cascade, hu_clip) if images else None
        self.preprocessor = None  # the clinical preprocessing, fitted on the training cases only
        self.localiser: Localiser | None = None  # the cascade's stage 1
        self._centres: dict[tuple, tuple] = {}  # (cohort fingerprint, case id) -> (centre mm, source)

    def fit(self, train, ctx: FitContext) -> "ModelInput":
        """The clinical preprocessing fitted on ``train`` (no leakage into validation or test) and, with a
        cascade, the localiser trained on its masks (``models/cascade.py``, cached per training set)."""
        from ..data.clinical import ClinicalPreprocessor

        self.preprocessor = ClinicalPreprocessor().fit(train.clinical.loc[list(train.case_ids)], train.clinical_schema)
        if self.cascade is not None:
            self.localiser, self._centres = train_localiser(train, ctx, self.cascade), {}
        return self

    def store(self, ctx: FitContext):
        """The volume cache shared by every fold and trial (``ctx.cache_dir``; None = the user cache)."""
        from ..data.images import VolumeStore

        return VolumeStore(ctx.cache_dir, self.image)

    # -- the network's arrays, by what may be read of the cases ----------------------------------------
    def training(self, train, ctx: FitContext) -> CaseArrays:
        """Labels and masks of the training cases. With a cascade each volume is the window around its
        mask's tumour (the localiser's guess where the mask shows none), ``jitter_vox`` wider on each side:
        the training transform cuts the model's ``roi`` from it at a random offset, as far as the
        localiser typically errs."""
        if self.localiser is None:
            return self._arrays(train, ctx, labels=True, masks=True)
        centres = training_centres(self.store(ctx).get(train), self.localiser, train)
        return self._arrays(train, ctx, labels=True, masks=True, centres=centres, margin=self.cascade.jitter_vox)

    def validation(self, valid, ctx: FitContext) -> CaseArrays:
        """Labels and masks of inner-validation cases (the checkpoint weighs their tumour Dice,
        engine.trainer.checkpoint_score), in the windows a test case gets: the localiser's."""
        return self._arrays(valid, ctx, labels=True, masks=True, centres=self.centres(valid))

    def inference(self, cohort, ctx: FitContext, *, labels: bool = False) -> CaseArrays:
        """Mask-free arrays as a test case is seen (``labels`` for a head refit on training cases)."""
        return self._arrays(cohort, ctx, labels=labels, masks=False, centres=self.centres(cohort))

    def reference_masks(self, cohort, ctx: FitContext) -> dict[str, np.ndarray]:
        """Each case's reference mask cut from the window its prediction was made in (cases with a mask);
        for scoring predictions only, never an input."""
        truth = self._arrays(cohort, ctx, labels=False, masks=True, centres=self.centres(cohort))
        return {cid: seg for cid, seg, has in zip(truth.case_ids, truth.segs, truth.has_mask) if has}

    def _arrays(
        self, cohort, ctx: FitContext, *, labels: bool, masks: bool, centres: dict | None = None, margin: int = 0
    ) -> CaseArrays:
        """Preprocessed clinical rows (+ cached volumes) of ``cohort``; with ``centres``, each volume is the
        window of ``roi + 2 * margin`` voxels around ``centres[case]`` (world mm)."""
        clinical = self.preprocessor.transform(cohort.clinical.loc[list(cohort.case_ids)])
        arrays = CaseArrays(
            case_ids=list(cohort.case_ids),
            clinical=np.asarray(clinical, dtype=np.float32),
            labels=np.asarray(cohort.labels) if labels else None,
        )
        if self.image is not None:
            progress = None
            if ctx.on_progress is not None:
                progress = lambda done, total, cid: ctx.on_progress(done, total, f"preprocessing {cid}")  # noqa: E731
            vols = self.store(ctx).get(cohort, on_progress=progress)
            if centres is not None:
                vols = cut_windows(vols, centres, np.asarray(self.roi) + 2 * margin)
            arrays.images = [vols[c]["image"] for c in arrays.case_ids]
            if masks:
                arrays.segs = [vols[c]["seg"] for c in arrays.case_ids]
                arrays.has_mask = np.array([bool(vols[c]["has_mask"]) for c in arrays.case_ids])
        return arrays

    # -- where the windows are ---------------------------------------------------------------------------
    def centres(self, cohort) -> dict | None:
        """The localiser's window centre per case (None without a cascade); computed once per case of a
        cohort (keyed by the cohort's fingerprint too: another cohort may reuse the case ids)."""
        if self.localiser is None:
            return None
        source = getattr(cohort, "fingerprint", None)
        todo = cohort.subset([c for c in cohort.case_ids if (source, c) not in self._centres])
        if len(todo.case_ids):
            self._centres.update({(source, c): v for c, v in self.localiser.centres(todo).items()})
        return {c: self._centres[(source, c)][0] for c in cohort.case_ids}

    def grid(self, cohort, ctx: FitContext) -> dict[str, np.ndarray]:
        """case -> 4x4 voxel-to-world affine (RAS mm) of the grid the network sees the case on: the
        preprocessed volume's, or with a cascade the window cut around the localiser's centre."""
        vols = self.store(ctx).get(cohort)
        centres = self.centres(cohort)
        if centres is not None:
            vols = cut_windows(vols, centres, np.asarray(self.roi))
        return {cid: np.asarray(vols[cid]["affine"], dtype=np.float64) for cid in cohort.case_ids}

    def localisation_mm(self, cohort, ctx: FitContext) -> dict[str, float]:
        """The localiser's error (mm) against the mask's tumour centre, for the cases whose mask shows one."""
        vols = self.store(ctx).get(cohort)
        reference = {
            c: v
            for c, v in true_centres({c: vols[c] for c in cohort.case_ids if vols[c]["has_mask"]}).items()
            if v is not None
        }
        centres = self.centres(cohort)
        return {cid: float(np.linalg.norm(centres[cid] - ref)) for cid, ref in reference.items()}

    # -- the fitted state, saved and loaded without pickle (models/persist.py) -----------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
        """(description, tensors): whether a localiser is part of it and the fitted clinical preprocessing
        (plain JSON data); the localiser's weights as CPU tensors (``"localiser"``, with a cascade only)."""
        description = {"localiser": self.localiser is not None, "clinical": self.preprocessor.to_state()}
        tensors = {"localiser": snapshot(self.localiser.net)} if self.localiser is not None else {}
        return description, tensors

    def load_state(
        self, description: dict[str, Any], tensors: dict[str, dict[str, torch.Tensor]], ctx: FitContext
    ) -> "ModelInput":
        """This input as :meth:`fit` under ``ctx`` left it, from what :meth:`state` returned. A state with a
        localiser under a profile without a cascade, or the reverse, raises ``ValueError``; weights that do
        not fit the localiser ``RuntimeError``."""
        from ..data.clinical import ClinicalPreprocessor

        if bool(description.get("localiser")) != (self.cascade is not None):
            has = "has a cascade localiser" if description.get("localiser") else "has no cascade localiser"
            raise ValueError(
                f"the saved state {has}, profile {ctx.profile.name!r} "
                f"{'uses one' if self.cascade is not None else 'none'}"
            )
        self.preprocessor = ClinicalPreprocessor.from_state(description["clinical"])
        self.localiser, self._centres = None, {}
        if description.get("localiser"):
            localiser = Localiser(SmallUNet(), self.cascade, ctx.cache_dir, resolve_device(ctx.device))
            localiser.net.load_state_dict(tensors["localiser"])
            self.localiser = localiser
        return self


def _image_config(roi, spacing, cascade, hu_clip):
    from ..data.images import ImageConfig

    kwargs = {"target_spacing": spacing, "roi": roi}
    if cascade:
        # the cache holds the fine-grid context and the model's window is cut from it; no flips or
        # 90-degree turns: a window holds no body to tell left from right by, and flipping it
        # swaps side-specific labels (SMA vs SMV, aorta vs IVC)
        from ..data.transforms import AugmentationConfig

        kwargs.update(roi=tuple(cascade.context_roi), augmentation=AugmentationConfig(flip_prob=0.0, rot90_prob=0.0))
    if hu_clip:
        kwargs["hu_clip"] = hu_clip
    return ImageConfig(**kwargs)
