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

A recipe is stored as ``weights`` when it offers ``state()`` and ``load_state(description, tensors, ctx)``
(``NeuralRecipe`` does): ``state()`` returns a JSON-able description and named state dicts, this module
writes them (``net`` -> ``weights.pt``, ``localiser`` -> ``localiser.pt``) and reads them back.

A recipe made of other fitted recipes (``expert-ensemble``: a dict ``experts`` of role -> recipe) is
stored as ``ensemble``: each expert in ``experts/<role>/`` by the rules above, read back into the
experts of a freshly created recipe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..errors import ResectbenchError
from .base import FitContext

STATE_FILE = "state.json"
EXPERTS_DIR = "experts"
WEIGHTS = "weights.pt"
LOCALISER = "localiser.pt"
STATE_VERSION = 1


class ModelStateError(ResectbenchError):
    """A saved model that cannot be read back (names the folder and the problem)."""


#: tensors a recipe's ``state()`` may return -> the file each is written to
TENSOR_FILES = {"net": WEIGHTS, "localiser": LOCALISER}
#: keys of state.json that persist itself writes (a recipe's description may use none of them)
RESERVED = ("version", "kind", "tensors", "train_ids", "valid_ids", "experts")
KINDS = ("weights", "refit", "ensemble")


def is_network_recipe(model) -> bool:
    return callable(getattr(model, "state", None)) and callable(getattr(model, "load_state", None))


def is_ensemble(model) -> bool:
    return isinstance(getattr(model, "experts", None), dict)


def save_model(model, folder: str | Path, *, train_ids, valid_ids) -> dict:
    """Write ``model``'s state under ``folder``; returns the description stored in ``state.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "train_ids": [str(c) for c in train_ids],
        "valid_ids": None if valid_ids is None else [str(c) for c in valid_ids],
    }
    if is_ensemble(model):
        for role, expert in model.experts.items():
            save_model(expert, folder / EXPERTS_DIR / role, train_ids=train_ids, valid_ids=valid_ids)
        state.update(kind="ensemble", experts=sorted(model.experts))
    elif is_network_recipe(model):
        from .engine.checkpoint import save_weights

        description, tensors = model.state()
        unknown = set(tensors) - set(TENSOR_FILES)
        if unknown or "net" not in tensors:
            raise ModelStateError(
                f"{type(model).__name__}.state() returned tensors {sorted(tensors)}; "
                f"expected 'net' and optionally {sorted(set(TENSOR_FILES) - {'net'})}"
            )
        clash = set(description) & set(RESERVED)
        if clash:
            raise ModelStateError(f"{type(model).__name__}.state() uses reserved key(s) {sorted(clash)}")
        for name, weights in tensors.items():
            save_weights(weights, folder / TENSOR_FILES[name])
        state.update(kind="weights", tensors=sorted(tensors), **description)
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
    if state.get("version") != STATE_VERSION or state.get("kind") not in KINDS:
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
    if state["kind"] == "ensemble":
        if not is_ensemble(model) or set(model.experts) != set(state["experts"]):
            raise ModelStateError(
                f"{folder}: saved experts {state['experts']} do not match {type(model).__name__}'s "
                f"{sorted(getattr(model, 'experts', None) or [])}"
            )
        for role in state["experts"]:
            expert = model.experts[role]
            model.experts[role] = load_model(
                folder / EXPERTS_DIR / role, lambda e=expert: e, ctx, development=development
            )
        return model
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
    """The recipe as its ``fit`` left it, through its ``load_state``: tensors read weights-only."""
    from .engine.checkpoint import load_weights

    names = state.get("tensors") or ["net"] + (["localiser"] if state.get("localiser") else [])
    tensors = {}
    for name in names:
        path = folder / TENSOR_FILES[name]
        try:
            tensors[name] = load_weights(path)
        except Exception as exc:  # noqa: BLE001 - torch raises several types for a bad file
            raise ModelStateError(f"{path}: cannot load the weights ({type(exc).__name__}: {exc})") from None
    description = {k: v for k, v in state.items() if k not in RESERVED}
    try:
        return model.load_state(description, tensors, ctx)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ModelStateError(
            f"{folder}: the saved state does not fit {type(model).__name__} ({type(exc).__name__}: {exc})"
        ) from None
