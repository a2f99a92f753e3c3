"""``resectbench geometry measure``: tumor-vessel contact per vessel of a mask or a cohort, as CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.text import Text
from rich.progress import Progress

from ...errors import ResectbenchError

console = Console()
err_console = Console(stderr=True)


def measure_cmd(
    path: Path = typer.Argument(..., help="A case's NIfTI mask, or a cohort (MSD/nnU-Net folder or manifest CSV)."),
    output: Path = typer.Option(Path("contacts.csv"), "--output", "-o", help="CSV to write."),
    image: Optional[Path] = typer.Option(None, "--image", help="The case's image (single mask only): checks the grid."),
    labels: Optional[str] = typer.Option(None, "--labels",
                                         help="Single mask only: voxel values as 'tumor=2,sma=7,...' or a JSON file "
                                              "(default: resectbench's canonical indices)."),
):
    """Measure contact angle, contact length, distance and vein deformity for every vessel.

    Examples: resectbench geometry measure labelsTr/case_001.nii.gz -o case_001.csv |
    resectbench geometry measure data/my_cohort -o contacts.csv
    """
    from ...baselines.geometric_measure import measure_path

    try:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("measuring", total=None)

            def on_progress(done: int, total: int, message: str) -> None:
                progress.update(task, completed=done, total=total, description=message)

            table = measure_path(path, image=image, labels=labels, on_progress=on_progress)
    except ResectbenchError as exc:
        err_console.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
        raise typer.Exit(2)
    output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(output, index=False)
    n_cases = table["case_id"].nunique()
    touching = table[table.contact_deg > 0]
    console.print(f"wrote {output}: {n_cases} case(s), {len(table)} vessel rows, "
                  f"{len(touching)} with tumor contact")


def register(app: typer.Typer) -> None:
    geometry = typer.Typer(help="Tumor-vessel geometry: contact measurement.", no_args_is_help=True)
    geometry.command("measure")(measure_cmd)
    app.add_typer(geometry, name="geometry")
