"""The built-in components, registered through the same hooks as any third-party plugin.

Each hook scans one package for factories marked with :func:`resectbench.registry.component`,
so adding a built-in component is adding a file; no list here needs editing. The built-in CLI
commands are not registered here: the CLI adds its own (the library never imports the CLI), and
plugins add theirs through ``register_commands``.
"""

import importlib.util

from .hookspecs import hookimpl

PACKAGES = {
    "backbones": ["resectbench.models.backbones"],
    "clinical_encoders": ["resectbench.models.clinical"],
    "fusions": ["resectbench.fusion"],
    "loss_schedules": ["resectbench.losses.schedules"],
    "balancing": ["resectbench.balancing"],
    "models": ["resectbench.models.recipes", "resectbench.baselines"],
}


def _register(registry):
    for package in PACKAGES[registry.kind]:
        try:
            importlib.util.find_spec(package)
        except ModuleNotFoundError:  # a component package not present in this build
            continue
        if importlib.util.find_spec(package) is not None:
            registry.add_marked(package)


@hookimpl
def register_backbones(registry):
    _register(registry)


@hookimpl
def register_clinical_encoders(registry):
    _register(registry)


@hookimpl
def register_fusions(registry):
    _register(registry)


@hookimpl
def register_loss_schedules(registry):
    _register(registry)


@hookimpl
def register_balancing(registry):
    _register(registry)


@hookimpl
def register_models(registry):
    _register(registry)
