"""Plugins: local modules, entry points (a real install of the example plugin), failures, disabling."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resectbench import plugins, registry as reg
from resectbench.cli.app import build_app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "plugins" / "resectbench-example"


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    """A clean plugin state with tmp_path importable; restored afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RESECTBENCH_PLUGINS", raising=False)
    monkeypatch.delenv("RESECTBENCH_DISABLE_PLUGINS", raising=False)
    plugins.reset()
    yield tmp_path
    plugins.reset()


def write_module(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source))


GOOD = """
    import typer
    from resectbench import hookimpl

    @hookimpl
    def register_fusions(registry):
        @registry.register("sum-fusion", tags=("test",))
        def sum_fusion(image_dim: int, clinical_dim: int, n_classes: int = 3):
            '''Adds things up.'''
            return ("sum", image_dim, clinical_dim, n_classes)

    @hookimpl
    def register_commands(app):
        @app.command("hello-plugin")
        def hello():
            typer.echo("hello from the plugin")
"""

HALF_BROKEN = """
    from resectbench import hookimpl

    @hookimpl
    def register_fusions(registry):
        registry.register("half-fusion")(lambda image_dim, clinical_dim: None)

    @hookimpl
    def register_models(registry):
        raise RuntimeError("model registration exploded")
"""


def test_local_plugin_registers_components_and_commands(plugin_env, monkeypatch):
    write_module(plugin_env, "good_plugin", GOOD)
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "good_plugin")
    assert reg.fusions.create("sum-fusion", image_dim=4, clinical_dim=2) == ("sum", 4, 2, 3)
    assert reg.fusions.get("sum-fusion").provider == "good_plugin"
    record = {r.name: r for r in plugins.plugin_records()}["good_plugin"]
    assert record.status == "ok" and record.components["fusions"] == ["sum-fusion"]
    result = CliRunner().invoke(build_app(), ["hello-plugin"])
    assert result.exit_code == 0 and "hello from the plugin" in result.output


def test_failing_plugins_are_isolated_and_reported(plugin_env, monkeypatch):
    write_module(plugin_env, "raises_at_import", "raise ImportError('no such dependency: frobnicate')\n")
    write_module(plugin_env, "half_broken", HALF_BROKEN)
    write_module(plugin_env, "good_plugin", GOOD)
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "raises_at_import,half_broken,good_plugin")
    with pytest.warns(plugins.PluginWarning) as caught:
        plugins.ensure_loaded()
    messages = " ".join(str(w.message) for w in caught)
    assert "raises_at_import" in messages and "frobnicate" in messages
    assert "half_broken" in messages and "exploded" in messages
    records = {r.name: r for r in plugins.plugin_records()}
    assert records["raises_at_import"].status == "failed"
    assert records["half_broken"].status == "failed"
    assert "half-fusion" not in reg.fusions  # partial registrations are rolled back
    assert records["good_plugin"].status == "ok" and "sum-fusion" in reg.fusions
    assert records["resectbench"].status == "ok"
    app = build_app()
    out = CliRunner().invoke(app, ["plugins", "--json"])
    shown = {r["name"]: r for r in json.loads(out.stdout)}
    assert shown["half_broken"]["status"] == "failed" and "exploded" in shown["half_broken"]["error"]
    listed = CliRunner().invoke(app, ["list", "--json"])
    assert listed.exit_code == 0 and "sum-fusion" in listed.stdout


def test_disable_plugins(plugin_env, monkeypatch):
    write_module(plugin_env, "good_plugin", GOOD)
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "good_plugin")
    monkeypatch.setenv("RESECTBENCH_DISABLE_PLUGINS", "good_plugin")
    assert {r.name: r.status for r in plugins.plugin_records()}["good_plugin"] == "disabled"
    assert "sum-fusion" not in reg.fusions
    plugins.reset()
    monkeypatch.setenv("RESECTBENCH_DISABLE_PLUGINS", "all")
    records = {r.name: r.status for r in plugins.plugin_records()}
    assert records == {"resectbench": "ok", "good_plugin": "disabled"}  # built-ins stay


