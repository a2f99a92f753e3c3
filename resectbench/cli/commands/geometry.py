"""``resectbench geometry measure|classify|rules``: tumor-vessel contact per vessel as CSV, the class of
each case under a rule set, and the shipped rule sets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from ...errors import OutputError, ResectbenchError

console = Console()
err_console = Console(stderr=True)

_RULES_HELP = (
    "Rule set: a shipped name (`resectbench geometry rules` lists them; default nccn-2019) or the path "
    "of your own .toml/.json rule file."
)


def _fail(exc: ResectbenchError) -> None:
    err_console.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
    raise typer.Exit(2)


def _check_output(output: Path) -> None:
    """Refuse, before measuring, an --output that names a folder."""
    if output.is_dir():
        _fail(OutputError(f"--output {output} is a folder; give the CSV file to write, e.g. {output / 'out.csv'}"))


def _write_csv(table, output: Path) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(output, index=False)
    except OSError as exc:  # a parent that is a file, no permission, a full disk
        _fail(OutputError(f"--output {output}: cannot write it ({exc.strerror or exc})"))


def _measure(path: Path, image, labels, rules):
    from ...baselines.geometric_measure import measure_path

    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("measuring", total=None)

        def on_progress(done: int, total: int, message: str) -> None:
            progress.update(task, completed=done, total=total, description=message)

        return measure_path(path, image=image, labels=labels, on_progress=on_progress, rules=rules)


def measure_cmd(
    path: Path = typer.Argument(
        ...,
        help="A case's NIfTI mask, or a cohort (MSD/nnU-Net folder or manifest CSV; "
        "only its images and masks are read).",
    ),
    output: Path = typer.Option(Path("contacts.csv"), "--output", "-o", help="CSV to write."),
    image: Optional[Path] = typer.Option(None, "--image", help="The case's image (single mask only): checks the grid."),
    labels: Optional[str] = typer.Option(
        None,
        "--labels",
        help="Single mask only: voxel values as 'tumor=2,sma=7,...' or a JSON file "
        "(default: resectbench's canonical indices).",
    ),
    rules: Optional[str] = typer.Option(
        None,
        "--rules",
        metavar="NAME_OR_PATH",
        help="Also give every row its case's class under this rule set (a shipped "
        "name such as nccn-2019, or your .toml/.json rule file).",
    ),
):
    """Measure contact angle, contact length, distance and vein deformity for every vessel.

    Examples: resectbench geometry measure labelsTr/case_001.nii.gz -o case_001.csv |
    resectbench geometry measure data/my_cohort -o contacts.csv --rules nccn-2019-vein270
    """
    _check_output(output)
    try:
        table = _measure(path, image, labels, rules)
    except ResectbenchError as exc:
        _fail(exc)
    _write_csv(table, output)
    n_cases = table["case_id"].nunique()
    touching = table[table.contact_deg > 0]
    console.print(
        f"wrote {output}: {n_cases} case(s), {len(table)} vessel rows, "
        f"{len(touching)} with tumor contact" + (f"; classes by {table['rule_set'].iloc[0]}" if rules else "")
    )


def classify_cmd(
    path: Path = typer.Argument(
        ...,
        help="A contacts CSV written by `geometry measure` (or by hand: case_id, "
        "vessel, contact_deg[, contact_length_mm, vein_deformity, tumor_location, "
        "cha_reach_mm]), a NIfTI mask, or a cohort (measured first).",
    ),
    rules: Optional[str] = typer.Option(None, "--rules", metavar="NAME_OR_PATH", help=_RULES_HELP),
    output: Path = typer.Option(Path("classes.csv"), "--output", "-o", help="CSV to write (one row per case)."),
    labels: Optional[str] = typer.Option(
        None, "--labels", help="Single mask only: voxel values as 'tumor=2,sma=7' or a JSON file."
    ),
):
    """Class of every case (R / BR / LA) under a rule set, with the rules that fired and why.

    Measured values become rule inputs with the default thresholds of the geometric baselines
    (vein deformity > 0.08 = irregular contour; vein contact >= 300 deg over >= 24 mm = not
    reconstructable; CHA contact within 4 mm of the celiac axis or bifurcation = reaches it).

    Examples: resectbench geometry classify contacts.csv --rules dpcg-2012 |
    resectbench geometry classify data/my_cohort --rules my_rules.toml -o classes.csv
    """
    from ...baselines.geometric_measure import classify_geometries, geometries_from_table
    from ...data.readers.assemble import read_case_table
    from ...geometry.nccn import load_rules

    _check_output(output)
    try:
        rule_set = load_rules(rules)
        if path.is_file() and path.suffix.lower() == ".csv" and _is_contacts_table(path):
            table = read_case_table(path)
            geoms = geometries_from_table(table, path.name)
        else:
            table = _measure(path, None, labels, None)
            geoms = geometries_from_table(table, str(path))
        result = classify_geometries(geoms, rule_set)
    except ResectbenchError as exc:
        _fail(exc)
    _write_csv(result, output)
    counts = result["rule_class_name"].value_counts()
    summary = ", ".join(f"{counts.get(n, 0)} {n}" for n in ("resectable", "borderline", "locally_advanced"))
    console.print(f"wrote {output}: {len(result)} case(s) by {rule_set.version} ({summary})")


def _is_contacts_table(path: Path) -> bool:
    """A CSV with a ``vessel`` column is a contacts table; other CSVs are cohort manifests."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return True  # read_case_table then names what is wrong with it
    return "vessel" in [h.strip() for h in header]


