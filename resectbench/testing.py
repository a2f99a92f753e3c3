"""Conformance checks for components, in the style of scikit-learn's estimator checks.

Each ``check_*`` builds one component on tiny inputs and raises ``AssertionError`` (naming the
component and the broken rule) where it breaks the contract of docs/plugins.md and
docs/components.md. Pass a registered name (built through the registry, so ``create``'s keyword
check and the entry's search space are exercised too) or a factory (class or function) together
with its ``search_space``. Extra keyword arguments go to the factory (e.g. small widths, to keep
the check fast)::

    from resectbench.testing import check_backbone, check_fusion

    def test_my_components():
        check_backbone("my-backbone", width=4)
        check_fusion(MyFusion, search_space={"hidden": Categorical([32, 64])})

Every check also validates the search space: keys are keyword arguments of the factory (and not
the ones the recipe sets itself, such as ``embed_dim``), ranges are well formed, one sampled
configuration is accepted by the factory and, except for backbones, builds.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import registry, search_space as ss
from .errors import RegistryError
from .models.backbones.base import BackboneOutput
from .models.base import FitContext, ResectabilityModel
from .vocabulary import N_CLASSES, STRUCTURES

__all__ = [
    "check_backbone",
    "check_balancing",
    "check_clinical_encoder",
    "check_fusion",
    "check_loss_schedule",
    "check_recipe",
    "check_search_space",
]

#: arguments the caller (recipe / network) sets: a search space must not tune them
_STRUCTURAL = {
    "backbones": ("in_channels", "roi", "n_seg_classes", "embed_dim"),
    "clinical_encoders": ("in_features",),
    "fusions": ("image_dim", "clinical_dim", "n_classes"),
    "loss_schedules": (),
    "balancing": ("seed",),
    "models": (),
}
MASK_SOURCES = ("none", "predicted", "oracle", "external")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


@dataclasses.dataclass
class _Subject:
    """A component under check: its label, how to build it and its search space."""

    label: str
    kind: str
    factory: Callable[..., Any]
    space: ss.SearchSpaceLike
    by_name: bool

    def build(self, **kwargs):
        if self.by_name:
            return registry.get_registry(self.kind).create(self.label, **kwargs)
        return self.factory(**kwargs)

    def parameters(self) -> dict[str, inspect.Parameter]:
        return registry.Entry(self.label, self.kind, self.factory).parameters()


def _subject(kind: str, component, search_space) -> _Subject:
    if isinstance(component, str):
        entry = registry.get_registry(kind).get(component)
        space = entry.search_space if search_space is None else search_space
        return _Subject(component, kind, entry.factory, space, by_name=True)
    if not callable(component):
        raise TypeError(f"pass a registered {kind} name or a factory, got {component!r}")
    label = getattr(component, "__qualname__", repr(component))
    return _Subject(label, kind, component, search_space, by_name=False)


def check_search_space(kind: str, component, search_space: ss.SearchSpaceLike = None, *, build: bool = True, **kwargs):
    """The search space of a component (by name, or a factory with ``search_space``) is valid for its factory.

    ``build``: also build the component with one sampled configuration (plus ``kwargs``). Returns
    the sampled configuration.
    """
    subject = _subject(kind, component, search_space)
    return _check_space(subject, build=build, **kwargs)


def _check_space(subject: _Subject, *, build: bool = True, **kwargs) -> dict[str, Any]:
    import optuna

    space, label = subject.space, subject.label
    if space is None:
        return {}
    params = subject.parameters()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not callable(space):
        _require(isinstance(space, dict), f"{label}: search_space must be a mapping or a callable, got {space!r}")
        for key, param in space.items():
            _require(
                isinstance(param, (ss.Float, ss.Int, ss.Categorical)),
                f"{label}: search space entry {key!r} is {param!r}, not Float, Int or Categorical",
            )
            if isinstance(param, ss.Categorical):
                _require(len(param.choices) > 0, f"{label}: search space entry {key!r} has no choices")
            else:
                _require(param.low < param.high, f"{label}: search space entry {key!r} has low >= high ({param})")
                _require(not param.log or param.low > 0, f"{label}: log-scale entry {key!r} needs low > 0 ({param})")
            for other in param.when or {}:
                _require(
                    other in list(space)[: list(space).index(key)],
                    f"{label}: search space entry {key!r} is sampled when {other!r} is, which is not an entry "
                    "before it",
                )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = ss.suggest(space, study.ask())
    for key in sampled if callable(space) else space:  # a conditional entry is checked though not sampled
        _require(
            key in named or takes_any,
            f"{label}: search space key {key!r} is not a parameter of its factory "
            f"(parameters: {', '.join(sorted(named)) or '(none)'})",
        )
        _require(
            key not in _STRUCTURAL[subject.kind],
            f"{label}: the search space tunes {key!r}, which the caller sets (not a hyper-parameter)",
        )
    if build:
        try:
            subject.build(**{**kwargs, **sampled})
        except Exception as error:  # the message says which configuration
            raise AssertionError(f"{label}: the sampled configuration {sampled} does not build: {error!r}") from error
    return sampled


def _same_rows(net: nn.Module, run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, label: str) -> None:
    """In evaluation mode, repeated calls agree and a case's output does not depend on its batch."""
    with torch.no_grad():
        first, again, alone = run(x), run(x), run(x[:1])
    _require(torch.allclose(first, again, rtol=1e-4, atol=1e-5), f"{label}: evaluation mode is not deterministic")
    _require(
        torch.allclose(first[:1], alone, rtol=1e-3, atol=1e-4),
        f"{label}: in evaluation mode a case's output depends on the other cases of its batch",
    )


