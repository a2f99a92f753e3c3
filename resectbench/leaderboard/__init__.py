"""Leaderboards and reports: pure functions of run directories (docs/results-format.md).

Public API::

    from resectbench.leaderboard import load_runs, build_leaderboard, render, write_report
    runs = load_runs(["runs/a", "runs/b"])           # merges only when data and splits match
    board = build_leaderboard(runs, rank_by="auc_ovr_macro", reference=None, auc_test="delong")
    print(render(board, "markdown"))                  # terminal | markdown | csv | latex | json | html
    write_report(runs, "report.html")                 # one self-contained HTML file + PNG figures
"""

from .board import Comparison, Leaderboard, Row, build_leaderboard
from .errors import LeaderboardError
from .runs import ModelResults, RunResults, load_run, load_runs, merge_runs

__all__ = [
    "Comparison",
    "Leaderboard",
    "Row",
    "build_leaderboard",
    "LeaderboardError",
    "ModelResults",
    "RunResults",
    "load_run",
    "load_runs",
    "merge_runs",
]
