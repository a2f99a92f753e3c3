"""resectbench: benchmark pancreatic cancer resectability models from CT and clinical data."""

from ._version import __version__
from .plugins import hookimpl
from .registry import (
    REGISTRIES,
    backbones,
    clinical_encoders,
    fusions,
    get_registry,
    loss_schedules,
    models,
)


def create_model(name: str, /, **kwargs):
    """Build a registered model recipe (``resectbench list models``)."""
    # the registry by kind: the name ``models`` is also the subpackage resectbench.models, which takes the
    # package attribute once imported (as ``balancing``, the strategies' subpackage, does; its registry is
    # ``get_registry("balancing")``)
    return REGISTRIES["models"].create(name, **kwargs)


def list_components(kind: str | None = None, pattern: str = "*") -> dict[str, list[str]]:
    """Names of registered components per kind, filtered by an fnmatch pattern."""
    kinds = [get_registry(kind).kind] if kind else list(REGISTRIES)
    return {k: REGISTRIES[k].list(pattern) for k in kinds}


__all__ = [
    "__version__",
    "hookimpl",
    "create_model",
    "list_components",
    "backbones",
    "clinical_encoders",
    "fusions",
    "loss_schedules",
    "models",
    "get_registry",
    "REGISTRIES",
]
