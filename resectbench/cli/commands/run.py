"""``resectbench run`` (benchmark models under the protocol) and ``resectbench worker`` (join one).

Results (the leaderboard, the run directory) go to stdout; progress, warnings and errors to stderr, so
``resectbench run ... > board.txt`` keeps the results alone.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ...errors import ResectbenchError
from .. import signals

# a counted progress message of the library ("validating the cohort: 3/40 case07"): group 1 is its phase
COUNTED = re.compile(r"(.*?): \d+/\d+")


class LineProgress:
    """A run's progress as plain timestamped lines (RunListener protocol, duck-typed: the library calls
    only these): for nohup, CI and pipes, where a live display draws nothing until it stops. Units started
    and finished, trials done, and the current epoch or counted step when nothing was printed for
    ``QUIET_S`` seconds."""

    QUIET_S = 30.0

    def __init__(self, console: Console):
        self.console = console
        self.max_epochs = None
        self.last_line = time.monotonic()
        self.phase = None  # of the last counted message
        self.n_waiting = None

    def line(self, *parts) -> None:
        """``parts``: text, or (text, style) pairs; never markup, as errors may hold brackets."""
        self.console.print(Text.assemble((time.strftime("%H:%M:%S "), "dim"), *parts), soft_wrap=True)
        self.last_line = time.monotonic()

    def quiet(self) -> bool:
        return time.monotonic() - self.last_line >= self.QUIET_S

    def run_started(self, plan, run_dir):
        self.max_epochs = plan.max_epochs
        self.line(f"{len(plan.units)} unit(s), {plan.trials} trial(s) each -> {run_dir}")

    def unit_skipped(self, unit, reason):
        self.line((f"{unit}: already done, skipped", "dim"))

    def unit_started(self, unit):
        self.line(f"{unit}: started")

    def trial_started(self, unit, trial):
        pass  # a trial gets its line when it is done

    def epoch(self, unit, trial, epoch, metrics):
        if self.quiet():
            self.line(f"{unit} {_trial(trial)}: epoch {epoch + 1}/{self.max_epochs}{_val_f1(metrics)}")

    def trial_finished(self, unit, trial, value, state):
        if trial != "refit":  # the unit's line follows at once
            shown = f"{value:.3f}" if value is not None else "-"
            self.line(f"{unit} trial {trial}: {state} (inner score {shown})")

    def trial_failed(self, unit, trial, error):
        self.line((f"{unit} trial {trial} failed", "red"), f": {error[:300]}")

    def unit_finished(self, unit, metrics):
        self.line(
            (str(unit), "green"),
            f": macro-F1 {metrics['macro_f1']:.3f}  AUC {_fmt(metrics.get('auc_ovr_macro'))}  "
            f"accuracy {metrics['accuracy']:.3f}",
        )

    def waiting(self, units):
        if len(units) != self.n_waiting:  # called on every poll: a line when another worker finished one
            self.n_waiting = len(units)
            self.line(f"waiting for {len(units)} unit(s) held by other workers")

    def message(self, text):
        if text.startswith("warning:"):
            self.console.print(Text("warning:", style="yellow") + Text(text[len("warning:") :]), soft_wrap=True)
            return
        counted = COUNTED.match(text)  # one per case: the first of each phase, then one per quiet spell
        if counted is None or counted[1] != self.phase or self.quiet():
            self.line(text)
        self.phase = counted[1] if counted else None


class BarProgress(LineProgress):
    """On a terminal: live bars (units with ETA > trials of the current unit > epochs of the current fit);
    the lines that stay (trials, units, warnings) are printed above them."""

    def __init__(self, console: Console, bars: Progress):
        super().__init__(console)
        self.bars, self.n_trials = bars, 1
        self.units = bars.add_task("units", total=None)
        self.trials = bars.add_task("trials", total=None, visible=False)
        self.epochs = bars.add_task("epochs", total=None, visible=False)

    def run_started(self, plan, run_dir):
        self.max_epochs, self.n_trials = plan.max_epochs, plan.trials
        self.bars.update(self.units, total=len(plan.units), description=f"units -> {run_dir}")

    def unit_skipped(self, unit, reason):
        self.bars.advance(self.units)
        super().unit_skipped(unit, reason)

    def unit_started(self, unit):
        self.bars.update(self.trials, total=self.n_trials + 1, completed=0, visible=True, description=f"{unit} trials")

    def trial_started(self, unit, trial):
        self.bars.update(
            self.epochs, total=self.max_epochs, completed=0, visible=True, description=f"{unit} {_trial(trial)} epochs"
        )

    def epoch(self, unit, trial, epoch, metrics):
        description = f"{unit} {_trial(trial)} epochs{_val_f1(metrics)}"
        self.bars.update(self.epochs, completed=epoch + 1, description=description)

    def trial_finished(self, unit, trial, value, state):
        self.bars.advance(self.trials)
        super().trial_finished(unit, trial, value, state)

    def unit_finished(self, unit, metrics):
        self.bars.advance(self.units)
        self.bars.update(self.epochs, visible=False)
        super().unit_finished(unit, metrics)

    def waiting(self, units):
        self.bars.update(self.trials, visible=False)
        self.bars.update(self.units, description=f"waiting for {len(units)} unit(s) held by other workers")

    def message(self, text):
        if text.startswith("warning:"):  # a line that stays, not overwritten by the next progress message
            super().message(text)
        else:
            self.bars.update(self.units, description=text[:80])


@contextmanager
def _progress(err: Console, enabled: bool):
    """Live bars where stderr is an interactive terminal (and --no-progress is not given), else plain lines."""
    if not (enabled and err.is_interactive):
        yield LineProgress(err)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err) as bars:
        yield BarProgress(err, bars)


def _trial(trial) -> str:
    return "final fit" if trial == "refit" else f"trial {trial}"


def _val_f1(metrics: dict) -> str:
    f1 = metrics.get("val_macro_f1")
    return f" val F1 {f1:.3f}" if isinstance(f1, (int, float)) else ""


def parse_params(items: list[str] | None) -> dict:
    """``["lr=0.003", "backbone.embedding=pooled"]`` -> ``{"lr": 0.003, "backbone.embedding": "pooled"}``."""
    import tomllib

    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE (e.g. lr=0.003)", param_hint="--param")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()  # a bare word: text
    return out


def _named(items: list[str] | None, option: str, what: str) -> list[tuple[str, str]]:
    """``["site_b=x.toml"]`` -> ``[("site_b", "x.toml")]``: a value for the external cohort of that name."""
    out = []
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise typer.BadParameter(
                f"{item!r} is not NAME={what} (NAME: the external cohort's name)", param_hint=option
            )
        out.append((name.strip(), value.strip()))
    return out


def _error(err: Console, exc: Exception, storage: str | None):
    """Print the error literally, the storage password masked wherever a driver message repeats it."""
    from ...protocol.coordination import scrub

    err.print(Text("error: ", style="red") + Text(scrub(str(exc), storage)), soft_wrap=True)
    raise typer.Exit(2)


def _by(exc: KeyboardInterrupt) -> str:
    return f" by {exc.args[0]}" if isinstance(exc, signals.Interrupted) else ""


def _fmt(value) -> str:
    return "nan" if value is None or value != value else f"{value:.3f}"


def print_summary(result, out: Console, err: Console, verbose: bool) -> None:
    """The leaderboard (resectbench.leaderboard) of the run on ``out``; the small mean +- SD table if that
    fails. Notes on the session go to ``err``."""
    try:
        from ...leaderboard import build_leaderboard, load_run
        from ...leaderboard.formats import terminal_renderable

        board = build_leaderboard(load_run(result.run_dir), n_boot=200)
        out.print(terminal_renderable(board, width=out.width))
        _print_notes(result, err, verbose)
        return
    except ImportError:
        pass
    except Exception as exc:  # noqa: BLE001 - the fallback table below is always available
        err.print(f"[yellow]leaderboard unavailable ({type(exc).__name__}: {exc}); summary:[/yellow]")
    table = Table(title=f"summary: mean ± SD over outer folds ({result.run_dir})")
    for col in ("model", "folds", "macro-F1", "AUC (OvR macro)", "accuracy", "balanced acc."):
        table.add_column(col, justify="left" if col == "model" else "right")
    for _, row in result.summary.iterrows():
        cells = [
            f"{row[f'{m}_mean']:.3f} ± {row[f'{m}_sd']:.3f}"
            if row[f"{m}_sd"] == row[f"{m}_sd"]
            else _fmt(row[f"{m}_mean"])
            for m in ("macro_f1", "auc_ovr_macro", "accuracy", "balanced_accuracy")
        ]
        table.add_row(str(row["model"]), str(row["folds"]), *cells)
    out.print(table)
    _print_notes(result, err, verbose)


def _print_notes(result, err: Console, verbose: bool) -> None:
    share = result.manifest.get("last_session", {}).get("protocol_overhead_share")
    cache = result.manifest.get("cache", {})
    notes = []
    if cache.get("hit_rate") is not None:
        notes.append(f"preprocessing cache hit rate {100 * cache['hit_rate']:.0f}%")
    if verbose and share is not None:  # a figure for developers of the protocol, not for its users
        notes.append(f"protocol overhead {100 * share:.1f}% of this session's wall time")
    if notes:
        err.print("; ".join(notes))


# help panels; options without one (--config, --profile, --help) come first, under "Options"
MODELS, DATA, PROTOCOL, EXTERNAL, EXECUTION, OUTPUT = (
    "Models",
    "Data",
    "Protocol",
    "External validation",
    "Execution",
    "Output",
)
FLAG = ""  # metavar of a flag: it takes no value, so no "<bool>" in the help


def run_cmd(
    config: Optional[Path] = typer.Option(
        None,
        "--config",
        "-c",
        metavar="FILE",
        help="TOML experiment file (models, protocol, data); the options below override it.",
    ),
    profile: Optional[str] = typer.Option(
        None,
        "--profile",
        metavar="NAME",
        help="Compute profile. cpu (default): image models see a 1.5 mm window around the tumour a localiser "
        "predicted, 10 epochs, 3 jobs. cpu-cascade: the same view, 16 epochs, a 30-epoch localiser, 1 job. "
        "cpu-whole: the whole view at 3 mm (fast; image models learn little). paper: GPU.",
    ),
    model: Optional[List[str]] = typer.Option(
        None,
        "--model",
        "-m",
        metavar="MODEL",
        rich_help_panel=MODELS,
        help="Registered model recipe; repeatable. `resectbench list models` shows them.",
    ),
    param: Optional[List[str]] = typer.Option(
        None,
        "--param",
        metavar="KEY=VALUE",
        rich_help_panel=MODELS,
        help="Fix a hyper-parameter of the models given (not of the reference rows); repeatable. The value is "
        "read as TOML (0.003, true, [64, 64, 64]), else as text: backbone.embedding=pooled.",
    ),
    no_references: bool = typer.Option(
        False,
        "--no-references",
        metavar=FLAG,
        rich_help_panel=MODELS,
        help="Do not add the reference rows (dummy = chance, clinical-sklearn; seconds) beside the models "
        "given here; an experiment file's list is kept as written anyway.",
    ),
    backbone: Optional[str] = typer.Option(
        None, "--backbone", metavar="NAME", rich_help_panel=MODELS, help="Compose a neural model: image backbone."
    ),
    fusion: Optional[str] = typer.Option(
        None, "--fusion", metavar="NAME", rich_help_panel=MODELS, help="Compose a neural model: fusion strategy."
    ),
    clinical_encoder: Optional[str] = typer.Option(
        None,
        "--clinical-encoder",
        metavar="NAME",
        rich_help_panel=MODELS,
        help="Compose a neural model: clinical encoder.",
    ),
    loss_schedule: Optional[str] = typer.Option(
        None,
        "--loss-schedule",
        metavar="NAME",
        rich_help_panel=MODELS,
        help="Compose a neural model: loss schedule.",
    ),
    balancing: Optional[str] = typer.Option(
        None,
        "--balancing",
        metavar="NAME",
        rich_help_panel=MODELS,
        help="Compose a neural model: how its image and clinical branches train together.",
    ),
    data: Optional[Path] = typer.Option(
        None,
        "--data",
        metavar="PATH",
        rich_help_panel=DATA,
        help="Cohort: MSD/nnU-Net folder or manifest CSV (default: the embedded synthetic cohort).",
    ),
    data_dictionary: Optional[Path] = typer.Option(
        None,
        "--data-dictionary",
        metavar="FILE",
        rich_help_panel=DATA,
        help="Data dictionary (CSV/TOML/JSON: value maps, units, missing tokens) used instead of the dataset's "
        "data_dictionary.csv.",
    ),
    allow_missing_variable: Optional[List[str]] = typer.Option(
        None,
        "--allow-missing-variable",
        metavar="NAME",
        rich_help_panel=DATA,
        help="Accept a clinical table without a column for this data_dictionary.csv variable; repeatable, "
        "recorded in the manifest.",
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        metavar=FLAG,
        rich_help_panel=DATA,
        help="Exclude invalid cases (recorded in the manifest, shown on the leaderboard) instead of refusing "
        "the cohort.",
    ),
    outer_folds: Optional[int] = typer.Option(
        None,
        "--outer-folds",
        metavar="N",
        rich_help_panel=PROTOCOL,
        help="Outer stratified folds (default 5, or the number in --folds).",
    ),
    folds: Optional[Path] = typer.Option(
        None,
        "--folds",
        metavar="FILE",
        rich_help_panel=PROTOCOL,
        help="Use these outer folds instead of making them (e.g. the folds a segmenter was trained on): "
        "nnU-Net's splits_final.json, or a CSV with columns case_id,fold. Checked to test every case once.",
    ),
    repeats: Optional[int] = typer.Option(
        None, "--repeats", metavar="N", rich_help_panel=PROTOCOL, help="Repeats of the outer K-fold (default 1)."
    ),
    inner: Optional[str] = typer.Option(
        None,
        "--inner",
        metavar="KIND",
        rich_help_panel=PROTOCOL,
        help="Inner tuning split: holdout (80/20, the paper; default) or kfold.",
    ),
    inner_folds: Optional[int] = typer.Option(
        None, "--inner-folds", metavar="N", rich_help_panel=PROTOCOL, help="Folds of --inner kfold (default 3)."
    ),
    group_by: Optional[str] = typer.Option(
        None,
        "--group-by",
        metavar="COLUMN",
        rich_help_panel=PROTOCOL,
        help="Cohort table column (site, patient) whose groups never straddle a split.",
    ),
    trials: Optional[int] = typer.Option(
        None,
        "--trials",
        metavar="N",
        rich_help_panel=PROTOCOL,
        help="Optuna trials per (model, fold) (default: the profile's).",
    ),
    timeout: Optional[float] = typer.Option(
        None,
        "--timeout",
        metavar="SECONDS",
        rich_help_panel=PROTOCOL,
        help="Seconds of tuning per (model, fold).",
    ),
    selection_metric: Optional[str] = typer.Option(
        None,
        "--selection-metric",
        metavar="METRIC",
        rich_help_panel=PROTOCOL,
        help="Tuning objective: macro_f1 (default), auc_ovr_macro, accuracy, balanced_accuracy, brier, ece.",
    ),
    refit: bool = typer.Option(
        False,
        "--refit",
        metavar=FLAG,
        rich_help_panel=PROTOCOL,
        help="Fit the best configuration again after tuning (the paper profile's default).",
    ),
    no_refit: bool = typer.Option(
        False,
        "--no-refit",
        metavar=FLAG,
        rich_help_panel=PROTOCOL,
        help="Score the best trial's model as it is (the cpu profiles' default).",
    ),
    seed: Optional[int] = typer.Option(
        None,
        "--seed",
        metavar="N",
        rich_help_panel=PROTOCOL,
        help="Base seed of splits, samplers and fits (default 0).",
    ),
    external: Optional[List[Path]] = typer.Option(
        None,
        "--external",
        metavar="PATH",
        rich_help_panel=EXTERNAL,
        help="External cohort (folder or manifest CSV, read like --data); repeatable. Every model is also "
        "tuned and fitted on the whole development cohort and scored on it (see above).",
    ),
    external_dictionary: Optional[List[str]] = typer.Option(
        None,
        "--external-dictionary",
        metavar="NAME=FILE",
        rich_help_panel=EXTERNAL,
        help="Data dictionary of the external cohort NAME (its folder's name), used instead of its own "
        "data_dictionary.csv; repeatable. E.g. site_b=site_b.toml.",
    ),
    external_allow_missing: Optional[List[str]] = typer.Option(
        None,
        "--external-allow-missing",
        metavar="NAME=VAR",
        rich_help_panel=EXTERNAL,
        help="A development variable the external cohort NAME lacks (e.g. site_b=ca19_9_change): each final "
        "model imputes it as fitted on the development cohort; recorded. Repeatable.",
    ),
    final_model: bool = typer.Option(
        False,
        "--final-model",
        metavar=FLAG,
        rich_help_panel=EXTERNAL,
        help="Tune and fit every model on the whole development cohort and store it, for `resectbench "
        "predict`; implied by --external.",
    ),
    jobs: Optional[int] = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        metavar="N",
        rich_help_panel=EXECUTION,
        help="Processes on this machine computing units side by side, one thread each (default: the "
        "profile's - cpu 3, the others 1 - when a model trains on images, else 1). Their logs: RUN_DIR/logs/.",
    ),
    device: Optional[str] = typer.Option(
        None,
        "--device",
        metavar="DEVICE",
        rich_help_panel=EXECUTION,
        help="auto (default), cpu, cuda, cuda:1, mps.",
    ),
    mlflow: Optional[str] = typer.Option(
        None,
        "--mlflow",
        envvar="RESECTBENCH_MLFLOW",
        metavar="TARGET",
        rich_help_panel=OUTPUT,
        help="Log every unit to MLflow (pip install resectbench[mlflow]): run-dir (RUN_DIR/mlruns) or a tracking "
        "URI. See docs/tracking.md.",
    ),
    storage: Optional[str] = typer.Option(
        None,
        "--storage",
        metavar="URL",
        rich_help_panel=EXECUTION,
        help="Optuna storage shared by workers: postgresql://user@host/db, sqlite:///file.db or journal:PATH.",
    ),
    name: Optional[str] = typer.Option(
        None,
        "--name",
        metavar="NAME",
        rich_help_panel=EXECUTION,
        help="Benchmark name in the storage (default: the run dir's folder name); workers join with --benchmark NAME.",
    ),
    run_dir: Optional[Path] = typer.Option(
        None,
        "--run-dir",
        metavar="PATH",
        rich_help_panel=OUTPUT,
        help="Where results go (default runs/MODELS-PROFILE-sSEED). Running again resumes it.",
    ),
    no_progress: bool = typer.Option(
        False,
        "--no-progress",
        metavar=FLAG,
        rich_help_panel=OUTPUT,
        help="Plain progress lines instead of live bars (always so where stderr is not a terminal).",
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        metavar=FLAG,
        rich_help_panel=OUTPUT,
        help="Also print figures for developers (the protocol's share of the wall time).",
    ),
):
    """Benchmark models under nested cross-validation with Optuna tuning; resumable.

    The leaderboard goes to stdout; progress, warnings and errors to stderr.

    Examples:

      resectbench run --model swinunetr-fusion
      resectbench run -m dummy -m clinical-sklearn --outer-folds 5 --trials 20
      resectbench run -m swinunetr-fusion --fusion late --loss-schedule fixed
      resectbench run -m swinunetr-fusion --balancing ogm-ge
      resectbench run -m dummy --data data/my_cohort --folds splits_final.json
      resectbench run -c experiment.toml --storage postgresql://me@db/resect
      resectbench run --run-dir runs/big --external data/site_b
      resectbench run --run-dir runs/big --external data/site_c \\
          --external-dictionary site_c=site_c.toml \\
          --external-allow-missing site_c=ca19_9_change

    An external cohort can be added to a finished run (the last two examples):
    every model is then also tuned and fitted on the whole development cohort
    (its final model, stored in the run directory) and scored on that cohort;
    nothing done is recomputed.
    """
    from ...protocol import ExperimentConfig, run_benchmark
    from ...protocol.config import merge_overrides
    from ...protocol.local_jobs import default_jobs

    out, err = Console(), Console(stderr=True)
    if refit and no_refit:
        raise typer.BadParameter("give one of --refit and --no-refit", param_hint="--refit")
    cfg = None
    try:
        if config is None and not model and run_dir is not None and (Path(run_dir) / "config.toml").exists():
            config = Path(run_dir) / "config.toml"  # continue (or extend) that run as it was configured
        cfg = merge_overrides(
            ExperimentConfig.from_toml(config) if config else ExperimentConfig(),
            models=model,
            params=parse_params(param),
            parts={
                "backbone": backbone,
                "fusion": fusion,
                "clinical_encoder": clinical_encoder,
                "loss_schedule": loss_schedule,
                "balancing": balancing,
            },
            protocol={
                "outer_folds": outer_folds,
                "folds": folds,
                "repeats": repeats,
                "inner": inner,
                "inner_folds": inner_folds,
                "trials": trials,
                "timeout": timeout,
                "seed": seed,
                "selection_metric": selection_metric,
                "refit": True if refit else False if no_refit else None,  # None: the profile's
                "group_by": group_by,
                "final_model": final_model or None,  # None: the experiment file's
            },
            data={
                "path": data,
                "skip_invalid": skip_invalid,
                "allow_missing_variables": allow_missing_variable,
                "data_dictionary": data_dictionary,
                "external": external,
                "external_dictionary": _named(external_dictionary, "--external-dictionary", "PATH"),
                "external_allow_missing": _named(external_allow_missing, "--external-allow-missing", "VARIABLE"),
            },
            profile=profile,
            device=device,
            run_dir=run_dir,
            storage=storage,
            name=name,
            references=not no_references,
        )
        _track(mlflow)
        with _progress(err, not no_progress) as listener:
            result = run_benchmark(cfg, listener, jobs=jobs or default_jobs(cfg))
    except KeyboardInterrupt as exc:
        err.print(
            f"[yellow]interrupted{_by(exc)}[/yellow]: finished units are saved, the unit in progress "
            "is released; run the same command again to resume where it stopped."
        )
        raise typer.Exit(signals.exit_code(exc))
    except ResectbenchError as exc:
        _error(err, exc, storage or getattr(cfg, "storage", None))
    print_summary(result, out, err, verbose)
    out.print(f"results: {result.run_dir}", soft_wrap=True)


def worker_cmd(
    run_dir: Optional[Path] = typer.Argument(
        None, metavar="RUN_DIR", help="Run directory of a started benchmark (shared disk)."
    ),
    storage: Optional[str] = typer.Option(
        None,
        "--storage",
        envvar="RESECTBENCH_STORAGE",
        metavar="URL",
        help="The benchmark's Optuna storage (needed without a run dir, or when its password is not on disk).",
    ),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", metavar="NAME", help="Benchmark name in --storage."),
    wait: bool = typer.Option(
        False,
        "--wait",
        metavar=FLAG,
        help="Keep waiting for units other workers hold (and take them over if those workers die).",
    ),
    results_dir: Optional[Path] = typer.Option(
        None,
        "--results-dir",
        metavar="PATH",
        rich_help_panel=OUTPUT,
        help="Also write finished units here (workers without the shared run dir).",
    ),
    mlflow: Optional[str] = typer.Option(
        None,
        "--mlflow",
        envvar="RESECTBENCH_MLFLOW",
        metavar="TARGET",
        rich_help_panel=OUTPUT,
        help="Log every unit to MLflow (pip install resectbench[mlflow]): run-dir (RUN_DIR/mlruns) or a tracking "
        "URI. See docs/tracking.md.",
    ),
    no_progress: bool = typer.Option(
        False,
        "--no-progress",
        metavar=FLAG,
        rich_help_panel=OUTPUT,
        help="Plain progress lines instead of live bars (always so where stderr is not a terminal).",
    ),
):
    """Join a running benchmark and compute its unfinished (model, fold) units.

    On the shared run directory (no --results-dir) it also takes final models no one else holds.

    Examples:

      resectbench worker runs/big          # same machine or shared disk
      resectbench worker --storage postgresql://me@db/resect --benchmark big
    """
    from ...protocol import run_worker

    out, err = Console(), Console(stderr=True)
    try:
        _track(mlflow)
        with _progress(err, not no_progress) as listener:
            ran = run_worker(
                run_dir, storage=storage, benchmark=benchmark, listener=listener, results_dir=results_dir, wait=wait
            )
    except KeyboardInterrupt as exc:
        err.print(f"[yellow]interrupted{_by(exc)}[/yellow]: the unit in progress is released for other workers.")
        raise typer.Exit(signals.exit_code(exc))
    except ResectbenchError as exc:
        _error(err, exc, storage)
    out.print(f"worker finished: computed {len(ran)} unit(s)" + (": " + ", ".join(map(str, ran)) if ran else ""))


def _track(target: str | None) -> None:
    """--mlflow: the logger reads the variable, so --jobs workers (child processes) inherit it."""
    import os

    from ...tracking import MLFLOW_VARIABLE

    if target:
        os.environ[MLFLOW_VARIABLE] = target


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("worker")(worker_cmd)
