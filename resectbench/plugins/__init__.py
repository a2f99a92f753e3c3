"""Plugin system: pluggy hooks, the built-in plugin, discovery and failure reporting."""

from .hookspecs import hookimpl, hookspec
from .manager import (
    PluginRecord,
    PluginWarning,
    add_local_plugins,
    ensure_loaded,
    plugin_manager,
    plugin_records,
    register_commands,
    reset,
)

__all__ = [
    "hookimpl",
    "hookspec",
    "PluginRecord",
    "PluginWarning",
    "add_local_plugins",
    "ensure_loaded",
    "plugin_manager",
    "plugin_records",
    "register_commands",
    "reset",
]
