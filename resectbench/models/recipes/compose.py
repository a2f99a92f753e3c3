"""``NeuralRecipe``: a ResectabilityModel composed from registered components by name.

Every neural recipe (``swinunetr-fusion``, ``tat``, ..., and whatever ``--backbone/--fusion/
--clinical-encoder/--loss-schedule`` compose) is a ``NeuralRecipe``: components come only from the
registries, so plugin components compose with no special handling, and one engine
(:mod:`resectbench.models.engine`) trains them all.

Component options may be given as dicts (``fusion_kwargs={"dropout": 0.1}``) or as dotted
keyword arguments (``**{"fusion.dropout": 0.1}``), which is the form nested search spaces use
(:func:`compose_search_space`).

Hyper-parameters are grouped (:mod:`.settings`: training, loss, inputs, architecture) and given
either flat (``lr=1e-3``, the keys of search spaces and experiment files) or as a group's settings
object (``training=TrainingSettings(lr=1e-3)``).
"""

from __future__ import annotations

import inspect
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import registry, search_space as ss
from ...errors import RegistryError
from ...vocabulary import COMPONENT_SLOTS
from ..base import N_CLASSES, FitContext, ResectabilityModel
from ..engine import TrainConfig, predict, resolve_device, seed_everything, train_network
from ..engine.metrics import per_structure_dice
from ..engine.precision import resolve_amp
from ..inputs import ModelInput
from ..network import MultitaskNet
from .settings import (
    FLAT_KEYWORDS,
    ArchitectureSettings,
    InputSettings,
    LossSettings,
    TrainingSettings,
    group_settings,
    with_flat_keywords,
)

#: dotted-prefix -> (constructor argument holding that component's options)
PREFIXES = {prefix: prefix[:-1] + "_kwargs" for _kind, prefix in COMPONENT_SLOTS.values()}
N_SEG_CLASSES = 16  # the paper's head: canonical structures of resectbench.data.labels
#: the paper's grid; None (every recipe's default, the first Optuna trial) is the profile's lr: 1e-3 on
#: paper and cpu-whole, 3e-3 for the few epochs of the cpu cascades (see docs/models.md)
LR_CHOICES = (None, 1e-3, 5e-4, 1e-4)
#: below this ROI edge, backbones with a ``norm_name`` option get ``small_roi_norm`` instead of
#: their default (instance norm at Swin-UNETR's roi/32 bottleneck has one voxel per channel below 64^3)
INSTANCE_NORM_MIN_ROI = 64

#: recipe-level hyper-parameters every neural recipe can tune (flat names = constructor kwargs)
TRAINING_SPACE: dict[str, ss.Param] = {
    "lr": ss.Categorical(LR_CHOICES),
    "seg_ce": ss.Float(0.2, 0.6),
    "seg_dice": ss.Float(0.2, 0.6),
    "seg_focal": ss.Float(0.2, 0.6),
}


def compose_search_space(
    backbone: str | None, clinical_encoder: str | None, fusion: str, loss_schedule: str, balancing: str = "none"
) -> dict[str, ss.Param]:
    """The recipe-level training space plus each component's registered space, nested by prefix.

    Keys are valid ``NeuralRecipe`` keyword arguments (``lr``, ``fusion.dropout`` ...). A component
    with a callable (conditional) space contributes nothing here: tune it with its own space.
    """
    space = dict(TRAINING_SPACE)
    parts = (
        ("backbone.", registry.backbones, backbone),
        ("clinical.", registry.clinical_encoders, clinical_encoder),
        ("fusion.", registry.fusions, fusion),
        ("schedule.", registry.loss_schedules, loss_schedule),
        ("balancing.", registry.balancing, balancing),
    )
    for prefix, reg, name in parts:
        if not name:
            continue
        component_space = reg.get(name).search_space
        if isinstance(component_space, dict):
            space.update(ss.prefixed(component_space, prefix))
    uses_seg = loss_schedule and _schedule_uses_segmentation(loss_schedule)
    if not uses_seg or not backbone:
        for key in ("seg_ce", "seg_dice", "seg_focal"):
            space.pop(key, None)
    return space


def _schedule_uses_segmentation(name: str) -> bool:
    entry = registry.loss_schedules.get(name)
    return bool(getattr(entry.factory, "uses_segmentation", True))