def rules_cmd(
    name: Optional[str] = typer.Argument(
        None, metavar="[NAME_OR_PATH]", help="Show this rule set's table (default: list the shipped ones)."
    ),
    as_toml: bool = typer.Option(False, "--toml", help="Print the rule file itself (a template for your own)."),
):
    """List the shipped rule sets, or show one (rows, options, source).

    Examples: resectbench geometry rules | resectbench geometry rules nccn-2019-vein270 |
    resectbench geometry rules nccn-2019 --toml > my_rules.toml
    """
    from ...geometry.nccn import DEFAULT_RULE_SET, RULE_SET_NAMES, load_rules, rules_table

    try:
        if name is None and not as_toml:
            table = Table(title="rule sets (--rules NAME, or the path of your own .toml/.json file)")
            for col in ("name", "title", "source"):
                table.add_column(col, overflow="fold")
            for n in RULE_SET_NAMES:
                rs = load_rules(n)
                table.add_row(
                    Text(n + (" (default)" if n == DEFAULT_RULE_SET else "")), Text(rs.title), Text(rs.source)
                )
            console.print(table)
            return
        rule_set = load_rules(name)
    except ResectbenchError as exc:
        _fail(exc)
    if as_toml:
        typer.echo(Path(rule_set.path).read_text(encoding="utf-8"), nl=False)
        return
    console.print(Text(f"{rule_set.version}: {rule_set.title}\nsource: {rule_set.source}\nfile: {rule_set.path}"))
    console.print(Text("options: " + ", ".join(f"{k}={v}" for k, v in rule_set.options.as_dict().items())))
    for row in rules_table(rule_set):  # one line per row: ids stay whole at any width
        needs = ", ".join(x for x in (row["flags"], row["requires_option"] and f"option {row['requires_option']}") if x)
        console.print(
            Text(
                f"{row['id']}: {row['vessels']} | {row['locations']} | contact {row['contact']}"
                + (f" | {needs}" if needs else "")
                + f" -> {row['outcome']}"
            ),
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    geometry = typer.Typer(
        help="Tumor-vessel geometry: contact measurement and rule-based classes.", no_args_is_help=True
    )
    geometry.command("measure")(measure_cmd)
    geometry.command("classify")(classify_cmd)
    geometry.command("rules")(rules_cmd)
    app.add_typer(geometry, name="geometry")