def _params_in_graph(module: nn.Module, label: str) -> None:
    lost = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    _require(not lost, f"{label}: parameters outside the graph (no gradient): {lost[:5]}")


def check_backbone(
    component,
    *,
    search_space: ss.SearchSpaceLike = None,
    in_channels: int = 1,
    roi: tuple[int, int, int] = (32, 32, 32),
    n_seg_classes: int = len(STRUCTURES),
    embed_dim: int = 16,
    batch: int = 2,
    **kwargs,
):
    """An image backbone honours its contract on a ``(batch, in_channels, *roi)`` volume.

    ``embed_dim`` and ``segments`` attributes; ``forward`` returns a ``BackboneOutput`` whose
    embedding is ``(batch, embed_dim)`` and whose ``seg_logits`` are ``(batch, n_seg_classes, *roi)``
    when it segments, else None; every parameter gets a gradient; evaluation mode is deterministic
    and per case; ``n_seg_classes=0`` gives no segmentation (or is refused with ``ValueError``); a
    volume with the wrong channel count is refused with ``ValueError``. Returns the built backbone.
    """
    subject = _subject("backbones", component, search_space)
    label = subject.label
    dims = dict(in_channels=in_channels, roi=tuple(roi), n_seg_classes=n_seg_classes, embed_dim=embed_dim)
    torch.manual_seed(0)
    net = subject.build(**dims, **kwargs)
    _require(isinstance(net, nn.Module), f"{label}: the factory must return an nn.Module, got {type(net).__name__}")
    _require(getattr(net, "embed_dim", None) == embed_dim, f"{label}: .embed_dim must be {embed_dim}")
    _require(isinstance(getattr(net, "segments", None), bool), f"{label}: .segments must be a bool")

    x = torch.randn(batch, in_channels, *roi)
    out = net.train()(x)
    _require(isinstance(out, BackboneOutput), f"{label}: forward must return a BackboneOutput, got {type(out)}")
    _require(
        tuple(out.embedding.shape) == (batch, embed_dim),
        f"{label}: embedding shape {tuple(out.embedding.shape)}, expected {(batch, embed_dim)}",
    )
    _require(bool(torch.isfinite(out.embedding).all()), f"{label}: non-finite embedding")
    loss = out.embedding.pow(2).mean()
    if net.segments:
        expected = (batch, n_seg_classes, *roi)
        _require(
            out.seg_logits is not None and tuple(out.seg_logits.shape) == expected,
            f"{label}: segments=True needs seg_logits of shape {expected}, got "
            f"{None if out.seg_logits is None else tuple(out.seg_logits.shape)}",
        )
        loss = loss + out.seg_logits.logsumexp(1).mean()
    else:
        _require(out.seg_logits is None, f"{label}: segments=False but forward returned seg_logits")
    loss.backward()
    _params_in_graph(net, label)
    _same_rows(net.eval(), lambda v: net(v).embedding, x, label)

    try:
        plain = subject.build(**{**dims, "n_seg_classes": 0}, **kwargs)
    except ValueError:
        plain = None  # a backbone that needs its segmentation head may refuse to be built without it
    if plain is not None:
        _require(not plain.segments, f"{label}: n_seg_classes=0 must give segments=False")
        with torch.no_grad():
            _require(plain.eval()(x[:1]).seg_logits is None, f"{label}: n_seg_classes=0 must give no seg_logits")

    wrong = torch.randn(1, in_channels + 1, *roi)
    try:
        net(wrong)
    except ValueError:
        pass
    else:
        raise AssertionError(f"{label}: a volume with {in_channels + 1} channels must be refused with ValueError")
    _check_space(subject, build=False)
    return net


