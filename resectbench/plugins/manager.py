"""Discovers, loads and reports plugins; failures are isolated per plugin.

Sources, in order: the built-in plugin; installed distributions with an entry point in the
``resectbench`` group; modules named in ``RESECTBENCH_PLUGINS`` (comma-separated) and the CLI's
``--plugin`` option. ``RESECTBENCH_DISABLE_PLUGINS`` (names, or ``all``) skips external ones.
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
from . import builtin, hookspecs

BUILTIN_NAME = "resectbench"
REGISTRY_HOOKS = {
    "backbones": "register_backbones",
    "clinical_encoders": "register_clinical_encoders",
    "fusions": "register_fusions",
    "loss_schedules": "register_loss_schedules",
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
_state: dict = {"loaded": False, "pm": None, "records": {}, "extra_modules": []}


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


def _register_plugin(pm: pluggy.PluginManager, name: str, plugin, record: PluginRecord) -> None:
    """Run one plugin's registry hooks; on failure undo its registrations and mark it failed."""
    token = reg.current_provider.set(name)
    added: list[tuple[reg.Registry, str]] = []
    try:
        for kind, hook in REGISTRY_HOOKS.items():
            registry = reg.REGISTRIES[kind]
            impl = getattr(plugin, hook, None)
            if impl is None:
                continue
            before = set(registry._entries)
            try:
                impl(registry=registry)
            finally:
                new = sorted(set(registry._entries) - before)
                added += [(registry, n) for n in new]
                if new:
                    record.components[kind] = new
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin may raise anything; report it by name
        for registry, n in added:
            registry.unregister(n)
        record.components = {}
        _fail(record, exc)
    finally:
        reg.current_provider.reset(token)


def _fail(record: PluginRecord, exc: BaseException) -> None:
    record.status = "failed"
    record.error = f"{type(exc).__name__}: {exc}"
    warnings.warn(f"resectbench plugin {record.name!r} ({record.source}) failed: {record.error}",
                  PluginWarning, stacklevel=3)


def ensure_loaded() -> None:
    """Load every plugin once (idempotent, thread-safe)."""
    with _lock:
        if _state["loaded"]:
            return
        _state["loaded"] = True  # set first: hooks look components up while registering
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        records: dict[str, PluginRecord] = {}
        _state["pm"], _state["records"] = pm, records

        from .. import __version__

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


def register_commands(app) -> None:
    """Let every loaded plugin add CLI sub-commands; a failing plugin is reported, not fatal."""
    ensure_loaded()
    pm = _state["pm"]
    for name, record in _state["records"].items():
        plugin = pm.get_plugin(name)
        impl = getattr(plugin, "register_commands", None) if plugin is not None else None
        if impl is None or record.status != "ok":   # a failed plugin was rolled back: no commands either
            continue
        before = {c.name or c.callback.__name__ for c in app.registered_commands} | \
                 {g.name for g in app.registered_groups}
        try:
            impl(app=app)
        except (Exception, SystemExit) as exc:  # noqa: BLE001
            _fail(record, exc)
            continue
        after = {c.name or c.callback.__name__ for c in app.registered_commands} | \
                {g.name for g in app.registered_groups}
        if after - before:
            record.components["commands"] = sorted(after - before)


def plugin_records() -> list[PluginRecord]:
    ensure_loaded()
    return list(_state["records"].values())


def reset(keep_local: bool = False) -> None:
    """Forget everything loaded (tests, or after changing the plugin environment)."""
    with _lock:
        for registry in reg.REGISTRIES.values():
            registry._entries.clear()
        _state.update(loaded=False, pm=None, records={})
        if not keep_local:
            _state["extra_modules"] = []
