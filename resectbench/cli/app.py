"""Builds the Typer app: global options, the built-in commands, then the commands plugins add through their hook."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import List, Optional

import typer

from .._version import __version__
from ..plugins import add_local_plugins, register_commands
from . import commands, signals

HELP = """Benchmark pancreatic cancer resectability models (CT + clinical data) under one protocol.

Examples:

  resectbench list                      # every registered component

  resectbench run --model swinunetr-fusion

  resectbench --plugin my_pkg.my_plugin list fusions
"""


def _version(value: bool):
    if value:
        typer.echo(f"resectbench {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        help=HELP,
        no_args_is_help=True,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def main_options(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
        plugin: Optional[List[str]] = typer.Option(
            None,
            "--plugin",
            metavar="MODULE",
            help="Load MODULE (importable path) as a plugin; repeatable. Same as RESECTBENCH_PLUGINS.",
        ),
    ):
        """Global options (they go before the command)."""
        if plugin:
            add_local_plugins(plugin)

    register_builtin_commands(app)
    register_commands(app)  # then the plugins' commands (a clash with a built-in name fails that plugin)
    return app


def register_builtin_commands(app: typer.Typer) -> None:
    """Every module in ``resectbench.cli.commands`` exposes ``register(app)``."""
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").register(app)


def _local_plugins_from_argv(argv: list[str]) -> list[str]:
    """``--plugin`` must be known before the app is built, so plugin commands can appear."""
    found = []
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
    return found


def main() -> None:
    signals.install()
    add_local_plugins(_local_plugins_from_argv(sys.argv[1:]))
    try:
        build_app()(prog_name="resectbench")
    except SystemExit as exc:
        # click ends an interrupted command with "Aborted!" and exit 1; keep 128 + signal for every command
        if signals.received() is not None and exc.code not in (0, None):
            raise SystemExit(128 + signals.received()) from None
        raise
