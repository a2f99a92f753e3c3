"""``resectbench predict``: apply a benchmark's stored final model to new cases."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from ...errors import ResectbenchError

console = Console()


def predict_cmd(
    model: Path = typer.Argument(
        ..., help="RUN_DIR/models/MODEL (or RUN_DIR/MODEL) of a run made with --final-model or --external."
    ),
    cases: Path = typer.Argument(
        ...,
        help="Cases to predict, labels not needed: a cohort folder (MSD/nnU-Net layout; imagesTs/ when there is "
        "no imagesTr/), a plain folder of NIfTI images, or a manifest CSV (one row = one case). A clinical.csv "
        "is read where the model uses clinical variables.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    device: str = typer.Option("auto", "--device", help="auto (default), cpu, cuda, cuda:1, mps."),
    masks: Optional[Path] = typer.Option(
        None,
        "--masks",
        metavar="FOLDER",
        help="Another segmenter's label maps for these cases (CASE_ID.nii.gz, e.g. nnU-Net output), for a model "
        "fitted with masks=FOLDER (mask source external) or an oracle.",
    ),
    data_dictionary: Optional[Path] = typer.Option(
        None,
        "--data-dictionary",
        metavar="PATH",
        help="Read the cases' clinical table through this dictionary (a CSV/TOML/JSON file: the site's column names, "
        "units, codes) instead of their folder's data_dictionary.csv.",
    ),
    allow_missing_variable: Optional[List[str]] = typer.Option(
        None,
        "--allow-missing-variable",
        metavar="NAME",
        help="A clinical variable the model is fitted on that these cases do not record: filled by the model's "
        "imputer (fitted on the development cases) and recorded in findings.json (repeatable).",
    ),
    mask_labels: Optional[Path] = typer.Option(
        None,
        "--mask-labels",
        metavar="FILE",
        help="Label map of --masks: a dataset.json or a JSON/TOML map of name -> value (default: FOLDER/dataset.json, "
        "else the canonical numbering).",
    ),
):
    """Class probabilities per case from a run's final model; for segmenting models also the predicted
    masks as NIfTI on each input's own grid and affine, the contact angles measured on them and the NCCN
    rule that fired, with its reason.

    Writes OUT/predictions.csv, OUT/findings.json and (segmenting models) OUT/masks/<case>.nii.gz.
    Cases are read and checked like `resectbench data validate`; a bad case is refused naming it.
    Labels, where the table has them, are only used to score: OUT/scores.json on the labelled cases.

    Example:

      resectbench predict runs/my-run/models/swinunetr-fusion data/new_cases -o predictions/
    """
    from ...protocol.predict import predict

    try:
        frame = predict(
            model,
            cases,
            out,
            device=device,
            masks=masks,
            mask_labels=mask_labels,
            data_dictionary=data_dictionary,
            allow_missing_variables=tuple(allow_missing_variable or ()),
        )
    except ResectbenchError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2)
    typer.echo(frame.to_string(index=False))  # a table: not re-wrapped at the terminal width
    scores = out / "scores.json"
    if scores.exists():
        import json

        s = json.loads(scores.read_text())
        shown = {k: "-" if s.get(k) is None else f"{s[k]:.3f}" for k in ("macro_f1", "auc_ovr_macro", "accuracy")}
        console.print(  # AUC is undefined ("-") on cases of one class
            f"scored on {s['n_labelled']} labelled of {s['n_cases']} cases: macro-F1 {shown['macro_f1']}, "
            f"AUC {shown['auc_ovr_macro']}, accuracy {shown['accuracy']}"
        )
    console.print(f"written to {out}")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cmd)