def check_clinical_encoder(
    component, *, search_space: ss.SearchSpaceLike = None, in_features: int = 5, batch: int = 4, **kwargs
):
    """A clinical encoder maps ``(batch, in_features)`` to ``(batch, out_dim)``.

    ``out_dim`` attribute; finite output; the gradient reaches the input (when ``out_dim > 0``);
    evaluation mode is deterministic and per case; an encoder with an output refuses a table of the
    wrong width and ``in_features=0`` with ``ValueError`` (the latter naming the ``none`` encoder);
    one without (``out_dim == 0``) accepts ``in_features=0``. Returns the built encoder.
    """
    subject = _subject("clinical_encoders", component, search_space)
    label = subject.label
    torch.manual_seed(0)
    enc = subject.build(in_features=in_features, **kwargs)
    _require(isinstance(enc, nn.Module), f"{label}: the factory must return an nn.Module")
    out_dim = getattr(enc, "out_dim", None)
    _require(
        isinstance(out_dim, int) and out_dim >= 0, f"{label}: .out_dim must be a non-negative int, got {out_dim!r}"
    )
    x = torch.randn(batch, in_features, requires_grad=True)
    y = enc.train()(x)
    _require(tuple(y.shape) == (batch, out_dim), f"{label}: output shape {tuple(y.shape)}, expected {(batch, out_dim)}")
    _require(bool(torch.isfinite(y).all()), f"{label}: non-finite output")
    if out_dim > 0:
        y.pow(2).sum().backward()
        _require(x.grad is not None and bool(x.grad.abs().sum() > 0), f"{label}: no gradient reaches the input")
        _params_in_graph(enc, label)
    _same_rows(enc.eval(), enc, x.detach(), label)
    if out_dim > 0:
        try:
            enc(torch.randn(batch, in_features + 1))
        except ValueError:
            pass
        else:
            raise AssertionError(f"{label}: input of width {in_features + 1} must be refused with ValueError")
        try:
            subject.build(in_features=0, **kwargs)
        except ValueError as error:
            _require("'none'" in str(error), f"{label}: refusing in_features=0 should name the 'none' encoder")
        else:
            raise AssertionError(f"{label}: in_features=0 must be refused with ValueError (out_dim > 0)")
    else:
        empty = subject.build(in_features=0, **kwargs)
        _require(tuple(empty(torch.randn(batch, 0)).shape) == (batch, 0), f"{label}: in_features=0 must give (B, 0)")
    _check_space(subject, in_features=in_features)
    return enc


