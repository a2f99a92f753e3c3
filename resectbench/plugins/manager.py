"""Discovers, loads and reports plugins; failures are isolated per plugin.

Sources, in order: the built-in plugin; installed distributions with an entry point in the
``resectbench`` group; modules named in ``RESECTBENCH_PLUGINS`` (comma-separated) and the CLI's
``--plugin`` option. ``RESECTBENCH_DISABLE_PLUGINS`` (names, or ``all``) skips external ones.

Hooks are called through pluggy (``pm.subset_hook_caller``: one plugin at a time, so one plugin's
failure is its own). A plugin that fails is rolled back completely - its registry entries
(:func:`resectbench.registry.revert`), its CLI commands - and unregistered from pluggy, so nothing
of it stays half-registered. This module installs :func:`ensure_loaded` as the registry's loader.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import threading
import warnings
from dataclasses import asdict, dataclass, field

import pluggy

from .. import registry as reg
from ..errors import RegistryError
from . import builtin, hookspecs

BUILTIN_NAME = "resectbench"
REGISTRY_HOOKS = {
    "backbones": "register_backbones",
    "clinical_encoders": "register_clinical_encoders",
    "fusions": "register_fusions",
    "loss_schedules": "register_loss_schedules",
    "balancing": "register_balancing",
    "models": "register_models",
}


@dataclass
class PluginRecord:
    name: str
    source: str
    version: str = ""
    status: str = "ok"  # ok | failed | disabled
    error: str = ""
    components: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class PluginWarning(UserWarning):
    """A plugin failed to load or register; the rest of resectbench keeps working."""


_lock = threading.RLock()
_state: dict = {"loaded": False, "pm": None, "records": {}, "changes": {}, "extra_modules": []}


def add_local_plugins(modules: list[str]) -> None:
    """Load these modules as plugins too (the CLI's ``--plugin``). Reloads if already loaded."""
    with _lock:
        new = [m for m in modules if m and m not in _state["extra_modules"]]
        if new:
            _state["extra_modules"].extend(new)
            if _state["loaded"]:
                reset(keep_local=True)


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("RESECTBENCH_DISABLE_PLUGINS", "").split(",") if n.strip()}


def _candidates() -> list[tuple[str, str, str, callable]]:
    """(name, source, version, loader) for every external plugin, in load order."""
    found = []
    for ep in md.entry_points(group=hookspecs.PROJECT):
        dist = getattr(ep, "dist", None)
        version = dist.version if dist is not None else ""
        source = f"entry point {ep.value}" + (f" ({dist.name})" if dist is not None else "")
        found.append((ep.name, source, version, ep.load))
    env_modules = [m.strip() for m in os.environ.get("RESECTBENCH_PLUGINS", "").split(",") if m.strip()]
    for module in env_modules:
        found.append((module, "module (RESECTBENCH_PLUGINS)", "", lambda m=module: importlib.import_module(m)))
    for module in _state["extra_modules"]:
        if module not in env_modules:
            found.append((module, "module (--plugin)", "", lambda m=module: importlib.import_module(m)))
    return found


def _only(pm: pluggy.PluginManager, hook: str, plugin):
    """The hook caller of ``hook`` restricted to ``plugin`` (pluggy's public subset API)."""
    return pm.subset_hook_caller(hook, remove_plugins=[p for p in pm.get_plugins() if p is not plugin])


def _register_plugin(pm: pluggy.PluginManager, name: str, plugin, record: PluginRecord) -> None:
    """Run one plugin's registry hooks; on failure undo its registrations and mark it failed."""
    token = reg.current_provider.set(name)
    before = reg.snapshot()
    try:
        for kind, hook in REGISTRY_HOOKS.items():
            _only(pm, hook, plugin)(registry=reg.REGISTRIES[kind])
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin may raise anything; report it by name
        _roll_back(pm, name, record, reg.changes_since(before), exc)
        return
    finally:
        reg.current_provider.reset(token)
    changes = reg.changes_since(before)
    _state["changes"][name] = changes
    record.components = {kind: list(names) for kind, names in changes.items()}


