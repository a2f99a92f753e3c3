"""CLI conventions (issue 27): help readable at 80 columns; results on stdout, progress and logs on stderr,
as plain lines where stderr is not a terminal; no source locations, developer figures only with --verbose.

CliRunner sets ``env`` in os.environ during the call, and rich reads COLUMNS when the help's console is made,
so ``env={"COLUMNS": "80"}`` renders the help at 80 columns (checked: the panels' borders are 80 wide).
Click >= 8.2 keeps ``result.stdout`` and ``result.stderr`` apart (``result.output`` interleaves both).
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.cli.commands.run import LineProgress
from resectbench.protocol.events import Plan, Unit

HELPS = [("run",), ("worker",), ("data", "validate"), ("predict",)]
STAMPED = re.compile(r"\d\d:\d\d:\d\d ")  # a plain progress line starts with its time


def invoke(*args, env=None):
    return CliRunner().invoke(build_app(), list(map(str, args)), env=env, catch_exceptions=False)


def command(path):
    cmd = get_command(build_app())
    for name in path:
        cmd = cmd.commands[name]
    return cmd


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from resectbench.data.synth import tiny_cohort

    return tiny_cohort(tmp_path_factory.mktemp("conventions-data"), n=18).root


@pytest.mark.parametrize("path", HELPS, ids=" ".join)
def test_help_fits_80_columns_without_truncation(path):
    result = invoke(*path, "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) == 80  # really rendered at 80 columns
    assert "…" not in result.output, result.output
    options = [p for p in command(path).params if p.param_type_name == "option"]
    for spelling in [s for p in options for s in [*p.opts, *p.secondary_opts]]:  # each spelled out in full
        assert re.search(rf"(?<![\w-]){re.escape(spelling)}(?![\w-])", result.output), spelling


@pytest.mark.parametrize("path", [("run",), ("worker",)], ids=" ".join)
def test_run_and_worker_help_show_plain_metavars(path):
    text = invoke(*path, "--help", env={"COLUMNS": "80"}).output
    assert not re.search(r"<(list\[\w+\]|str|int|float)>", text), text
    assert text.count("<bool>") == 1  # only on --help, which Typer makes: flags show no placeholder


def test_documented_flag_spellings_still_work():
    # spellings used in tests/, docs/, README.md and benchmarks/
    run = {s for p in command(("run",)).params for s in [*p.opts, *p.secondary_opts]}
    assert {"--no-references", "--final-model", "--no-progress", "--skip-invalid", "--refit", "--no-refit"} <= run
    worker = {s for p in command(("worker",)).params for s in [*p.opts, *p.secondary_opts]}
    assert {"--wait", "--no-progress", "--storage", "--benchmark", "--results-dir"} <= worker


def test_refit_and_no_refit_together_are_refused(tmp_path):
    result = invoke("run", "-m", "dummy", "--refit", "--no-refit", "--run-dir", tmp_path / "run")
    assert result.exit_code == 2 and "--refit" in result.stderr
    assert not (tmp_path / "run").exists()


def run_tiny(tiny_data, run_dir, *more, env=None):
    args = ["run", "-m", "dummy", "--no-references", "--data", tiny_data, "--outer-folds", "3", "--run-dir", run_dir]
    result = invoke(*args, *more, env=env)
    assert result.exit_code == 0, result.output
    return result


def test_a_run_outside_a_terminal_logs_plain_lines_on_stderr_and_results_on_stdout(tiny_data, tmp_path):
    result = run_tiny(tiny_data, tmp_path / "run")
    log = result.stderr.splitlines()
    assert any(re.fullmatch(STAMPED.pattern + r"dummy fold_0_0: started", line) for line in log), result.stderr
    assert any(re.fullmatch(STAMPED.pattern + r"dummy fold_0_1 trial 0: complete .*", line) for line in log)
    assert any(re.fullmatch(STAMPED.pattern + r"dummy fold_0_2: macro-F1 .*", line) for line in log)
    assert "Leaderboard" in result.stdout and f"results: {tmp_path / 'run'}" in result.stdout
    assert "Leaderboard" not in result.stderr and not STAMPED.search(result.stdout)
    assert "run.py:" not in result.output and "\x1b[" not in result.stderr  # no source locations, no live display
    assert "protocol overhead" not in result.output


def test_verbose_adds_the_developer_figures_on_stderr(tiny_data, tmp_path):
    result = run_tiny(tiny_data, tmp_path / "run", "--verbose")
    assert "protocol overhead" in result.stderr and "protocol overhead" not in result.stdout


def test_a_run_on_a_terminal_draws_its_bars_on_stderr(tiny_data, tmp_path):
    result = run_tiny(tiny_data, tmp_path / "run", env={"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"})
    assert "units ->" in result.stderr and "ETA" in result.stderr  # the live bars
    assert "units ->" not in result.stdout and "ETA" not in result.stdout and "Leaderboard" in result.stdout
    assert "trial 0: complete" in result.stderr and "run.py:" not in result.stderr


UNIT = Unit("dummy", 0, 0)


def line_progress():
    buffer = io.StringIO()
    progress = LineProgress(Console(file=buffer, width=80))
    progress.run_started(Plan(units=(UNIT,), trials=2, max_epochs=10, refit=False), "runs/x")
    return progress, buffer


def test_plain_progress_prints_the_epoch_after_a_quiet_spell():
    progress, buffer = line_progress()
    progress.epoch(UNIT, 0, 0, {"val_macro_f1": 0.25})  # a line was just printed: nothing
    assert "epoch" not in buffer.getvalue()
    progress.QUIET_S = 0.0
    progress.epoch(UNIT, 0, 1, {"val_macro_f1": 0.5})
    assert "dummy fold_0_0 trial 0: epoch 2/10 val F1 0.500\n" in buffer.getvalue()
    progress.epoch(UNIT, "refit", 9, {})
    assert buffer.getvalue().endswith("dummy fold_0_0 final fit: epoch 10/10\n")


def test_plain_progress_prints_one_counted_message_per_phase_and_keeps_warnings():
    progress, buffer = line_progress()
    for i in range(1, 41):
        progress.message(f"validating the cohort: {i}/40 case{i:02d}")
    progress.message("warning: case07 has an oblique grid")
    progress.message("generating the embedded synthetic cohort: 1/18")
    progress.waiting([UNIT])
    progress.waiting([UNIT])  # polled again: no new line
    text = buffer.getvalue()
    assert text.count("validating the cohort") == 1 and "1/40 case01" in text
    assert "\nwarning: case07 has an oblique grid\n" in text  # as it came, at the start of its line
    assert "generating the embedded synthetic cohort: 1/18" in text
    assert text.count("waiting for 1 unit(s)") == 1