def check_fusion(
    component,
    *,
    search_space: ss.SearchSpaceLike = None,
    image_dim: int = 8,
    clinical_dim: int = 4,
    n_classes: int = N_CLASSES,
    batch: int = 4,
    **kwargs,
):
    """A fusion maps ``(image_emb (batch, image_dim), clinical_emb (batch, clinical_dim))`` to logits.

    Logits ``(batch, n_classes)``, finite; the gradient reaches at least one embedding and every
    parameter that takes part; evaluation mode (after one training batch) is deterministic and per
    case; an embedding of the wrong width is refused with ``ValueError``; with one modality absent
    (its dim 0) the fusion either refuses with a ``ValueError`` that names it, or works with
    ``None`` passed for that embedding; with both absent it refuses. Returns the built fusion.
    """
    subject = _subject("fusions", component, search_space)
    label = subject.label
    torch.manual_seed(0)
    fuse = subject.build(image_dim=image_dim, clinical_dim=clinical_dim, n_classes=n_classes, **kwargs)
    _require(isinstance(fuse, nn.Module), f"{label}: the factory must return an nn.Module")
    image = torch.randn(batch, image_dim, requires_grad=True)
    clinical = torch.randn(batch, clinical_dim, requires_grad=True)
    logits = fuse.train()(image, clinical)
    _require(
        tuple(logits.shape) == (batch, n_classes),
        f"{label}: logits shape {tuple(logits.shape)}, expected {(batch, n_classes)}",
    )
    _require(bool(torch.isfinite(logits).all()), f"{label}: non-finite logits")
    logits.logsumexp(1).sum().backward()
    reached = [g is not None and bool(g.abs().sum() > 0) for g in (image.grad, clinical.grad)]
    _require(any(reached), f"{label}: the logits depend on neither embedding")
    _same_rows(fuse.eval(), lambda v: fuse(v[:, :image_dim], v[:, image_dim:]), torch.cat([image, clinical], 1), label)

    for wrong in ((torch.randn(batch, image_dim + 1), clinical), (image, torch.randn(batch, clinical_dim + 1))):
        try:
            fuse(wrong[0].detach(), wrong[1].detach())
        except ValueError:
            pass
        else:
            raise AssertionError(f"{label}: an embedding of the wrong width must be refused with ValueError")

    for absent in ("image", "clinical"):
        dims = {
            "image_dim": 0 if absent == "image" else image_dim,
            "clinical_dim": 0 if absent == "clinical" else clinical_dim,
        }
        try:
            one = subject.build(**dims, n_classes=n_classes, **kwargs)
        except ValueError as error:
            if subject.by_name:
                _require(label in str(error), f"{label}: refusing a missing {absent} embedding should name the fusion")
            continue
        args = (None, clinical.detach()) if absent == "image" else (image.detach(), None)
        out = one.train()(*args)
        _require(
            tuple(out.shape) == (batch, n_classes),
            f"{label}: without the {absent} embedding (passed as None) logits must be {(batch, n_classes)}",
        )
    try:
        subject.build(image_dim=0, clinical_dim=0, n_classes=n_classes, **kwargs)
    except ValueError:
        pass
    else:
        raise AssertionError(f"{label}: image_dim=0 and clinical_dim=0 must be refused with ValueError")
    _check_space(subject, image_dim=image_dim, clinical_dim=clinical_dim, n_classes=n_classes)
    return fuse


