"""`resectbench --version`, `list`, `describe` through the real Typer app."""

import json

import pytest
from typer.testing import CliRunner

from resectbench import __version__, plugins, registry as reg
from resectbench.cli.app import build_app
from resectbench.search_space import Categorical


@pytest.fixture
def app(monkeypatch):
    monkeypatch.delenv("RESECTBENCH_PLUGINS", raising=False)
    plugins.reset()
    plugins.ensure_loaded()

    def toy_fusion(image_dim: int, clinical_dim: int, n_classes: int = 3, hidden: int = 16):
        """A toy fusion registered by this test."""
        return None

    reg.fusions.register("toy-fusion", tags=("toy",), search_space={"hidden": Categorical([8, 16])})(toy_fusion)
    yield build_app()
    plugins.reset()


def test_version(app):
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_list_by_kind_pattern_and_tag(app):
    runner = CliRunner()
    rows = json.loads(runner.invoke(app, ["list", "fusions", "--json"]).stdout)
    assert {
        "name": "toy-fusion",
        "kind": "fusions",
        "tags": ["toy"],
        "provider": "user",
        "description": "A toy fusion registered by this test.",
    } in rows
    assert all(r["kind"] == "fusions" for r in rows)
    by_pattern = json.loads(runner.invoke(app, ["list", "toy-*", "--json"]).stdout)
    assert [r["name"] for r in by_pattern] == ["toy-fusion"]
    by_tag = json.loads(runner.invoke(app, ["list", "--tag", "toy", "--json"]).stdout)
    assert [r["name"] for r in by_tag] == ["toy-fusion"]
    table = runner.invoke(app, ["list", "fusion", "toy*"])  # singular kind alias, rich table
    assert table.exit_code == 0 and "toy-fusion" in table.output


def test_describe_shows_parameters_and_space(app):
    runner = CliRunner()
    info = json.loads(runner.invoke(app, ["describe", "toy-fusion", "--json"]).stdout)
    assert info["parameters"]["hidden"]["default"] == 16
    assert info["parameters"]["image_dim"]["required"] is True
    assert info["search_space"] == {"hidden": "{8, 16}"}
    text = runner.invoke(app, ["describe", "toy-fusion"])
    assert text.exit_code == 0 and "hidden" in text.output and "{8, 16}" in text.output


def test_describe_unknown_suggests(app):
    result = CliRunner().invoke(app, ["describe", "toy-fusoin"])
    assert result.exit_code == 2
    assert "toy-fusion" in result.output


def test_every_command_has_help_with_an_example(app):
    runner = CliRunner()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example" in result.output or "example" in result.output, f"`{name} --help` shows no example"


def test_list_prints_descriptions_literally_at_80_columns(app, monkeypatch):
    """Brackets in a description are text, not rich markup (low-rank-tensor: "[image, 1] and [clinical, 1]")."""
    from resectbench.cli.commands import components

    def bracketed(image_dim: int, clinical_dim: int, n_classes: int = 3):
        """Product of [a] and [b, 1] with [bold]no markup[/bold]."""
        return None

    reg.fusions.register("bracketed", tags=("toy",))(bracketed)
    for width in (80, 160):  # stacked (name | description) and the wide table
        monkeypatch.setattr(components.console, "_width", width)
        text = CliRunner().invoke(app, ["list", "fusions"]).stdout
        assert max(map(len, text.splitlines())) <= width
        for literal in ("[a]", "[b,", "[bold]no", "markup[/bold].", "[image,", "[clinical,"):  # markup would eat them
            assert literal in text, literal


def test_list_and_describe_show_what_a_model_costs_and_needs(monkeypatch):
    from resectbench.models import costs

    measured = {"cpu": {"swinunetr-fusion": {"seconds_per_fold": 380.0, "folds": 5, "run": "main-job"}}}
    monkeypatch.setattr(costs, "measured", lambda: measured)
    res = CliRunner().invoke(build_app(), ["list", "models", "--json"], catch_exceptions=False)
    listed = {row["name"]: row["cost"] for row in json.loads(res.output)}
    assert listed["swinunetr-fusion"] == "trains a swin-unetr network; 6.3 min per outer fold (cpu)"
    assert listed["geometric-rules"] == "trains a 3D segmenter; not measured on cpu"  # looks like a baseline, is not
    assert listed["geometric-rules-oracle"] == "no network; not measured" and listed["expert-ensemble"].startswith(
        "trains a swin-unetr network"
    )
    out = " ".join(CliRunner().invoke(build_app(), ["describe", "geometric-rules-oracle"]).output.split())
    assert "cost: no network" in out and "needs (cpu profile): images, masks on every case naming tumor, sma" in out