def _roll_back(
    pm: pluggy.PluginManager, name: str, record: PluginRecord, changes: reg.Changes, exc: BaseException
) -> None:
    """Undo everything ``name`` registered, drop it from pluggy and report it failed."""
    reg.revert(changes)
    _state["changes"].pop(name, None)
    record.components = {}
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    _fail(record, exc)


def _fail(record: PluginRecord, exc: BaseException) -> None:
    record.status = "failed"
    record.error = f"{type(exc).__name__}: {exc}"
    warnings.warn(
        f"resectbench plugin {record.name!r} ({record.source}) failed: {record.error}", PluginWarning, stacklevel=3
    )


def ensure_loaded() -> None:
    """Load every plugin once (idempotent, thread-safe)."""
    with _lock:
        if _state["loaded"]:
            return
        _state["loaded"] = True  # set first: hooks look components up while registering
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        records: dict[str, PluginRecord] = {}
        _state.update(pm=pm, records=records, changes={})

        from .._version import __version__

        record = records[BUILTIN_NAME] = PluginRecord(BUILTIN_NAME, "built-in", __version__)
        pm.register(builtin, name=BUILTIN_NAME)
        _register_plugin(pm, BUILTIN_NAME, builtin, record)

        disabled = _disabled()
        for name, source, version, load in _candidates():
            if name in records:
                continue
            record = records[name] = PluginRecord(name, source, version)
            if "all" in disabled or name in disabled:
                record.status = "disabled"
                continue
            try:
                plugin = load()
                pm.register(plugin, name=name)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - even sys.exit() at import is only reported
                _fail(record, exc)
                continue
            _register_plugin(pm, name, plugin, record)


def _command_names(commands, groups) -> list[str]:
    return [c.name or c.callback.__name__.replace("_", "-") for c in commands] + [g.name for g in groups]


def register_commands(app) -> None:
    """Let every loaded plugin add CLI sub-commands (the CLI registers its own first).

    A plugin whose hook raises, or which adds a command under a name already taken, is rolled back
    whole: its commands and its components are removed and it is reported failed; the rest works.
    """
    ensure_loaded()
    pm = _state["pm"]
    builtin_commands = _command_names(app.registered_commands, app.registered_groups)
    if BUILTIN_NAME in _state["records"] and builtin_commands:
        _state["records"][BUILTIN_NAME].components["commands"] = sorted(builtin_commands)
    for name, record in list(_state["records"].items()):
        plugin = pm.get_plugin(name)
        if plugin is None or record.status != "ok" or name == BUILTIN_NAME:
            continue
        commands, groups = list(app.registered_commands), list(app.registered_groups)
        taken = set(_command_names(commands, groups))
        try:
            _only(pm, "register_commands", plugin)(app=app)
            added = _command_names(app.registered_commands[len(commands) :], app.registered_groups[len(groups) :])
            clash = sorted({n for n in added if n in taken or added.count(n) > 1})
            if clash:
                raise RegistryError(
                    f"command name(s) {', '.join(clash)} already taken; a plugin may not replace a command"
                )
        except (Exception, SystemExit) as exc:  # noqa: BLE001
            app.registered_commands[:], app.registered_groups[:] = commands, groups
            _roll_back(pm, name, record, _state["changes"].get(name, {}), exc)
            continue
        if added:
            record.components["commands"] = sorted(added)


def plugin_manager() -> pluggy.PluginManager:
    """The loaded plugins' pluggy manager: to call a hook that is not a registry's (``run_event``), or to
    register an object on it (the MLflow logger, :mod:`resectbench.tracking`)."""
    ensure_loaded()
    return _state["pm"]


def plugin_records() -> list[PluginRecord]:
    ensure_loaded()
    return list(_state["records"].values())


def reset(keep_local: bool = False) -> None:
    """Forget everything loaded (tests, or after changing the plugin environment)."""
    with _lock:
        reg.clear_all()
        _state.update(loaded=False, pm=None, records={}, changes={})
        if not keep_local:
            _state["extra_modules"] = []


reg.set_loader(ensure_loaded)