def check_balancing(component, *, search_space: ss.SearchSpaceLike = None, epochs: int = 2, **kwargs):
    """A balancing strategy's hooks drive a real training loop and leave the network as they found it.

    The factory returns a :class:`~resectbench.balancing.BalancingStrategy`; ``head_steps`` is an int >= 0;
    on a small two-branch network (a linear "backbone" and clinical encoder, the ``concat`` fusion), the
    engine's loop (:func:`~resectbench.models.engine.train_network`) trains ``epochs`` epochs with an inner
    validation split: every number the hooks add to the history is a finite float, the loss stays finite,
    something is learned (some weight changes); afterwards no forward hook is left on the network and every
    parameter is trainable again; ``describe()`` is plain data naming the strategy; a network without a
    clinical branch is either trained or refused with ``ValueError`` naming the strategy. Returns the
    strategy."""
    from .balancing import BalancingStrategy
    from .models.engine import CaseArrays, TrainConfig, train_network
    from .models.network import MultitaskNet

    subject = _subject("balancing", component, search_space)
    label = subject.label
    strategy = subject.build(**kwargs)
    _require(isinstance(strategy, BalancingStrategy), f"{label}: the factory must return a BalancingStrategy")
    _require(
        isinstance(strategy.head_steps, int) and strategy.head_steps >= 0, f"{label}: head_steps must be an int >= 0"
    )

    class Linear3d(nn.Module):
        embed_dim, segments = 4, False

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x):
            return BackboneOutput(embedding=self.lin(x.flatten(1)[:, :8]), seg_logits=None)

    class Encoder(nn.Module):
        out_dim = 3

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(5, 3)

        def forward(self, x):
            return self.lin(x)

    rng = np.random.default_rng(0)

    def cases(n):
        labels = np.arange(n) % N_CLASSES
        images = [(labels[i] + rng.normal(0, 0.3, (1, 2, 2, 2))).astype(np.float32) for i in range(n)]
        clinical = (labels[:, None] + rng.normal(0, 1.0, (n, 5))).astype(np.float32)
        return CaseArrays([f"c{i}" for i in range(n)], clinical, labels, images)

    def concat(clinical_dim):
        return registry.fusions.create(
            "concat", image_dim=4, clinical_dim=clinical_dim, n_classes=N_CLASSES, head_hidden=8
        )

    torch.manual_seed(0)
    net = MultitaskNet(Linear3d(), Encoder(), concat(3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    config = TrainConfig(lr=1e-2, batch_size=4, max_epochs=epochs, patience=epochs, n_classes=N_CLASSES)
    result = train_network(
        net,
        schedule=registry.loss_schedules.create("cls-only"),
        seg_loss=None,
        cls_loss=nn.CrossEntropyLoss(),
        train=cases(12),
        valid=cases(6),
        config=config,
        balancing=strategy,
    )
    for row in result.history:
        _require(math.isfinite(row["train_loss"]), f"{label}: non-finite training loss {row['train_loss']}")
        for key, value in row.items():
            _require(
                value is None or isinstance(value, (int, float)),
                f"{label}: history value {key}={value!r} is not a number",
            )
    _require(any(not torch.equal(v, before[k]) for k, v in net.state_dict().items()), f"{label}: nothing was learned")
    hooks = [m for m in net.modules() if m._forward_hooks or m._forward_pre_hooks]
    _require(not hooks, f"{label}: forward hooks left on the network after training: {hooks}")
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    _require(not frozen, f"{label}: parameters left frozen after training: {frozen[:5]}")
    described = strategy.describe()
    _require(isinstance(described, dict) and described.get("name"), f"{label}: describe() must name the strategy")
    single = MultitaskNet(Linear3d(), None, concat(0))
    try:
        subject.build(**kwargs).setup(single, N_CLASSES)
    except ValueError as error:
        if subject.by_name:
            _require(label in str(error), f"{label}: refusing a single-modality network should name the strategy")
    _check_space(subject, **kwargs)
    return strategy


def check_loss_schedule(component, *, search_space: ss.SearchSpaceLike = None, **kwargs):
    """A loss schedule combines a segmentation and a classification loss into a differentiable total.

    ``uses_segmentation`` is a bool; ``combine(seg, cls)`` returns a finite scalar and
    ``{"w_seg", "w_cls"}`` floats; the total grows with the classification loss, and with the
    segmentation loss when that is used (else it ignores it); ``combine(None, cls)`` works;
    ``end_epoch`` with no tumor Dice (missing, None, NaN) leaves the weights unchanged; the state
    round-trips through ``state_dict``; a schedule that follows the Dice refuses one outside [0, 1]
    with ``ValueError``. Returns the built schedule.
    """
    subject = _subject("loss_schedules", component, search_space)
    label = subject.label
    schedule = subject.build(**kwargs)
    _require(isinstance(schedule, nn.Module), f"{label}: the factory must return an nn.Module")
    _require(isinstance(getattr(schedule, "uses_segmentation", None), bool), f"{label}: .uses_segmentation: bool")

    def combined(seg_value: float | None, cls_value: float, module=schedule):
        seg = None if seg_value is None else torch.tensor(seg_value, requires_grad=True)
        cls = torch.tensor(cls_value, requires_grad=True)
        total, weights = module.combine(seg, cls)
        return seg, cls, total, weights

    seg, cls, total, weights = combined(0.7, 1.3)
    _require(isinstance(total, torch.Tensor) and total.dim() == 0, f"{label}: combine must return a scalar tensor")
    _require(bool(torch.isfinite(total)), f"{label}: non-finite total")
    _require(
        isinstance(weights, dict) and set(weights) == {"w_seg", "w_cls"},
        f"{label}: combine must report {{'w_seg', 'w_cls'}}, got {weights!r}",
    )
    _require(all(isinstance(v, float) for v in weights.values()), f"{label}: the reported weights must be floats")
    total.backward()
    _require(cls.grad is not None and float(cls.grad) > 0, f"{label}: the total must grow with the classification loss")
    if schedule.uses_segmentation and weights["w_seg"] > 0:
        _require(seg.grad is not None and float(seg.grad) > 0, f"{label}: the total must grow with the seg loss")
    if not schedule.uses_segmentation:
        _require(seg.grad is None or float(seg.grad) == 0, f"{label}: uses_segmentation=False but seg loss counts")
    alone = combined(None, 1.3)[2]
    _require(bool(torch.isfinite(alone)), f"{label}: combine(None, cls) must give a finite total")

    before = dict(schedule.current_weights())
    for stats in ({}, {"tumor_dice": None}, {"tumor_dice": math.nan}):
        schedule.end_epoch(stats)
        _require(schedule.current_weights() == before, f"{label}: end_epoch({stats}) must leave the weights alone")
    schedule.end_epoch({"tumor_dice": 0.8})
    follows_dice = schedule.current_weights() != before

    restored = subject.build(**kwargs)
    restored.load_state_dict(schedule.state_dict())
    _require(restored.current_weights() == schedule.current_weights(), f"{label}: state_dict does not round-trip")
    _require(
        torch.equal(combined(0.7, 1.3, restored)[2], combined(0.7, 1.3)[2]),
        f"{label}: a schedule restored from its state_dict combines differently",
    )
    if follows_dice:
        try:
            schedule.end_epoch({"tumor_dice": 1.5})
        except ValueError:
            pass
        else:
            raise AssertionError(f"{label}: a tumor Dice of 1.5 must be refused with ValueError")
    _check_space(subject, **kwargs)
    return schedule


def check_recipe(
    component,
    *,
    search_space: ss.SearchSpaceLike = None,
    cohort=None,
    ctx: FitContext | None = None,
    **kwargs,
):
    """A model recipe builds a ``ResectabilityModel`` and (given a ``cohort``) fits and predicts.

    Without a cohort: the factory returns a ``ResectabilityModel`` with a known ``mask_source`` and a
    ``needs()`` that is a ``Needs`` (masks on every case for an oracle),
    an empty ``history`` list; an unknown hyper-parameter is refused; one
    configuration sampled from the search space builds. With a ``cohort``: fitted on its first two
    thirds, ``predict_proba`` on the rest is ``(n, 3)``, finite, non-negative, rows summing to 1,
    in ``case_ids`` order (reversed cases give reversed rows), and - unless the recipe declares
    oracle masks - the same without masks; ``n_parameters()`` is a non-negative int. Returns the (fitted) recipe.
    """
    subject = _subject("models", component, search_space)
    label = subject.label
    model = subject.build(**kwargs)
    _require(isinstance(model, ResectabilityModel), f"{label}: the factory must return a ResectabilityModel")
    _require(model.mask_source in MASK_SOURCES, f"{label}: mask_source {model.mask_source!r} not in {MASK_SOURCES}")
    _require(model.history == [], f"{label}: history must start as an empty list")
    from .models.needs import Needs

    needs = model.needs(None)
    _require(isinstance(needs, Needs), f"{label}: needs() must return a resectbench.models.needs.Needs, got {needs!r}")
    _require(
        model.mask_source != "oracle" or needs.masks == "every case",
        f"{label}: an oracle reads the reference masks of every case; needs() must say masks='every case'",
    )
    try:
        subject.build(**kwargs, not_a_hyper_parameter=1)
    except (RegistryError, TypeError, ValueError):
        pass
    else:
        raise AssertionError(f"{label}: an unknown hyper-parameter must be refused")
    _check_space(subject, **kwargs)
    if cohort is None:
        return model

    ctx = ctx or FitContext(seed=0)
    ids = list(cohort.case_ids)
    cut = max(1, (2 * len(ids)) // 3)
    train, test = cohort.subset(ids[:cut]), cohort.subset(ids[cut:])
    _require(model.fit(train, None, ctx) is model, f"{label}: fit must return the recipe itself")
    proba = np.asarray(model.predict_proba(test, ctx))
    n = len(test.case_ids)
    _require(proba.shape == (n, N_CLASSES), f"{label}: predict_proba shape {proba.shape}, expected {(n, N_CLASSES)}")
    _require(
        bool(np.isfinite(proba).all()) and bool((proba >= 0).all()), f"{label}: probabilities must be finite, >= 0"
    )
    _require(np.allclose(proba.sum(1), 1.0, atol=1e-5), f"{label}: probability rows must sum to 1")
    backwards = np.asarray(model.predict_proba(cohort.subset(ids[cut:][::-1]), ctx))
    _require(np.allclose(backwards, proba[::-1], atol=1e-6), f"{label}: rows must follow the cohort's case_ids order")
    table = getattr(test, "table", None)
    if model.mask_source != "oracle" and table is not None and "mask" in table and dataclasses.is_dataclass(test):
        blind = dataclasses.replace(test, table=table.assign(mask=None))
        _require(
            np.allclose(np.asarray(model.predict_proba(blind, ctx)), proba, atol=1e-6),
            f"{label}: predictions must not use masks (mask_source={model.mask_source!r})",
        )
    _require(isinstance(model.history, list), f"{label}: history must be a list")
    _require(isinstance(model.n_parameters(), int) and model.n_parameters() >= 0, f"{label}: n_parameters() >= 0")
    return model
