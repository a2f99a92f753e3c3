"""Fitted networks shared between the rows of a run: one fit per (recipe, parameters, cases, seed, profile).

An ``expert-ensemble`` row beside its own image-only row would otherwise train the same image network
twice (the expert gets the fit's seed and training part, so it *is* the row's model). Where the protocol
gives a store (``FitContext.fitted_store``: ``RUN_DIR/cache/fitted`` when the run has a model made of
experts), :func:`fit_shared` saves each fitted network recipe under a key of everything that decides the
fit - registry name, parameters (those equal to the factory's defaults left out, so ``lr=None`` given and
not given are one fit), training and validation case ids with the cohort's content fingerprint, seed,
profile, device and resectbench version - and a later request for the same key loads it
(:mod:`.persist`: weights only) with its history and head-refit summary instead of training. Table-only
recipes fit in seconds and are not stored.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .. import registry
from .._version import __version__
from . import persist
from .base import FitContext

DONE = "DONE"
EXTRAS = "fit.json"  # history and head-refit summary: what the protocol reads off a fitted model


def effective_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without the entries equal to the factory's default (they make the same model)."""
    defaults = {
        n: p.default
        for n, p in registry.models.get(name).parameters().items()
        if p.default is not inspect.Parameter.empty
    }
    return {k: v for k, v in sorted(params.items()) if not (k in defaults and defaults[k] == v)}


def fit_key(name: str, params: dict[str, Any], train, valid, ctx: FitContext) -> str:
    payload = {
        "recipe": name,
        "params": effective_params(name, params),
        "train": [str(c) for c in train.case_ids],
        "valid": None if valid is None else [str(c) for c in valid.case_ids],
        "data": [getattr(train, "fingerprint", None), getattr(valid, "fingerprint", None)],
        "seed": ctx.seed,
        "profile": ctx.profile.to_dict(),
        "device": ctx.device,
        "version": __version__,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return f"{name}-{hashlib.sha256(blob).hexdigest()[:16]}"


def fit_shared(name: str, params: dict[str, Any], train, valid, ctx: FitContext):
    """``registry.models.create(name, **params)`` fitted on ``train`` / ``valid`` - or, when ``ctx`` has a
    store that already holds this fit, loaded from it. Returns the fitted model; ``model.reused`` is True
    for a loaded one."""
    model = registry.models.create(name, **params)
    store = getattr(ctx, "fitted_store", None)
    if store is None or not persist.is_network_recipe(model):
        fitted = model.fit(train, valid, ctx)
        return fitted if fitted is not None else model
    folder = Path(store) / fit_key(name, params, train, valid, ctx)
    if (folder / DONE).exists():
        try:
            loaded = persist.load_model(folder, lambda: registry.models.create(name, **params), ctx)
            _restore_extras(loaded, json.loads((folder / EXTRAS).read_text()))
            loaded.reused = True
            return loaded
        except (persist.ModelStateError, OSError, ValueError):
            pass  # unreadable (a crash mid-write, an older format): fit again and replace it
    fitted = model.fit(train, valid, ctx)
    fitted = fitted if fitted is not None else model
    _save(fitted, folder, train, valid)
    return fitted


def _save(model, folder: Path, train, valid) -> None:
    """Written beside the final name and renamed into place: a reader sees a whole fit or none."""
    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    persist.save_model(model, partial, train_ids=train.case_ids, valid_ids=None if valid is None else valid.case_ids)
    result = getattr(model, "fit_result", None)
    extras = {"history": list(model.history or []), "head_refit": getattr(result, "head_refit", None)}
    (partial / EXTRAS).write_text(json.dumps(extras, default=float))
    (partial / DONE).write_text("")
    try:
        if folder.exists():
            shutil.rmtree(folder)
        partial.rename(folder)
    except OSError:  # another process stored the same fit first: theirs is as good
        shutil.rmtree(partial, ignore_errors=True)


def _restore_extras(model, extras: dict) -> None:
    from .engine import FitResult

    model.history = list(extras.get("history") or [])
    model.fit_result = FitResult(history=model.history, head_refit=extras.get("head_refit"))
