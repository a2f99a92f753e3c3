"""``resectbench data synth|template|validate|info``: make, check and describe cohorts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ...errors import ResectbenchError

console = Console()
err_console = Console(stderr=True)
data_app = typer.Typer(
    help="Make, check and describe cohorts (synthetic phantoms or your own data).", no_args_is_help=True
)


def _progress(label: str):
    return Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err_console,
        transient=True,
    )


def _callback(progress: Progress):
    task = progress.add_task("", total=None)

    def on_progress(done: int, total: int, message: str) -> None:
        progress.update(task, completed=done, total=total, description=str(message))

    return on_progress


@data_app.command("synth")
def synth_cmd(
    out: Path = typer.Argument(..., help="New folder for the cohort (MSD / nnU-Net layout)."),
    n: Optional[int] = typer.Option(None, "--n", help="Number of cases (default: 159; site-b: 90)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed, same cohort."),
    profile: str = typer.Option(
        "cpu",
        "--profile",
        help="Volume size: cpu (64^3 at 1.5 mm), paper (160^3 at "
        "1 mm), tiny (32^3 at 3 mm, tests), or another phantom "
        "style: site-b (a second centre: ~100 mm view, 0.7-0.9 "
        "mm in-plane, 1-3 mm slices, RAS/LPS, own label "
        "numbering, later contrast phase, sex coded 0/1 in its data_dictionary.csv, 90 cases).",
    ),
    site: Optional[str] = typer.Option(
        None,
        "--site",
        help="A second centre for external validation: the same as --profile NAME for a phantom style "
        "(site-b). `--site site-b --n 52` is the study's external set size.",
    ),
    rater_noise: float = typer.Option(
        0.0, "--rater-noise", help="SD (degrees) of rater angle noise before the NCCN rules; 0 = exact labels."
    ),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all CPUs)."),
):
    """Generate a synthetic phantom cohort with exact NCCN ground truth.

    Examples: resectbench data synth demo-cohort --n 20

    resectbench data synth site-b-cohort --profile site-b

    resectbench data synth site-b-52 --site site-b --n 52   # an external cohort (run ... --external site-b-52)
    """
    from ...data.synth import generate_cohort
    from ...data.synth.generate import SITES

    if site is not None:
        if site not in SITES:
            err_console.print(f"error: unknown site {site!r}; choose one of {', '.join(SITES)}")
            raise typer.Exit(1)
        profile = site
    try:
        with _progress("phantoms") as progress:
            path = generate_cohort(
                out,
                n=n,
                seed=seed,
                profile=profile,
                rater_noise_deg=rater_noise,
                workers=workers,
                on_progress=_callback(progress),
            )
    except ResectbenchError as exc:
        err_console.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
        raise typer.Exit(1)
    meta = json.loads((path / "dataset.json").read_text())["resectbench"]
    console.print(
        f"wrote {meta['n']} cases to [bold]{path}[/bold] (profile {profile}, seed {seed}); "
        f"Bayes-optimal accuracy of the labels: {meta['bayes_optimal_accuracy']:.3f}"
    )


@data_app.command("template")
def template_cmd(
    folder: Path = typer.Argument(
        ..., help="MSD / nnU-Net folder (imagesTr/ or imagesTs/) or a plain folder of NIfTI images."
    ),
    out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Write the two files here instead."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing clinical.csv / data_dictionary.csv."),
):
    """Start a cohort of your own: clinical.csv and data_dictionary.csv to fill in.

    clinical.csv has one row per case found, the label and the 17 clinical variables blank;
    data_dictionary.csv gives each variable's kind, unit and plausible range (adjust units, value maps
    and missing-value tokens to your table). Existing files are refused unless --force.

    Example: resectbench data template my-cohort
    """
    from ...data.template import LABEL_SPELLINGS, write_template

    try:
        (clinical_path, clinical), (dictionary_path, _) = write_template(folder, out, force).items()
    except ResectbenchError as exc:
        err_console.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
        raise typer.Exit(1)
    elsewhere = out is not None and out.expanduser().resolve() != folder.expanduser().resolve()
    lines = [
        f"wrote {clinical_path}: {len(clinical)} cases; fill in label ({LABEL_SPELLINGS}; blank only for new "
        "patients) and the clinical values (blank = missing)",
        f"wrote {dictionary_path}: the unit, kind and range of each variable; adjust it to how your table codes them",
        f"next: {f'move both files into {folder}, then ' if elsewhere else ''}resectbench data validate {folder}",
    ]
    if not (folder / "dataset.json").exists():
        lines.append(
            "(validate and run read a cohort with a dataset.json naming its mask labels, see docs/data.md; "
            f"new patients need none: resectbench predict RUN/MODEL {folder})"
        )
    for line in lines:
        console.print(Text(line), soft_wrap=True)  # Text: paths and spellings are not markup


_DICTIONARY_HELP = (
    "Data dictionary (CSV, TOML or JSON: value maps, units, missing-value tokens, required "
    "variables) used instead of the dataset's own data_dictionary.csv."
)


@data_app.command("validate")
def validate_cmd(
    path: Path = typer.Argument(..., help="MSD / nnU-Net folder or manifest CSV."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Column holding the NCCN class."),
    allow_missing_variable: Optional[List[str]] = typer.Option(
        None,
        "--allow-missing-variable",
        metavar="NAME",
        help="Accept a clinical table without a column for this data_dictionary.csv variable (repeatable).",
    ),
    data_dictionary: Optional[Path] = typer.Option(None, "--data-dictionary", metavar="PATH", help=_DICTIONARY_HELP),
    profile: str = typer.Option("cpu", "--profile", help="Profile the models' needs are checked under."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
):
    """Check every case (files, affines, spacing, label values, clinical types and ranges, ids) without
    changing anything. Exit code 1 and one line per failing case when something is wrong; when clinical
    values fail, a proposed data dictionary (value maps, units, missing-value tokens) to check and save.
    Warnings (oblique or sheared grids, empty masks, absent classes, ...) name the cases and say what
    resectbench does with them; they do not fail the check. Lists which registered models the valid
    cases can feed, and why not (masks naming the structures a model reads, clinical variables).

    Example: resectbench data validate demo-cohort
    """
    from ...data.validate import validate_cohort

    with _progress("validating") as progress:
        report = validate_cohort(
            path,
            on_progress=_callback(progress),
            label_column=label_column,
            allow_missing_variables=tuple(allow_missing_variable or ()),
            data_dictionary=data_dictionary,
        )
    if report.cohort is not None and len(report.cohort):
        report.models = _models_fed(report.cohort, profile)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if not report.ok:
        for line in report.lines():
            err_console.print(Text("FAIL ", style="red") + Text(line), highlight=False, soft_wrap=True)
        if report.dictionary_stub and not as_json:
            where = (
                f"replace {report.data_dictionary}"
                if report.data_dictionary
                else "save it as data_dictionary.csv next to the clinical table"
            )
            err_console.print(
                Text(
                    f"\nproposed data dictionary (check every row, then {where}, or pass it with "
                    "--data-dictionary FILE; nothing was written):"
                ),
                soft_wrap=True,
            )
            typer.echo(report.dictionary_stub, err=True, nl=False)
        raise typer.Exit(1)


def _models_fed(cohort, profile: str) -> dict[str, list[str]]:
    """Every registered model (default parameters) -> why the cohort cannot feed it ([] when it can)."""
    from ... import registry as reg
    from ...models.needs import unmet
    from ...profiles import get_profile

    spec = get_profile(profile)
    return {name: unmet(reg.models.create(name).needs(spec), cohort) for name in reg.models.list()}


def _print_report(report) -> None:
    table = Table(title=f"dataset {escape(report.path)}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("cases", str(report.n_cases))
    table.add_row("valid cases", str(sum(report.class_counts)))
    table.add_row("class counts (R/BR/LA)", " / ".join(map(str, report.class_counts)))
    table.add_row("cases with masks", str(report.has_masks))
    table.add_row("spacing (mm)", ", ".join(f"{k} {lo:.2f}-{hi:.2f}" for k, (lo, hi) in report.spacing_range.items()))
    table.add_row("stored orientations", ", ".join(f"{k}: {v}" for k, v in sorted(report.orientations.items())))
    table.add_row("label map", ", ".join(f"{k}={v}" for k, v in sorted(report.label_map.items(), key=lambda kv: kv[1])))
    if report.fingerprint:
        table.add_row("fingerprint", report.fingerprint)
    console.print(table)
    if report.missingness:
        miss = Table(title="clinical variables")
        for col in ("variable", "kind", "missing"):
            miss.add_column(col)
        for col, frac in report.missingness.items():
            miss.add_row(Text(col), report.clinical_kinds.get(col, ""), f"{frac:.1%}")
        console.print(miss)
    for w in report.warnings:
        console.print(Text("warning: ", style="yellow") + Text(w))
    if report.models:
        fed = [m for m, why in report.models.items() if not why]
        console.print(Text("models it can feed: ", style="bold") + Text(", ".join(fed) or "none"))
        for model, why in report.models.items():
            if why:
                console.print(Text(f"cannot feed {model}: ", style="yellow") + Text("; ".join(why)))
    if report.ok:
        console.print("[green]all cases valid[/green]")
    else:
        console.print(f"[red]{len(report.failing_cases)} failing case(s)[/red]")


@data_app.command("info")
def info_cmd(
    path: Optional[Path] = typer.Argument(
        None, help="Dataset folder or manifest CSV (default: the embedded synthetic cohort, generated on first use)."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Exclude failing cases (and list them) instead of refusing the cohort."
    ),
    allow_missing_variable: Optional[List[str]] = typer.Option(
        None,
        "--allow-missing-variable",
        metavar="NAME",
        help="Accept a clinical table without a column for this data_dictionary.csv variable (repeatable).",
    ),
    data_dictionary: Optional[Path] = typer.Option(None, "--data-dictionary", metavar="PATH", help=_DICTIONARY_HELP),
    profile: str = typer.Option("cpu", "--profile", help="Profile of the embedded cohort when PATH is omitted."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Load a cohort as a benchmark would and describe it (class counts, fingerprint, exclusions).

    Example: resectbench data info demo-cohort --skip-invalid
    """
    from ...data import default_cohort, load_cohort
    from ...data.summary import cohort_summary
    from ...errors import DataError

    try:
        if path is None and data_dictionary is not None:
            raise DataError("--data-dictionary applies to a dataset given as PATH, not to the embedded cohort")
        if path is None:
            with _progress("phantoms") as progress:
                cohort = default_cohort(profile=profile, on_progress=_callback(progress))
        else:
            with _progress("checking") as progress:
                cohort = load_cohort(
                    path,
                    skip_invalid=skip_invalid,
                    on_progress=_callback(progress),
                    allow_missing_variables=tuple(allow_missing_variable or ()),
                    data_dictionary=data_dictionary,
                )
    except ResectbenchError as exc:
        err_console.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
        raise typer.Exit(1)
    summary = cohort_summary(cohort)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    table = Table(title=f"cohort {escape(str(summary['name']))}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for key in (
        "root",
        "source",
        "n_cases",
        "class_counts",
        "bayes_optimal_accuracy",
        "fingerprint",
        "structures",
        "clinical_variables",
        "missing_variables",
        "ignored_columns",
        "data_dictionary",
        "has_ground_truth",
    ):
        table.add_row(key, Text(str(summary[key])))
    console.print(table)
    if summary["excluded"]:
        ex = Table(title=f"excluded ({len({e['case_id'] for e in summary['excluded']})} cases)")
        ex.add_column("case")
        ex.add_column("problem", overflow="fold")
        for e in summary["excluded"]:
            ex.add_row(Text(str(e["case_id"])), Text(e["problem"]))
        console.print(ex)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
