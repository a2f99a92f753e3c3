"""``list``, ``describe`` and ``plugins``: what is registered and where it came from."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ... import registry as reg
from ...errors import ResectbenchError
from ...plugins import plugin_records

console = Console()
#: below this console width `list` stacks tags and provider under the description
NARROW = 120


def list_cmd(
    kind: Optional[str] = typer.Argument(
        None,
        help="Component kind (backbones, clinical_encoders, fusions, loss_schedules, balancing, models) or a name pattern.",
    ),
    pattern: str = typer.Argument("*", help="fnmatch pattern on names, e.g. '*swin*'."),
    tag: Optional[list[str]] = typer.Option(None, "--tag", "-t", help="Only components carrying this tag."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """List registered components.

    Examples: resectbench list | resectbench list fusions | resectbench list models '*fusion*' |
    resectbench list '*swin*'
    """
    if kind is not None and kind not in reg.REGISTRIES:
        try:
            kinds = [reg.get_registry(kind).kind]
        except ResectbenchError:  # not a kind: treat it as a name pattern over all kinds
            kinds, pattern = list(reg.REGISTRIES), kind
    else:
        kinds = [kind] if kind else list(reg.REGISTRIES)
    rows = [reg.REGISTRIES[k].get(n) for k in kinds for n in reg.REGISTRIES[k].list(pattern, tags=tag)]
    costs = {e.name: _cost(e.name) for e in rows if e.kind == "models"}
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "kind": e.kind,
                        "tags": list(e.tags),
                        "provider": e.provider,
                        "description": e.description,
                        **({"cost": costs[e.name]} if e.kind == "models" else {}),
                    }
                    for e in rows
                ],
                indent=2,
            )
        )
        return
    # Text everywhere: descriptions are literal ("[a] and [b]" is not markup)
    if console.width >= NARROW:
        table = Table(title=f"resectbench components ({len(rows)})")
        for col in ("name", "kind"):
            table.add_column(col, no_wrap=True)
        table.add_column("tags", overflow="fold", max_width=24)
        table.add_column("provider", no_wrap=True)
        table.add_column("description", overflow="fold", ratio=1)
        for e in rows:
            cost = Text(f"\ncost: {costs[e.name]}", style="dim") if e.name in costs and e.kind == "models" else ""
            table.add_row(
                *(Text(x) for x in (e.name, e.kind, ", ".join(e.tags), e.provider)), Text(e.description) + cost
            )
        console.print(table)
        return
    # narrow terminal: one table per kind, tags and provider on a dim line under the description
    for k in kinds:
        entries = [e for e in rows if e.kind == k]
        if not entries:
            continue
        table = Table(title=f"{k} ({len(entries)})", title_justify="left")
        table.add_column("name", no_wrap=True)
        table.add_column("description", overflow="fold", ratio=1)
        for e in entries:
            cost = f"\ncost: {costs[e.name]}" if k == "models" else ""
            extra = Text(f"\ntags: {', '.join(e.tags) or '-'}; provider: {e.provider}{cost}", style="dim")
            table.add_row(Text(e.name), Text(e.description) + extra)
        console.print(table)


def describe_cmd(
    name: str = typer.Argument(..., help="Component name, e.g. swin-unetr."),
    kind: Optional[str] = typer.Option(None, "--kind", "-k", help="Kind, when a name exists in several."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Show a component's parameters, defaults, tags, search space and provider.

    Example: resectbench describe swinunetr-fusion
    """
    try:
        entry = reg.get_registry(kind).get(name) if kind else reg.find(name)
        info = reg.REGISTRIES[entry.kind].describe(name)
    except ResectbenchError as exc:
        console.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    console.print(f"[bold]{escape(info['name'])}[/bold] ({info['kind']}, provided by {escape(info['provider'])})")
    others = [k for k in reg.kinds_of(name) if k != info["kind"]]
    if others:
        console.print(f"[dim]also a component of kind {', '.join(others)}: use --kind to pick it[/dim]")
    console.print(Text(info["doc"] or info["description"]))
    console.print(Text(f"tags: {', '.join(info['tags']) or '-'}   factory: {info['factory']}"))
    if info["kind"] == "models":
        console.print(Text(f"cost: {_cost(info['name'])}"))
        console.print(Text(f"needs (cpu profile): {_needs_text(info['name'])}"))
    table = Table(title="parameters")
    for col in ("parameter", "default", "type", "tuned over"):
        table.add_column(col)
    space = info["search_space"]
    for pname, p in info["parameters"].items():
        table.add_row(
            *(
                Text(x)
                for x in (
                    pname,
                    "(required)" if p["required"] else repr(p["default"]),
                    str(p["annotation"]),
                    space.get(pname, ""),
                )
            )
        )
    console.print(table)
    extra = {k: v for k, v in space.items() if k not in info["parameters"]}
    if extra:
        console.print(Text("search space (nested): " + ", ".join(f"{k}: {v}" for k, v in extra.items())))


def _cost(name: str) -> str:
    from ...models.costs import cost_summary

    try:
        return cost_summary(name)
    except Exception as exc:  # noqa: BLE001 - a plugin recipe that cannot build with defaults
        return f"unknown ({type(exc).__name__}: {exc})"


def _needs_text(name: str) -> str:
    """What a model needs from a cohort under the cpu profile, in words."""
    from ...profiles import get_profile

    try:
        needs = reg.models.create(name).needs(get_profile("cpu"))
    except Exception as exc:  # noqa: BLE001 - as above
        return f"unknown ({type(exc).__name__}: {exc})"
    parts = [
        p for p, on in (("images", needs.images), ("clinical variables", needs.clinical), ("a GPU", needs.gpu)) if on
    ]
    if needs.masks != "none":
        parts.append(
            f"masks on {'the training cases' if needs.masks == 'training' else 'every case'}"
            + (f" naming {', '.join(needs.structures)}" if needs.structures else "")
        )
    return ", ".join(parts) or "nothing (class priors only)"


def plugins_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """Show loaded plugins: name, version, source, status and what each registered.

    Example: RESECTBENCH_DISABLE_PLUGINS=all resectbench plugins --json
    """
    records = plugin_records()
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    table = Table(title="resectbench plugins")
    for col in ("name", "version", "source", "status", "registered"):
        table.add_column(col, overflow="fold")
    colours = {"ok": "green", "failed": "red", "disabled": "yellow"}
    for r in records:
        status = Text(r.status, style=colours[r.status]) + Text(f": {r.error}" if r.error else "")
        registered = "; ".join(f"{k}: {', '.join(v)}" for k, v in r.components.items())
        table.add_row(Text(r.name), Text(r.version), Text(r.source), status, Text(registered))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("list")(list_cmd)
    app.command("describe")(describe_cmd)
    app.command("plugins")(plugins_cmd)
