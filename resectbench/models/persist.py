"""Saving a fitted recipe and loading it back, without pickle.

Two kinds of state, chosen by what the recipe holds:

- ``weights``: a recipe with a network (``NeuralRecipe`` and everything composed from it) is saved as
  a weights-only checkpoint (``weights.pt``, read back with ``torch.load(weights_only=True)``), the
  cascade localiser's weights when there is one (``localiser.pt``), the training configuration and
  the fitted clinical preprocessing (its training rows and column kinds, refitted deterministically on
  load) as JSON. Loading needs no training data.
- ``refit``: any other recipe (scikit-learn baselines, geometric rules and features, ``dummy``) is
  fitted in milliseconds to seconds, so its state is the recipe, its parameters, the seed and the ids
  of the cases it was fitted on; loading fits it again on those cases of the development cohort
  (deterministic for a given seed), which therefore has to be readable.

``NeuralRecipe`` has no save/load of its own yet; :func:`_restore_network` rebuilds one through its
``build`` method and the attributes its ``fit`` sets (kept in one place here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..errors import ResectbenchError
from .base import FitContext

STATE_FILE = "state.json"
WEIGHTS = "weights.pt"
LOCALISER = "localiser.pt"
STATE_VERSION = 1


class ModelStateError(ResectbenchError):
    """A saved model that cannot be read back (names the folder and the problem)."""


def is_network_recipe(model) -> bool:
    return getattr(model, "net", None) is not None and hasattr(model, "build") and hasattr(model, "preprocessor")


def save_model(model, folder: str | Path, *, train_ids, valid_ids) -> dict:
    """Write ``model``'s state under ``folder``; returns the description stored in ``state.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "train_ids": [str(c) for c in train_ids],
        "valid_ids": None if valid_ids is None else [str(c) for c in valid_ids],
    }
    if is_network_recipe(model):
        from .engine.checkpoint import save_weights, snapshot

        save_weights(snapshot(model.net), folder / WEIGHTS)
        localiser = getattr(model, "localiser", None)
        if localiser is not None:
            save_weights(snapshot(localiser.net), folder / LOCALISER)
        state.update(
            kind="weights",
            in_features=int(model.preprocessor.n_features),
            segment=bool(model.net.segments),
            localiser=localiser is not None,
            train_config=model.config.to_dict(),
            clinical=model.preprocessor.to_state(),
        )
    else:
        state["kind"] = "refit"
    (folder / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")
    return {k: state[k] for k in ("kind", "version")}


def read_state(folder: str | Path) -> dict:
    path = Path(folder) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelStateError(f"{folder}: no saved model ({STATE_FILE} missing)") from None
    except json.JSONDecodeError as exc:
        raise ModelStateError(f"{path} is not valid JSON: {exc}") from None
    if state.get("version") != STATE_VERSION or state.get("kind") not in ("weights", "refit"):
        raise ModelStateError(f"{path}: unknown state version/kind {state.get('version')}/{state.get('kind')}")
    return state


def load_model(
    folder: str | Path,
    create: Callable[[], Any],
    ctx: FitContext,
    *,
    development: Callable[[], Any] | None = None,
):
    """The model saved under ``folder``. ``create()`` builds the recipe with its parameters; ``development()``
    returns the development cohort (needed only for ``refit`` state)."""
    folder = Path(folder)
    state = read_state(folder)
    model = create()
    if state["kind"] == "weights":
        return _restore_network(model, folder, state, ctx)
    if development is None:
        raise ModelStateError(f"{folder}: this model is stored as a refit recipe and needs its development cohort")
    cohort = development()
    missing = [c for c in state["train_ids"] + (state["valid_ids"] or []) if c not in set(cohort.case_ids)]
    if missing:
        raise ModelStateError(
            f"{folder}: the development cohort lacks case(s) {', '.join(missing[:5])} the model was fitted on"
        )
    valid = cohort.subset(state["valid_ids"]) if state["valid_ids"] is not None else None
    fitted = model.fit(cohort.subset(state["train_ids"]), valid, ctx)
    return fitted if fitted is not None else model


def _restore_network(model, folder: Path, state: dict, ctx: FitContext):
    """A NeuralRecipe as its ``fit`` leaves it: preprocessor, network, training config, resolved settings."""
    from ..data.clinical import ClinicalPreprocessor
    from ..vocabulary import resolve_device
    from .engine.checkpoint import load_weights
    from .engine.trainer import TrainConfig

    resolved = model._resolved(ctx)
    model.preprocessor = ClinicalPreprocessor.from_state(state["clinical"])
    net = model.build(int(state["in_features"]), resolved, segment=bool(state["segment"]))
    try:
        net.load_state_dict(load_weights(folder / WEIGHTS))
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a bad file
        raise ModelStateError(f"{folder / WEIGHTS}: cannot load the weights ({type(exc).__name__}: {exc})") from None
    model.net = net.eval()
    config = dict(state["train_config"])
    if config.get("patch_size") is not None:
        config["patch_size"] = tuple(config["patch_size"])
    config["device"] = resolve_device(ctx.device)
    model.config = TrainConfig(**config)
    model._resolved_cfg = resolved
    if state.get("localiser"):
        from .cascade import Localiser, SmallUNet

        localiser = Localiser(SmallUNet(), resolved["cascade"], ctx.cache_dir, config["device"])
        localiser.net.load_state_dict(load_weights(folder / LOCALISER))
        model.localiser, model._centres = localiser, {}
    return model
