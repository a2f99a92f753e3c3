"""Every output format and the `resectbench leaderboard` command, on fabricated run directories."""

import io
import json

import pandas as pd
import pytest
from leaderboard_helpers import STANDARD, fabricate_run
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.leaderboard import LeaderboardError, build_leaderboard, load_runs
from resectbench.leaderboard.formats import render


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmt")
    models = {
        **STANDARD,
        "swinunetr-fusion": (2.0, "swinunetr-fusion", "predicted"),
        "oracle-rules": (4.0, "geometric-rules", "oracle"),
    }
    return build_leaderboard(load_runs([fabricate_run(root / "run", models)]), n_boot=100, bayesian=True)


def test_markdown_has_every_model_best_in_bold_and_notes(board):
    text = render(board, "markdown")
    for label in ("strong", "weak", "dummy (chance)", "oracle-rules (oracle masks)", "ceiling (Bayes-optimal)"):
        assert label in text
    strong = board.row("strong")
    assert f"**{strong.mean['auc_ovr_macro']:.3f} ± {strong.sd['auc_ovr_macro']:.3f}**" in text
    assert "collapsed: always predicts" in text and "### Comparisons" in text


def test_latex_is_booktabs_with_pm_and_bold_best(board):
    text = render(board, "latex")
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text
    assert r"$\pm$" in text and r"\textbf{" in text
    strong = board.row("strong")
    assert rf"\textbf{{{strong.mean['macro_f1']:.3f} $\pm$ {strong.sd['macro_f1']:.3f}}}" in text
    assert "_" not in text.replace(r"\_", "").split("tabular", 1)[1].split(r"\end{table}")[0]  # escaped


def test_csv_and_json_hold_the_numbers(board):
    frame = pd.read_csv(io.StringIO(render(board, "csv")))
    row = frame.set_index("model").loc["weak"]
    assert row["auc_ovr_macro_mean"] == pytest.approx(board.row("weak").mean["auc_ovr_macro"])
    assert row["p_auc_holm"] == pytest.approx(board.comparison("weak").p_auc_holm)
    data = json.loads(render(board, "json"))
    assert data["reference"] == "strong" and {r["label"] for r in data["rows"]} >= {"strong", "weak", "dummy"}
    assert data["rows"][-1]["kind"] == "ceiling"


def test_html_and_terminal(board):
    html = render(board, "html")
    assert html.startswith("<!DOCTYPE html>") and '<tr class="chance">' in html and "<strong>" in html
    text = render(board, "terminal")
    assert "strong" in text and "Comparisons" in text


def test_paper_layout_lists_the_paper_rows(board):
    text = render(board, "markdown", layout="paper")
    assert "Table 1: method comparison" in text and "Table 4: loss weighting" in text
    assert "0.86 ± 0.03" in text  # the paper's Swin-UNETR fusion AUC
    assert "not run" in text  # tat / geometric-features are not in this run
    fusion = board.row("swinunetr-fusion")
    assert f"{fusion.mean['auc_ovr_macro']:.2f} ± {fusion.sd['auc_ovr_macro']:.2f}" in text
    assert "Other models" in text and "strong" in text.split("Other models")[1]


def test_unknown_format_or_layout(board):
    with pytest.raises(LeaderboardError, match="unknown format"):
        render(board, "xlsx")
    with pytest.raises(LeaderboardError, match="unknown layout"):
        render(board, "markdown", layout="poster")


def test_cli_merges_runs_and_refuses_different_splits(tmp_path):
    a = fabricate_run(tmp_path / "a", {"strong": STANDARD["strong"], "dummy": STANDARD["dummy"]})
    b = fabricate_run(tmp_path / "b", {"weak": STANDARD["weak"]})
    c = fabricate_run(tmp_path / "c", {"other": STANDARD["weak"]}, split_seed=3)
    runner = CliRunner()
    app = build_app()
    ok = runner.invoke(app, ["leaderboard", str(a), str(b), "--format", "markdown", "--bootstrap", "100"])
    assert ok.exit_code == 0, ok.output
    assert "strong" in ok.output and "weak" in ok.output and "dummy (chance)" in ok.output
    out = tmp_path / "board.csv"
    ok = runner.invoke(
        app,
        [
            "leaderboard",
            str(a),
            str(b),
            "-f",
            "csv",
            "-o",
            str(out),
            "--bootstrap",
            "50",
            "--reference",
            "weak",
            "--auc-test",
            "bootstrap",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert set(pd.read_csv(out)["model"]) >= {"strong", "weak", "dummy"}
    bad = runner.invoke(app, ["leaderboard", str(a), str(c)])
    assert bad.exit_code == 2
    assert "split fingerprints differ" in bad.output and str(c) in bad.output.replace("\n", "")
    term = runner.invoke(app, ["leaderboard", str(a), "--bootstrap", "50", "--bayesian"])
    assert term.exit_code == 0 and "Leaderboard" in term.output


def test_terminal_at_80_columns_stacks_and_never_elides_a_number(board, tmp_path):
    """COLUMNS=80 (a real subprocess: rich reads the width at start): every line fits, no cell is cut to
    `0.…`, every number of the shown columns is there whole; markdown does not depend on the width."""
    import os
    import subprocess
    import sys

    from resectbench.leaderboard.formats import tables_for
    from resectbench.leaderboard.formats.terminal import OPTIONAL

    run = fabricate_run(
        tmp_path / "run", {**STANDARD, "swinunetr-fusion+late+fixed": (2.0, "swinunetr-fusion", "predicted")}
    )
    env = {**os.environ, "COLUMNS": "80", "LINES": "50"}
    cmd = [sys.executable, "-m", "resectbench", "leaderboard", str(run), "--bootstrap", "100"]
    text = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120).stdout
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in text
    assert "Leaderboard (1/" in text and "Details (1/" in text  # stacked, not squeezed
    shown = set(text.replace("│", " ").replace("┃", " ").split())
    hidden = tuple(p for w, prefixes in OPTIONAL if 80 < w for p in prefixes)
    b = build_leaderboard(load_runs([run]), n_boot=100)
    for t in tables_for(b)[:2]:  # main board and details
        for j, header in enumerate(t.headers):
            if header == "notes" or header.startswith(hidden):
                continue
            for row in t.rows:
                for token in row[j].split():  # "0.775", "±", "<0.001", "3/5": each whole
                    assert token in shown, (t.title, header, row[j])
    wide = render(b, "markdown")
    narrow = subprocess.run([*cmd, "--format", "markdown"], env=env, capture_output=True, text=True, timeout=120).stdout
    assert narrow == wide and "(1/" not in narrow
