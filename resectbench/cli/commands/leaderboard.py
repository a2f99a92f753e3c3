"""``resectbench leaderboard`` (compare models of one or more runs) and ``resectbench report`` (HTML)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.text import Text

from ...errors import OutputError, ResectbenchError

console = Console()
err_console = Console(stderr=True)


def _fail(exc: Exception):
    err_console.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
    raise typer.Exit(2)


def _check_output(option: str, output: Path | None) -> None:
    """Refuse, before reading any run, an output file option that names a folder."""
    if output is not None and output.is_dir():
        _fail(OutputError(f"{option} {output} is a folder; give the file to write"))


def leaderboard_cmd(
    run_dirs: List[Path] = typer.Argument(
        ..., help="Run directories (several merge only with the same data and splits)."
    ),
    fmt: str = typer.Option("terminal", "--format", "-f", help="terminal | markdown | csv | latex | json | html."),
    layout: str = typer.Option("full", "--layout", help="full, or paper (the paper's Table 1 and ablation tables)."),
    rank_by: str = typer.Option(
        "auc_ovr_macro",
        "--rank-by",
        help="Metric to rank by: auc_ovr_macro, macro_f1, accuracy, balanced_accuracy, "
        "f1_<class>, ece, brier, dice_<structure>.",
    ),
    reference: Optional[str] = typer.Option(
        None, "--reference", help="Model every other is tested against (default: the best fair entry)."
    ),
    auc_test: str = typer.Option("delong", "--auc-test", help="Paired test of pooled macro AUC: delong | bootstrap."),
    bayesian: bool = typer.Option(False, "--bayesian", help="Add the Bayesian correlated t-test with a ROPE."),
    rope: float = typer.Option(0.01, "--rope", help="Region of practical equivalence for --bayesian."),
    n_boot: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples for the pooled 95 % intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of the terminal."),
):
    """Rank the models of one or more run directories, with intervals and significance tests.

    Examples: resectbench leaderboard runs/pdac | resectbench leaderboard runs/a runs/b -f markdown |
    resectbench leaderboard runs/paper --layout paper -f latex -o table1.tex
    """
    from ...leaderboard import build_leaderboard, load_runs
    from ...leaderboard.formats import render, terminal_renderable

    _check_output("--output", output)
    try:
        board = build_leaderboard(
            load_runs(run_dirs),
            rank_by=rank_by,
            reference=reference,
            auc_test=auc_test,
            bayesian=bayesian,
            rope=rope,
            n_boot=n_boot,
            seed=seed,
        )
        if fmt == "terminal" and output is None:
            console.print(terminal_renderable(board, layout, console.width))
            return
        text = render(board, fmt, layout)
    except ResectbenchError as exc:
        _fail(exc)
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:  # a parent that is a file, no permission, a full disk
            _fail(OutputError(f"--output {output}: cannot write it ({exc.strerror or exc})"))
        err_console.print(f"wrote {output}")


def report_cmd(
    run_dirs: List[Path] = typer.Argument(..., help="Run directory (or several with the same data and splits)."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write; figures go next to it."),
    rank_by: str = typer.Option("auc_ovr_macro", "--rank-by", help="Metric to rank by."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Reference model of the comparisons."),
    auc_test: str = typer.Option("delong", "--auc-test", help="delong | bootstrap."),
    n_boot: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples for the pooled intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
):
    """Write one self-contained HTML report (figures embedded) and the figures as PNG files.

    Example: resectbench report runs/pdac --out runs/pdac/report.html
    """
    from ...leaderboard import load_runs
    from ...leaderboard.report import write_report

    _check_output("--out", out)
    try:
        with console.status("rendering figures"):
            result = write_report(
                load_runs(run_dirs),
                out,
                rank_by=rank_by,
                reference=reference,
                auc_test=auc_test,
                n_boot=n_boot,
                seed=seed,
            )
    except ResectbenchError as exc:
        _fail(exc)
    console.print(f"wrote {result.html} and {len(result.figures)} figures in {result.figure_dir}")


def register(app: typer.Typer) -> None:
    app.command("leaderboard")(leaderboard_cmd)
    app.command("report")(report_cmd)
