"""The hooks a resectbench plugin may implement (entry-point group ``resectbench``).

Each ``register_*`` hook receives the registry of its kind and adds components to it, e.g.::

    @hookimpl
    def register_fusions(registry):
        registry.register("my-fusion", tags=("fusion",))(MyFusion)
"""

import pluggy

PROJECT = "resectbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_backbones(registry):
    """Add image backbones (``nn.Module`` factories) to ``registry``."""


@hookspec
def register_clinical_encoders(registry):
    """Add clinical-variable encoders to ``registry``."""


@hookspec
def register_fusions(registry):
    """Add fusion strategies to ``registry``."""


@hookspec
def register_loss_schedules(registry):
    """Add loss-weight schedules to ``registry``."""


@hookspec
def register_balancing(registry):
    """Add balancing strategies (how a multimodal network's branches are trained together) to ``registry``."""


@hookspec
def register_models(registry):
    """Add model recipes (what ``resectbench run --model`` evaluates) to ``registry``."""


@hookspec
def register_commands(app):
    """Add Typer sub-commands to the ``resectbench`` CLI ``app``."""