def _accepts(entry: registry.Entry, name: str) -> bool:
    params = entry.parameters()
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class NeuralRecipe(ResectabilityModel):
    """Backbone + clinical encoder + fusion trained by the shared engine, with an auxiliary segmentation loss.

    Hyper-parameters come flat (``lr=1e-3, seg_ce=0.5``: the keys of search spaces, experiment
    ``params`` and ``--param``) or as their group's settings object (``training=TrainingSettings(...)``,
    ``loss=``, ``inputs=``, ``architecture=``; :mod:`.settings`), not both for one group; the recipe
    keeps them as ``self.training``, ``self.loss``, ``self.inputs``, ``self.architecture``.
    Parameters left ``None`` come from ``ctx.profile`` at fit time (``roi``, ``spacing``,
    ``batch_size``, ``max_epochs``, ``patience``, and ``feature_size`` for backbones that take
    one). ``backbone=None`` gives a network without an image branch (clinical only).
    ``feature_size`` is passed to the backbone only when its factory takes that parameter, so a
    recipe's space stays valid when ``--backbone`` swaps the backbone.
    """

    mask_source = "none"  # or the backbone's: "predicted" when it derives geometry from its own masks

    def __init__(
        self,
        backbone: str | None = "swin-unetr",
        clinical_encoder: str | None = "mlp",
        fusion: str = "concat",
        loss_schedule: str = "dice-step",
        balancing: str = "none",
        *,
        backbone_kwargs: dict | None = None,
        clinical_kwargs: dict | None = None,
        fusion_kwargs: dict | None = None,
        schedule_kwargs: dict | None = None,
        balancing_kwargs: dict | None = None,
        architecture: ArchitectureSettings | None = None,
        loss: LossSettings | None = None,
        training: TrainingSettings | None = None,
        inputs: InputSettings | None = None,
        **component_params: Any,
    ):
        super().__init__()
        self.backbone = backbone or None
        if self.backbone is not None:
            self.mask_source = getattr(registry.backbones.get(self.backbone).factory, "mask_source", "none")
        self.clinical_encoder = clinical_encoder or "none"
        self.fusion = fusion
        self.loss_schedule = loss_schedule
        self.balancing = balancing or "none"
        kwargs = {
            "backbone_kwargs": dict(backbone_kwargs or {}),
            "clinical_kwargs": dict(clinical_kwargs or {}),
            "fusion_kwargs": dict(fusion_kwargs or {}),
            "schedule_kwargs": dict(schedule_kwargs or {}),
            "balancing_kwargs": dict(balancing_kwargs or {}),
        }
        flat = {}  # flat hyper-parameters, grouped below
        for key, value in component_params.items():
            if key in FLAT_KEYWORDS:
                flat[key] = value
                continue
            prefix = next((p for p in PREFIXES if key.startswith(p)), None)
            if prefix is None:
                raise RegistryError(
                    f"NeuralRecipe got unknown parameter {key!r}; component options take a prefix "
                    f"({', '.join(PREFIXES)}), e.g. 'fusion.dropout'"
                )
            kwargs[PREFIXES[prefix]][key[len(prefix) :]] = value
        self.backbone_kwargs, self.clinical_kwargs = kwargs["backbone_kwargs"], kwargs["clinical_kwargs"]
        self.fusion_kwargs, self.schedule_kwargs = kwargs["fusion_kwargs"], kwargs["schedule_kwargs"]
        self.balancing_kwargs = kwargs["balancing_kwargs"]
        groups = group_settings(
            flat, {"architecture": architecture, "loss": loss, "training": training, "inputs": inputs}
        )
        self.architecture: ArchitectureSettings = groups["architecture"]
        self.loss: LossSettings = groups["loss"]
        self.training: TrainingSettings = groups["training"]
        self.inputs: InputSettings = groups["inputs"]
        # fitted state
        self.net: MultitaskNet | None = None
        self.model_input: ModelInput | None = None  # clinical preprocessing, volumes, the cascade's localiser
        self.config: TrainConfig | None = None
        self.fit_result = None
        self._resolved_cfg: dict | None = None
        self._last_prediction: tuple | None = None  # ((fingerprint, case ids), Predictions) of the fitted net

    # -- configuration resolved against the profile ----------------------------------------------
    def _resolved(self, ctx: FitContext) -> dict[str, Any]:
        p, inputs, training = ctx.profile, self.inputs, self.training
        roi = inputs.roi or tuple(p.roi)
        return {
            "roi": roi,
            "spacing": inputs.spacing or tuple(p.target_spacing_mm),
            "patch_size": inputs.patch_size if inputs.patch_size and tuple(inputs.patch_size) != roi else None,
            "lr": training.lr if training.lr is not None else p.lr,
            "batch_size": training.batch_size or p.batch_size,
            "max_epochs": training.max_epochs or p.max_epochs,
            "patience": training.patience or p.patience,
            "feature_size": self.architecture.feature_size or p.feature_size,
            "window_size": p.window_size,
            "cascade": p.cascade if self.uses_image else None,
        }

    @property
    def uses_image(self) -> bool:
        return self.backbone is not None

    def trains(self) -> str:
        return f"a {self.backbone} network" if self.uses_image else "a clinical network"

    def needs(self, profile=None):
        """Images and clinical variables as its branches read them. Masks are optional for the auxiliary
        segmentation (without them the network trains without it), but required, naming what is read,
        where the input or the embedding comes from them: a cascade's localiser learns the tumour, a
        contact embedding reads tumour-vessel contact off the predicted segmentation, and a backbone with
        its own geometry (``mask_source = "predicted"``, e.g. TAT) measures its vessels."""
        from ..backbones.base import CONTACT_VESSELS
        from ..needs import Needs

        because: list[tuple[tuple[str, ...], str]] = []
        if self.uses_image and profile is not None and profile.cascade is not None:
            because.append((("tumor",), f"the {profile.name} profile's cascade localises the tumour"))
        if self.uses_image and self.backbone_kwargs.get("embedding") == "contact":
            because.append(
                (
                    ("tumor", *CONTACT_VESSELS),
                    "its contact embedding reads them (--param backbone.embedding=pooled does not)",
                )
            )
        if self.mask_source == "predicted":
            vessels = getattr(registry.backbones.get(self.backbone).factory, "measured_vessels", ())
            because.append((("tumor", *vessels), f"backbone {self.backbone!r} measures them on its own segmentation"))
        structures = tuple(dict.fromkeys(s for group, _ in because for s in group))
        return Needs(
            images=self.uses_image,
            clinical=self.clinical_encoder != "none",
            masks="training" if structures else "none",
            structures=structures,
            because=tuple(because),
        )

    def _model_input(self, resolved) -> ModelInput:
        """The (unfitted) input pipeline of this recipe under the resolved profile settings."""
        return ModelInput(
            resolved["roi"],
            resolved["spacing"],
            cascade=resolved["cascade"],
            hu_clip=self.inputs.hu_clip,
            images=self.uses_image,
        )

    @property
    def localiser(self):
        """The cascade's stage 1 (profiles with a ``cascade``), else None."""
        return self.model_input.localiser if self.model_input is not None else None

    # -- building the network --------------------------------------------------------------------
    def build(self, in_features: int, resolved: dict, *, segment: bool) -> MultitaskNet:
        """The network for ``in_features`` clinical columns (weights freshly initialised)."""
        backbone = None
        if self.uses_image:
            entry = registry.backbones.get(self.backbone)
            kwargs = {
                "in_channels": 1,
                "roi": resolved["patch_size"] or resolved["roi"],
                "n_seg_classes": N_SEG_CLASSES if segment else 0,
                "embed_dim": self.architecture.embed_dim,
            }
            if _accepts(entry, "feature_size") and "feature_size" not in self.backbone_kwargs:
                kwargs["feature_size"] = resolved["feature_size"]
            if _accepts(entry, "window_size") and "window_size" not in self.backbone_kwargs:
                kwargs["window_size"] = resolved["window_size"]
            if min(kwargs["roi"]) < INSTANCE_NORM_MIN_ROI and "norm_name" in entry.parameters():
                kwargs["norm_name"] = self.architecture.small_roi_norm
            if getattr(entry.factory, "mask_source", "none") == "predicted":
                kwargs["n_seg_classes"] = N_SEG_CLASSES  # its geometry reads its own masks: always segment
            kwargs = {k: v for k, v in kwargs.items() if _accepts(entry, k)}
            backbone = registry.backbones.create(self.backbone, **{**kwargs, **self.backbone_kwargs})
        encoder = registry.clinical_encoders.create(
            self.clinical_encoder, in_features=in_features, **self.clinical_kwargs
        )
        image_dim = int(backbone.embed_dim) if backbone is not None else 0
        fusion = registry.fusions.create(
            self.fusion,
            image_dim=image_dim,
            clinical_dim=int(encoder.out_dim),
            n_classes=N_CLASSES,
            **self.fusion_kwargs,
        )
        return MultitaskNet(backbone, encoder, fusion)

    def build_schedule(self) -> torch.nn.Module:
        return registry.loss_schedules.create(self.loss_schedule, **self.schedule_kwargs)

    def build_balancing(self, seed: int):
        """The balancing strategy, seeded with the fit's seed when it draws random numbers."""
        entry = registry.balancing.get(self.balancing)
        kwargs = dict(self.balancing_kwargs)
        if "seed" in entry.parameters() and "seed" not in kwargs:
            kwargs["seed"] = seed
        return registry.balancing.create(self.balancing, **kwargs)

    def _losses(self, train_labels):
        from ...losses import SegmentationLoss, classification_loss

        w = self.loss
        cls = classification_loss(class_weights=w.class_weights, labels=np.asarray(train_labels))
        seg = SegmentationLoss(ce=w.seg_ce, dice=w.seg_dice, focal=w.seg_focal, gamma=w.focal_gamma)
        return seg, cls

    def _transform(self, resolved, seed: int):
        transforms = []
        if resolved.get("cascade") and resolved["cascade"].jitter_vox:
            from monai.transforms import RandSpatialCropd

            # the window around the true tumour, shifted as far as the localiser typically errs
            transforms.append(
                RandSpatialCropd(
                    keys=["image", "seg"], roi_size=resolved["roi"], random_size=False, allow_missing_keys=True
                )
            )
        if self.inputs.augment:
            from ...data.transforms import train_augmentation

            transforms.append(train_augmentation(self.model_input.image, seed))
        if resolved["patch_size"]:
            from monai.transforms import RandSpatialCropd

            transforms.append(
                RandSpatialCropd(
                    keys=["image", "seg"], roi_size=resolved["patch_size"], random_size=False, allow_missing_keys=True
                )
            )
        if not transforms:
            return None
        from monai.transforms import Compose

        compose = Compose(transforms)
        compose.set_random_state(seed=seed)
        return compose

    # -- the ResectabilityModel interface ---------------------------------------------------------
    def fit(self, train, valid, ctx: FitContext) -> "NeuralRecipe":
        device = resolve_device(ctx.device)
        resolved = self._resolved(ctx)
        seed_everything(ctx.seed)
        self.model_input = self._model_input(resolved).fit(train, ctx)
        train_arrays = self.model_input.training(train, ctx)
        valid_arrays = self.model_input.validation(valid, ctx) if valid is not None and len(valid.case_ids) else None
        seed_everything(ctx.seed)  # same initial weights whatever the data loading did
        schedule = self.build_schedule()
        strategy = self.build_balancing(ctx.seed)
        # the auxiliary task needs a segmenting schedule and training masks; otherwise no seg head at all
        segment = (
            self.uses_image
            and bool(train_arrays.has_mask.any())
            and bool(getattr(schedule, "uses_segmentation", False))
        )
        self.net, self._last_prediction = self.build(train_arrays.clinical.shape[1], resolved, segment=segment), None
        seg_loss, cls_loss = self._losses(train_arrays.labels)
        training = self.training
        self.config = TrainConfig(
            lr=resolved["lr"],
            weight_decay=training.weight_decay,
            batch_size=resolved["batch_size"],
            max_epochs=resolved["max_epochs"],
            patience=resolved["patience"],
            grad_accum=training.grad_accum,
            grad_clip=training.grad_clip,
            backbone_lr_scale=training.backbone_lr_scale,
            amp=training.amp,
            device=device,
            seed=ctx.seed,
            channels_last=training.channels_last,
            patch_size=resolved["patch_size"],
            n_classes=N_CLASSES,
        )
        checkpoint = Path(ctx.work_dir) / "best_weights.pt" if ctx.work_dir is not None else None
        self.fit_result = train_network(
            self.net,
            schedule=schedule,
            seg_loss=seg_loss if segment else None,
            cls_loss=cls_loss,
            train=train_arrays,
            valid=valid_arrays,
            config=self.config,
            transform=self._transform(resolved, ctx.seed) if self.uses_image else None,
            checkpoint_path=checkpoint,
            on_epoch=ctx.on_epoch,
            on_progress=ctx.on_progress,
            balancing=strategy,
        )
        self.history = self.fit_result.history
        self._resolved_cfg = resolved
        # a staged strategy's last stage, else the recipe's own head refit
        steps = strategy.head_steps or self.training.head_refit_steps
        if steps and self.uses_image:
            from ..engine.head_refit import has_modality_heads

            # a head trained with the clinical branch withheld cannot be kept: it never saw clinical values
            withheld = getattr(strategy, "image_fraction", 0.0) == 1.0
            objective = getattr(strategy, "head_objective", "fused")
            if objective == "auto":
                objective = "unimodal" if has_modality_heads(self.net.fusion) else "fused"
            self._refit_head(train, valid_arrays, cls_loss, ctx, steps, keep_joint=not withheld, objective=objective)
        return self

    def _refit_head(
        self,
        train,
        valid_arrays,
        cls_loss,
        ctx: FitContext,
        steps: int,
        keep_joint: bool = True,
        objective: str = "fused",
    ) -> None:
        """A fresh head on the trained backbone's frozen embeddings (engine/head_refit.py); the training
        cases are seen as test cases are, through the localiser's windows with a cascade."""
        from ..engine.head_refit import HeadRefit, refit_head

        arrays = self.model_input.inference(train, ctx, labels=True)
        self.fit_result.head_refit = refit_head(
            self.net,
            arrays,
            valid_arrays,
            cls_loss,
            HeadRefit(steps=steps, objective=objective),
            batch_size=self.config.batch_size,
            device=self.config.device,
            seed=self.config.seed,
            amp_dtype=resolve_amp(self.config.amp, self.config.device),
            n_classes=N_CLASSES,
            keep_joint=keep_joint,
        )

    def _check_fitted(self):
        if self.net is None:
            raise RuntimeError("NeuralRecipe.predict_proba called before fit")

    def _predict(self, cohort, ctx: FitContext):
        """Logits (and, for a segmenting network, masks) of ``cohort``'s cases; one inference per cohort:
        the protocol asks for probabilities and then masks (Dice, ``predict``) of the same cases, and the
        masks come with the same forward pass. Keyed by the cohort's content fingerprint."""
        self._check_fitted()
        key = (cohort.fingerprint, tuple(cohort.case_ids))
        if self._last_prediction is not None and self._last_prediction[0] == key:
            return self._last_prediction[1]
        arrays = self.model_input.inference(cohort, ctx)
        device = self.config.device
        predictions = predict(
            self.net.to(device),
            arrays,
            batch_size=self.config.batch_size,
            device=device,
            amp_dtype=resolve_amp(self.config.amp, device),
            patch_size=self.config.patch_size,
            want_masks=self.net.segments,
            channels_last=self.config.channels_last,
            n_classes=N_CLASSES,
        )
        self._last_prediction = (key, predictions)
        return predictions

    def predict_proba(self, cohort, ctx: FitContext) -> np.ndarray:
        logits = torch.from_numpy(self._predict(cohort, ctx).logits)
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict_masks(self, cohort, ctx: FitContext) -> dict[str, tuple[np.ndarray, tuple[float, ...]]]:
        """Predicted segmentation per case (canonical labels on the model's grid) and its spacing in mm."""
        if not (self.net is not None and self.net.segments):
            return {}
        masks = self._predict(cohort, ctx).masks
        spacing = tuple(float(s) for s in self._resolved_cfg["spacing"])
        return {cid: (m, spacing) for cid, m in zip(cohort.case_ids, masks)}

    def extra_outputs(self, cohort, ctx: FitContext, measure_contacts: bool = False) -> dict[str, Any]:
        """``dice``: case -> structure -> Dice of the predicted mask vs the cohort's mask (cases with one);
        with ``measure_contacts``, ``contact_deg``: case -> vessel -> contact angle measured on the prediction;
        after a head refit, ``fit_summary``: what it did (scalars the protocol adds to the unit's metrics)."""
        refit = self.fit_result.head_refit if self.fit_result is not None else None
        summary = {"fit_summary": dict(refit)} if refit else {}
        predicted = self.predict_masks(cohort, ctx)
        if not predicted:
            return summary
        reference = self.model_input.reference_masks(cohort, ctx)
        out: dict[str, Any] = {
            "dice": {cid: per_structure_dice(predicted[cid][0], seg) for cid, seg in reference.items()},
            **summary,
        }
        if self.localiser is not None:
            out["localisation_mm"] = self.model_input.localisation_mm(cohort, ctx)
        if measure_contacts:
            from ...geometry import measure_case

            out["contact_deg"] = {}
            for cid, (mask, spacing) in predicted.items():
                table = measure_case(mask, spacing)
                out["contact_deg"][cid] = dict(zip(table["vessel"], table["contact_deg"].astype(float)))
        return out

    def mask_grid(self, cohort, ctx: FitContext) -> dict[str, np.ndarray]:
        """Where :meth:`predict_masks` puts each case's mask in the world: case -> 4x4 voxel-to-world affine
        (RAS mm) of the grid the model predicted on, the preprocessed volume's, or with a cascade the window
        cut around the localiser's centre. Empty for a model that does not segment."""
        if not (self.net is not None and self.net.segments):
            return {}
        return self.model_input.grid(cohort, ctx)

    # -- the fitted state, saved and loaded without pickle (models/persist.py) ---------------------
    def state(self) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
        """The fitted state as (description, tensors). The description is plain JSON data: the clinical
        input width, whether the network segments, the training configuration (device left out) and the
        input pipeline's (:meth:`ModelInput.state`: whether a cascade localiser is part of it, the fitted
        clinical preprocessing); the tensors are CPU copies of the network's state dict (``"net"``) and the
        localiser's (``"localiser"``, with a cascade only)."""
        from ..engine.checkpoint import snapshot

        self._check_fitted()
        config = self.config.to_dict()
        config.pop("device", None)
        inputs, tensors = self.model_input.state()
        description = {
            "in_features": int(self.model_input.preprocessor.n_features),
            "segment": bool(self.net.segments),
            "train_config": config,
            **inputs,
        }
        return description, {"net": snapshot(self.net), **tensors}

    def load_state(
        self, description: dict[str, Any], tensors: dict[str, dict[str, torch.Tensor]], ctx: FitContext
    ) -> "NeuralRecipe":
        """This recipe (created with the parameters it was fitted with) as :meth:`fit` under ``ctx`` left it,
        from what :meth:`state` returned; needs no training data. A localiser where the profile has no
        cascade (or the reverse) raises ``ValueError``, weights that do not fit the network or the localiser
        ``RuntimeError`` (``load_state_dict``), a description without a localiser's tensors ``KeyError``."""
        resolved = self._resolved(ctx)
        model_input = self._model_input(resolved).load_state(description, tensors, ctx)
        net = self.build(int(description["in_features"]), resolved, segment=bool(description["segment"]))
        net.load_state_dict(tensors["net"])
        config = dict(description["train_config"])
        if config.get("patch_size") is not None:
            config["patch_size"] = tuple(config["patch_size"])
        config["device"] = resolve_device(ctx.device)
        self.net, self.config, self._resolved_cfg = net.eval(), TrainConfig(**config), resolved
        self.model_input, self._last_prediction = model_input, None
        return self

    def n_parameters(self) -> int:
        return self.net.n_parameters() if self.net is not None else 0

    def describe(self) -> dict[str, Any]:
        """The composition and hyper-parameters, as plain data (for model.json / reports)."""
        return {
            "backbone": self.backbone,
            "clinical_encoder": self.clinical_encoder,
            "fusion": self.fusion,
            "loss_schedule": self.loss_schedule,
            "balancing": self.balancing,
            "balancing_kwargs": self.balancing_kwargs,
            "backbone_kwargs": self.backbone_kwargs,
            "clinical_kwargs": self.clinical_kwargs,
            "fusion_kwargs": self.fusion_kwargs,
            "schedule_kwargs": self.schedule_kwargs,
            "lr": self.config.lr if self.config is not None else self.training.lr,  # what it trained with
            "weight_decay": self.training.weight_decay,
            "cascade": asdict(self._resolved_cfg["cascade"])
            if self._resolved_cfg and self._resolved_cfg["cascade"]
            else None,
            "seg_weights": (self.loss.seg_ce, self.loss.seg_dice, self.loss.seg_focal),
            "class_weights": self.loss.class_weights,
        }


# the flat keywords (``lr``, ``seg_ce`` ...) arrive through ``**component_params`` beside the dotted
# options; listing them in the signature keeps them visible to what reads it: the tuner (the
# parameters a recipe sets itself, protocol/tuning.py) and help()
NeuralRecipe.__init__.__signature__ = with_flat_keywords(inspect.signature(NeuralRecipe.__init__))
