"""``resectbench run`` (benchmark models under the protocol) and ``resectbench worker`` (join one)."""

from __future__ import annotations

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

console = Console(stderr=False)


class RichListener:
    """Progress bars: units (with ETA) > trials of the current unit > epochs of the current fit."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.units = progress.add_task("units", total=None)
        self.trials = progress.add_task("trials", total=None, visible=False)
        self.epochs = progress.add_task("epochs", total=None, visible=False)
        self.max_epochs = None
        self.n_trials = 1
        self.done = 0

    # RunListener protocol (duck-typed: the library calls only these)
    def run_started(self, plan, run_dir):
        self.max_epochs, self.n_trials = plan.max_epochs, plan.trials
        self.progress.update(self.units, total=len(plan.units), description=f"units -> {run_dir}")

    def unit_skipped(self, unit, reason):
        self.progress.advance(self.units)
        self.progress.console.log(f"[dim]{unit}: already done, skipped[/dim]")

    def unit_started(self, unit):
        self.progress.update(
            self.trials, total=self.n_trials + 1, completed=0, visible=True, description=f"{unit} trials"
        )

    def trial_started(self, unit, trial):
        name = "final fit" if trial == "refit" else f"trial {trial}"
        self.progress.update(
            self.epochs, total=self.max_epochs, completed=0, visible=True, description=f"{unit} {name} epochs"
        )

    def epoch(self, unit, trial, epoch, metrics):
        f1 = metrics.get("val_macro_f1")
        extra = f" val F1 {f1:.3f}" if isinstance(f1, (int, float)) else ""
        name = "final fit" if trial == "refit" else f"trial {trial}"
        self.progress.update(self.epochs, completed=epoch + 1, description=f"{unit} {name} epochs{extra}")

    def trial_finished(self, unit, trial, value, state):
        self.progress.advance(self.trials)
        if trial != "refit":
            shown = f"{value:.3f}" if value is not None else "-"
            self.progress.console.log(f"{unit} trial {trial}: {state} (inner score {shown})")

    def trial_failed(self, unit, trial, error):
        self.progress.console.log(f"[red]{unit} trial {trial} failed[/red]: {error[:300]}")

    def unit_finished(self, unit, metrics):
        self.progress.advance(self.units)
        self.progress.update(self.epochs, visible=False)
        self.progress.console.log(
            f"[green]{unit}[/green]: macro-F1 {metrics['macro_f1']:.3f}  AUC {_fmt(metrics.get('auc_ovr_macro'))}  "
            f"accuracy {metrics['accuracy']:.3f}"
        )

    def waiting(self, units):
        self.progress.update(self.trials, visible=False)
        self.progress.update(self.units, description=f"waiting for {len(units)} unit(s) held by other workers")

    def message(self, text):
        if text.startswith("warning:"):  # kept on screen, not overwritten by the next progress message
            self.progress.console.print(
                Text("warning:", style="yellow") + Text(text[len("warning:") :]), soft_wrap=True
            )
        else:
            self.progress.update(self.units, description=text[:80])


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


def _error(exc: Exception, storage: str | None):
    """Print the error literally, the storage password masked wherever a driver message repeats it."""
    from ...protocol.coordination import scrub

    console.print(Text("error: ", style="red") + Text(scrub(str(exc), storage)), soft_wrap=True)
    raise typer.Exit(2)


def _by(exc: KeyboardInterrupt) -> str:
    return f" by {exc.args[0]}" if isinstance(exc, signals.Interrupted) else ""


def _fmt(value) -> str:
    return "nan" if value is None or value != value else f"{value:.3f}"


def _progress(enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


def print_summary(result) -> None:
    """The leaderboard (resectbench.leaderboard) of the run; the small mean +- SD table if that fails."""
    try:
        from ...leaderboard import build_leaderboard, load_run
        from ...leaderboard.formats import terminal_renderable

        board = build_leaderboard(load_run(result.run_dir), n_boot=200)
        console.print(terminal_renderable(board, width=console.width))
        _print_notes(result)
        return
    except ImportError:
        pass
    except Exception as exc:  # noqa: BLE001 - the fallback table below is always available
        console.print(f"[yellow]leaderboard unavailable ({type(exc).__name__}: {exc}); summary:[/yellow]")
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
    console.print(table)
    _print_notes(result)


def _print_notes(result) -> None:
    share = result.manifest.get("last_session", {}).get("protocol_overhead_share")
    cache = result.manifest.get("cache", {})
    notes = []
    if share is not None:
        notes.append(f"protocol overhead {100 * share:.1f}% of this session's wall time")
    if cache.get("hit_rate") is not None:
        notes.append(f"preprocessing cache hit rate {100 * cache['hit_rate']:.0f}%")
    if notes:
        console.print("; ".join(notes))


def run_cmd(
    model: Optional[List[str]] = typer.Option(
        None, "--model", "-m", help="Registered model recipe (repeatable); `resectbench list models` shows them."
    ),
    data: Optional[Path] = typer.Option(
        None, "--data", help="Cohort: MSD/nnU-Net folder or manifest CSV. Default: the embedded synthetic cohort."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="TOML experiment file (models, protocol, data); the flags below override it."
    ),
    profile: Optional[str] = typer.Option(
        None,
        "--profile",
        help="Compute profile: cpu (default: image models see a 1.5 mm window around the tumour a localiser predicted, 10 epochs, 3 jobs), cpu-cascade (the same view, 16 epochs, a 30-epoch localiser, 1 job), cpu-whole (the whole view at 3 mm; fast, image models learn little) or paper (GPU).",
    ),
    outer_folds: Optional[int] = typer.Option(
        None, "--outer-folds", help="Outer stratified folds (default 5, or the number of --folds)."
    ),
    folds: Optional[Path] = typer.Option(
        None,
        "--folds",
        metavar="PATH",
        help="Use these outer folds instead of making them (e.g. the folds a segmenter was trained on): nnU-Net's "
        "splits_final.json, or a CSV with columns case_id,fold. Checked to test every case exactly once.",
    ),
    repeats: Optional[int] = typer.Option(None, "--repeats", help="Repeats of the outer K-fold (default 1)."),
    inner: Optional[str] = typer.Option(
        None, "--inner", help="Inner tuning split: holdout (80/20, the paper; default) or kfold."
    ),
    inner_folds: Optional[int] = typer.Option(None, "--inner-folds", help="Folds of --inner kfold (default 3)."),
    trials: Optional[int] = typer.Option(
        None, "--trials", help="Optuna trials per (model, fold); default: the profile's."
    ),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds of tuning per (model, fold)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Base seed of splits, samplers and fits (default 0)."),
    selection_metric: Optional[str] = typer.Option(
        None,
        "--selection-metric",
        help="Tuning objective: macro_f1 (default), auc_ovr_macro, accuracy, balanced_accuracy, brier, ece.",
    ),
    refit: Optional[bool] = typer.Option(
        None,
        "--refit/--no-refit",
        help="Fit the best configuration again after tuning, or score the best trial's model (default: the profile's).",
    ),
    group_by: Optional[str] = typer.Option(
        None, "--group-by", help="Cohort table column (site, patient) whose groups never straddle a split."
    ),
    device: Optional[str] = typer.Option(None, "--device", help="auto (default), cpu, cuda, cuda:1, mps."),
    jobs: Optional[int] = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        help="Processes on this machine computing units side by side, one thread each (default: the "
        "profile's - cpu 3, the others 1 - when a model trains on images, else 1). Worker logs: RUN_DIR/logs/.",
    ),
    run_dir: Optional[Path] = typer.Option(
        None, "--run-dir", help="Where results go (default runs/<models>-<profile>-s<seed>). Re-running resumes it."
    ),
    storage: Optional[str] = typer.Option(
        None,
        "--storage",
        help="Optuna storage shared by workers: postgresql://user@host/db, sqlite:///file.db, or journal:PATH.",
    ),
    name: Optional[str] = typer.Option(
        None,
        "--name",
        help="Benchmark name in the storage (default: the run dir's folder name); workers join with --benchmark NAME.",
    ),
    param: Optional[List[str]] = typer.Option(
        None,
        "--param",
        metavar="KEY=VALUE",
        help="Fix a hyper-parameter of the models given (--model, or the experiment file's; not the reference rows "
        "added beside them); repeatable. The value is read as TOML (0.003, true, [64, 64, 64]); anything else is "
        "text. E.g. --param backbone.embedding=pooled.",
    ),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="Compose a neural model: image backbone."),
    fusion: Optional[str] = typer.Option(None, "--fusion", help="Compose a neural model: fusion strategy."),
    clinical_encoder: Optional[str] = typer.Option(
        None, "--clinical-encoder", help="Compose a neural model: clinical encoder."
    ),
    loss_schedule: Optional[str] = typer.Option(None, "--loss-schedule", help="Compose a neural model: loss schedule."),
    balancing: Optional[str] = typer.Option(
        None, "--balancing", help="Compose a neural model: how its image and clinical branches train together."
    ),
    references: bool = typer.Option(
        True,
        "--references/--no-references",
        help="Add the reference rows (dummy = chance, clinical-sklearn; seconds) beside the models given with "
        "--model; an experiment file's list is kept as written.",
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Exclude invalid cases (recorded in the "
        "manifest, shown on the leaderboard) instead of refusing the cohort.",
    ),
    allow_missing_variable: Optional[List[str]] = typer.Option(
        None,
        "--allow-missing-variable",
        metavar="NAME",
        help="Accept a clinical table without a column for this "
        "data_dictionary.csv variable (repeatable; recorded in the manifest).",
    ),
    data_dictionary: Optional[Path] = typer.Option(
        None,
        "--data-dictionary",
        metavar="PATH",
        help="Data "
        "dictionary (CSV/TOML/JSON: value maps, units, missing tokens) used "
        "instead of the dataset's data_dictionary.csv.",
    ),
    external: Optional[List[Path]] = typer.Option(
        None,
        "--external",
        metavar="PATH",
        help="External cohort (folder or manifest CSV, read like --data; repeatable): every model is also "
        "tuned and fitted on the whole development cohort (its final model, stored in the run directory) "
        "and scored on it. Add one to a finished run with `resectbench run --run-dir RUN --external PATH`: "
        "nothing done is recomputed.",
    ),
    external_dictionary: Optional[List[str]] = typer.Option(
        None,
        "--external-dictionary",
        metavar="NAME=PATH",
        help="Data dictionary (CSV/TOML/JSON: column names, units, value maps, missing tokens) of the external "
        "cohort NAME (its folder's name, e.g. site_b=site_b.toml), used instead of its own data_dictionary.csv; "
        "repeatable.",
    ),
    external_allow_missing: Optional[List[str]] = typer.Option(
        None,
        "--external-allow-missing",
        metavar="NAME=VARIABLE",
        help="A development variable the external cohort NAME does not record (e.g. site_b=ca19_9_change): "
        "each final model imputes it with its imputer fitted on the development cohort; recorded with the "
        "scores and on the board. Repeatable.",
    ),
    final_model: Optional[bool] = typer.Option(
        None,
        "--final-model/--no-final-model",
        help="Tune and fit every model on the whole development cohort and store it (models/<label>/final), "
        "for `resectbench predict`; implied by --external.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
):
    """Benchmark models under nested cross-validation with Optuna tuning; resumable.

    Examples:

      resectbench run --model swinunetr-fusion

      resectbench run -m dummy -m clinical-sklearn --outer-folds 5 --trials 20

      resectbench run --model swinunetr-fusion --fusion late --loss-schedule fixed

      resectbench run --model swinunetr-fusion --balancing ogm-ge

      resectbench run -m dummy -m clinical-sklearn --data data/my_cohort --folds nnUNet_preprocessed/Dataset001/splits_final.json

      resectbench run --config experiment.toml --storage postgresql://me@db/resect --run-dir runs/big

      resectbench run --run-dir runs/big --external data/site_b   # score final models on another site

      resectbench run --run-dir runs/big --external data/site_c --external-dictionary site_c=site_c.toml --external-allow-missing site_c=ca19_9_change
    """
    from ...protocol import ExperimentConfig, run_benchmark
    from ...protocol.config import merge_overrides
    from ...protocol.local_jobs import default_jobs

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
                "refit": refit,
                "group_by": group_by,
                "final_model": final_model,
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
            references=references,
        )
        with _progress(progress) as bars:
            result = run_benchmark(cfg, RichListener(bars), jobs=jobs or default_jobs(cfg))
    except KeyboardInterrupt as exc:
        console.print(
            f"[yellow]interrupted{_by(exc)}[/yellow]: finished units are saved, the unit in progress "
            "is released; run the same command again to resume where it stopped."
        )
        raise typer.Exit(signals.exit_code(exc))
    except ResectbenchError as exc:
        _error(exc, storage or getattr(cfg, "storage", None))
    print_summary(result)
    console.print(f"results: {result.run_dir}")


def worker_cmd(
    run_dir: Optional[Path] = typer.Argument(None, help="Run directory of a started benchmark (shared disk)."),
    storage: Optional[str] = typer.Option(
        None,
        "--storage",
        envvar="RESECTBENCH_STORAGE",
        help="The benchmark's Optuna storage URL (needed without a run dir, or when its password is not on disk; "
        "also read from RESECTBENCH_STORAGE).",
    ),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name in --storage."),
    results_dir: Optional[Path] = typer.Option(
        None, "--results-dir", help="Also write finished units here (workers without the shared run dir)."
    ),
    wait: bool = typer.Option(
        False,
        "--wait/--no-wait",
        help="Keep waiting for units other workers hold (and take them over if those workers die).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
):
    """Join a running benchmark and compute its unfinished (model, fold) units.

    On the shared run directory (no --results-dir) it also takes final models no one else holds.

    Examples:

      resectbench worker runs/big                     # same machine or shared disk

      resectbench worker --storage postgresql://me@db/resect --benchmark big
    """
    from ...protocol import run_worker

    try:
        with _progress(progress) as bars:
            ran = run_worker(
                run_dir,
                storage=storage,
                benchmark=benchmark,
                listener=RichListener(bars),
                results_dir=results_dir,
                wait=wait,
            )
    except KeyboardInterrupt as exc:
        console.print(f"[yellow]interrupted{_by(exc)}[/yellow]: the unit in progress is released for other workers.")
        raise typer.Exit(signals.exit_code(exc))
    except ResectbenchError as exc:
        _error(exc, storage)
    console.print(f"worker finished: computed {len(ran)} unit(s)" + (": " + ", ".join(map(str, ran)) if ran else ""))


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("worker")(worker_cmd)