def test_plugin_option_on_the_command_line(plugin_env):
    write_module(plugin_env, "good_plugin", GOOD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_env), os.environ.get("PYTHONPATH", "")])}
    env.pop("RESECTBENCH_PLUGINS", None)
    run = subprocess.run(
        [sys.executable, "-m", "resectbench", "--plugin", "good_plugin", "hello-plugin"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "hello from the plugin" in run.stdout


def _cli(args, site: Path, **extra_env):
    env = {**os.environ, "PYTHONPATH": str(site), **extra_env}
    env.pop("RESECTBENCH_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "resectbench", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def example_site(tmp_path_factory):
    """Really install the example plugin (its own pyproject + entry point) into an isolated folder."""
    site = tmp_path_factory.mktemp("site")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode != 0:
        pytest.fail(f"installing the example plugin failed:\n{run.stderr}")
    return site


def test_installed_example_plugin_appears_everywhere(example_site):
    listed = _cli(["list", "--json"], example_site)
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    assert rows[("backbones", "example-tinycnn")]["provider"] == "example"
    assert rows[("fusions", "example-bilinear")]["provider"] == "example"
    assert rows[("models", "example-fusion")]["provider"] == "example"
    assert ("backbones", "swin-unetr") in rows  # built-ins unaffected

    shown = json.loads(_cli(["plugins", "--json"], example_site).stdout)
    example = next(r for r in shown if r["name"] == "example")
    assert example["status"] == "ok" and example["version"] == "0.1.0"
    assert example["components"]["commands"] == ["example-shapes"]

    shapes = _cli(["example-shapes", "--size", "16"], example_site)
    assert shapes.returncode == 0 and "embedding (2, 64) -> logits (2, 3)" in shapes.stdout

    described = _cli(["describe", "example-bilinear", "--json"], example_site)
    info = json.loads(described.stdout)
    assert info["provider"] == "example" and "rank_dim" in info["search_space"]

    disabled = json.loads(_cli(["plugins", "--json"], example_site, RESECTBENCH_DISABLE_PLUGINS="example").stdout)
    assert next(r for r in disabled if r["name"] == "example")["status"] == "disabled"


def test_installed_example_components_work_through_create(example_site):
    code = textwrap.dedent("""
        import torch
        from resectbench import backbones, fusions
        net = backbones.create("example-tinycnn", width=4, depth=2)
        out = net(torch.randn(2, 1, 16, 16, 16))
        fuse = fusions.create("example-bilinear", image_dim=net.embed_dim, clinical_dim=5, rank_dim=4)
        logits = fuse(out.embedding, torch.randn(2, 5))
        logits.sum().backward()
        assert logits.shape == (2, 3)
        assert all(p.grad is not None for p in net.parameters())
        print("ok", out.embedding.shape[1])
    """)
    env = {**os.environ, "PYTHONPATH": str(example_site)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok 64"


def test_broken_installed_plugin_does_not_break_the_cli(tmp_path):
    """An installed distribution whose entry point raises at import shows as failed; the rest works."""
    site = tmp_path / "site"
    dist = site / "broken_plugin-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[resectbench]\nbroken = broken_plugin_mod\n")
    (site / "broken_plugin_mod.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    shown = _cli(["plugins", "--json"], site)
    assert shown.returncode == 0, shown.stderr
    broken = next(r for r in json.loads(shown.stdout) if r["name"] == "broken")
    assert broken["status"] == "failed" and "broken on purpose" in broken["error"]
    assert broken["version"] == "1.2.3"
    assert "broken" in shown.stderr  # the warning names it
    listed = _cli(["list", "--json"], site)
    assert listed.returncode == 0 and json.loads(listed.stdout)


def test_a_plugin_exiting_at_import_or_failing_is_reported_and_adds_no_command(plugin_env, monkeypatch):
    """docs/security.md: failures are isolated. sys.exit() at import does not end the CLI; a plugin rolled
    back for a failing hook adds no command either; the others keep working."""
    write_module(plugin_env, "exits_at_import", "import sys\nsys.exit('bye')\n")
    write_module(
        plugin_env,
        "broken_with_command",
        HALF_BROKEN
        + """
    @hookimpl
    def register_commands(app):
        @app.command("from-broken")
        def from_broken():
            pass
""",
    )
    write_module(plugin_env, "good_plugin", GOOD)
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "exits_at_import,broken_with_command,good_plugin")
    with pytest.warns(plugins.PluginWarning):
        app = build_app()
    records = {r.name: r for r in plugins.plugin_records()}
    assert records["exits_at_import"].status == "failed" and "SystemExit" in records["exits_at_import"].error
    assert records["broken_with_command"].status == "failed"
    names = {c.name for c in app.registered_commands}
    assert "hello-plugin" in names and "from-broken" not in names
    assert CliRunner().invoke(app, ["hello-plugin"]).output.strip() == "hello from the plugin"


def test_a_plugin_clashing_with_a_command_name_is_rolled_back_whole(plugin_env, monkeypatch):
    """Nothing of a failed plugin stays half-registered: neither its components nor any of its commands."""
    write_module(
        plugin_env,
        "clashing",
        """
    import typer
    from resectbench import hookimpl

    @hookimpl
    def register_fusions(registry):
        registry.register("clash-fusion")(lambda image_dim, clinical_dim: None)

    @hookimpl
    def register_commands(app):
        @app.command("clash-extra")
        def extra():
            typer.echo("should not exist")

        @app.command("list")
        def my_list():
            typer.echo("not the real list")
    """,
    )
    write_module(plugin_env, "good_plugin", GOOD)
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "clashing,good_plugin")
    plugins.ensure_loaded()
    assert "clash-fusion" in reg.fusions  # its registry hooks alone were fine
    with pytest.warns(plugins.PluginWarning, match="clashing"):
        app = build_app()
    names = [c.name for c in app.registered_commands]
    assert "clash-extra" not in names and names.count("list") == 1 and "hello-plugin" in names
    assert "clash-fusion" not in reg.fusions and "sum-fusion" in reg.fusions
    records = {r.name: r for r in plugins.plugin_records()}
    assert records["clashing"].status == "failed" and "already taken" in records["clashing"].error
    assert records["clashing"].components == {}
    assert "list" in records["resectbench"].components["commands"]
    assert "not the real list" not in CliRunner().invoke(app, ["list", "fusions"]).output


def test_registry_snapshot_and_revert():
    reg.fusions.list()  # loaded
    before = reg.snapshot()
    reg.fusions.add(lambda image_dim, clinical_dim: None, name="tmp-fusion")
    reg.fusions.add(lambda image_dim, clinical_dim: None, name="concat", override=True)
    changes = reg.changes_since(before)
    assert set(changes["fusions"]) == {"tmp-fusion", "concat"} and changes["fusions"]["tmp-fusion"] is None
    reg.revert(changes)
    assert "tmp-fusion" not in reg.fusions and reg.fusions.get("concat") is before["fusions"]["concat"]
    assert reg.changes_since(before) == {}


def test_a_run_naming_a_component_of_a_failed_plugin_is_refused_before_any_work(plugin_env, monkeypatch):
    write_module(plugin_env, "fusion_plugin", "import frobnicate_missing_dependency\n")
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "fusion_plugin")
    run_dir = plugin_env / "run"
    with pytest.warns(plugins.PluginWarning):
        result = CliRunner().invoke(
            build_app(),
            ["run", "--model", "clinical-only", "--fusion", "my-fusion", "--run-dir", str(run_dir), "--no-progress"],
        )
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "unknown fusions 'my-fusion'" in out and "fusion_plugin" in out and "frobnicate" in out
    assert not run_dir.exists()
