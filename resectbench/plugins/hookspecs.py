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


@hookspec
def run_event(event, payload):
    """A benchmark run's progress, in every process that computes units (``run``, ``--jobs`` and storage workers).

    ``event``: ``run_started``, ``unit_started``, ``trial_started``, ``epoch``, ``trial_finished``,
    ``trial_failed``, ``unit_finished`` or ``run_finished``; ``payload``: a plain dict (the plugin's own copy)
    with ``event``, ``run_dir`` and the event's fields (docs/tracking.md). Only observe: an exception is warned
    about once and the plugin then gets no more events of that run, which goes on unchanged.
    """
