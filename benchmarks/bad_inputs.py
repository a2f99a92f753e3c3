"""Every kind of bad or unusual input a user may bring, tried the way a user meets it, and what came back.

Data kinds are the breakers of the test suite (tests/test_bad_inputs.py ``KINDS``, tests/test_bad_image_inputs.py
``PROBLEMS`` and ``WARNINGS``), each applied to a fresh 4-case MSD dataset and checked with ``resectbench data
validate``; the run, config, model and output kinds below are applied to ``resectbench run -m dummy`` (or the
command they concern). Each outcome is one of: named error (non-zero exit, an ``error:``/``FAIL`` line naming the
problem), warning (exit 0 with a ``warning:`` line), accepted (exit 0, nothing said) and traceback (an exception
escaped to the user) - the last must be 0.

    .venv/bin/python benchmarks/bad_inputs.py            # ~20 s; writes benchmarks/results/bad_inputs.json
    .venv/bin/python benchmarks/bad_inputs.py --quick    # a few kinds of each sort; bad_inputs.quick.json

Expected outcomes are declared per kind; a kind whose outcome differs is listed as a mismatch, and the script
exits 1 when there is one (or a traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the breakers and fixtures of the test suite


def invoke(*args):
    from typer.testing import CliRunner

    from resectbench.cli.app import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args], catch_exceptions=True)


def outcome(result) -> str:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback"
    text = result.output
    if result.exit_code != 0:
        return "named error" if ("error" in text.lower() or "FAIL" in text) else "unnamed failure"
    return "warning" if "warning" in text.lower() else "accepted"


def data_kinds():
    """(kind, expected, breaker(root)) of every dataset-level kind of the test suite."""
    import test_bad_image_inputs as images
    import test_bad_inputs as tables

    for kind, (breaker, _named, _fragment) in sorted(tables.KINDS.items()):
        yield kind, "named error", breaker
    for kind, (breaker, _fragment) in sorted(images.PROBLEMS.items()):
        yield kind, "named error", lambda root, b=breaker: b(root, "case01")
    for kind, (breaker, _fragments) in sorted(images.WARNINGS.items()):
        yield kind, "warning", lambda root, b=breaker: b(root, "case01")


def _edit_table(root, fn):
    import pandas as pd

    table = pd.read_csv(root / "clinical.csv", dtype=str, keep_default_na=False)
    fn(table).to_csv(root / "clinical.csv", index=False)


def table_kinds():
    """Legal but suspicious tables: a warning, never silently used."""

    def extra(name, values):
        return lambda root: _edit_table(root, lambda t: t.assign(**{name: values[: len(t)]}))

    yield "extra-column", "warning", extra("favourite_colour", ["blue", "red", "green", "grey"])
    yield "index-column", "warning", extra("Unnamed: 0", ["0", "1", "2", "3"])
    yield "sentinel-in-unknown-column", "warning", extra("CA19-9", ["-99", "40", "-99", "12"])
    yield "absent-class", "warning", lambda root: _edit_table(root, lambda t: t.assign(label=["0", "1", "0", "1"]))


def run_kinds(work: Path):
    """(kind, expected, argv) for run / config / output / model kinds; each gets a fresh folder."""
    from data_fixtures import write_msd

    def dataset(name, **kw):
        return write_msd(work / name, n=12, **kw)

    a_file = work / "a-file"
    a_file.write_text("not a folder\n")
    yield "run-dir-is-a-file", "named error", ["run", "-m", "dummy", "--data", dataset("d1"), "--run-dir", a_file]
    yield "config-is-a-folder", "named error", ["run", "--config", work]
    for name, line in (
        ("config-outer-folds-text", 'outer_folds = "three"'),
        ("config-trials-fraction", "trials = 1.5"),
        ("config-skip-invalid-text", 'skip_invalid = "no"'),
    ):
        section = "[data]" if "skip_invalid" in line else "[protocol]"
        path = work / f"{name}.toml"
        path.write_text(f'[[models]]\nname = "dummy"\n\n{section}\n{line}\n')
        yield name, "named error", ["run", "--config", path, "--data", dataset(name), "--run-dir", work / f"r-{name}"]
    task07 = dataset("task07", numbering={"background": 0, "pancreas": 1, "tumor": 2})
    yield (
        "model-needs-vessels-msd-task07",
        "named error",
        ["run", "-m", "geometric-rules", "--data", task07, "--run-dir", work / "r-task07"],
    )
    grouped = dataset(
        "grouped", numbering={"background": 0, "pancreas": 1, "tumor": 2, "sma": 3}, label_names={"sma": "arteries"}
    )
    yield (
        "grouped-vessel-labels",
        "named error",
        ["run", "-m", "geometric-rules-oracle", "--data", grouped, "--run-dir", work / "r-grouped"],
    )
    yield (
        "masks-folder-missing",
        "named error",
        [
            "run",
            "-m",
            "geometric-rules",
            "--param",
            f"masks={work / 'nowhere'}",
            "--data",
            dataset("d2"),
            "--run-dir",
            work / "r-masks",
        ],
    )
    folds = work / "splits_final.json"
    ids = [f"case{i:02d}" for i in range(12)]
    folds.write_text(json.dumps([{"train": ids[4:], "val": ids[:6]}, {"train": ids[:4], "val": ids[4:]}]))
    yield (
        "case-in-two-test-folds",
        "named error",
        ["run", "-m", "dummy", "--data", dataset("d3"), "--folds", folds, "--run-dir", work / "r-folds"],
    )
    yield "geometry-output-is-a-folder", "named error", ["geometry", "measure", dataset("d4"), "-o", work]


def cache_kind(work: Path):
    a_file = work / "cache-file"
    a_file.write_text("x")
    return "resectbench-cache-is-a-file", "named error", a_file


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few kinds of each sort (smoke test)")
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/bad_inputs[.quick].json)")
    args = parser.parse_args()
    out = Path(args.out or HERE / "results" / f"bad_inputs{'.quick' if args.quick else ''}.json")
    keep = (lambda kinds: list(kinds)[:3]) if args.quick else list
    from data_fixtures import write_msd

    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["RESECTBENCH_CACHE"] = str(tmp / "cache")
        for i, (kind, expected, breaker) in enumerate([*keep(data_kinds()), *keep(table_kinds())]):
            root = write_msd(tmp / f"data-{i}", n=4)
            breaker(root)
            rows.append(
                {
                    "kind": kind,
                    "via": "data validate",
                    "expected": expected,
                    "outcome": outcome(invoke("data", "validate", root)),
                }
            )
        work = tmp / "work"
        work.mkdir()
        for kind, expected, argv in keep(run_kinds(work)):
            rows.append(
                {
                    "kind": kind,
                    "via": " ".join(map(str, argv[:2])),
                    "expected": expected,
                    "outcome": outcome(invoke(*argv, "--no-progress") if argv[0] == "run" else invoke(*argv)),
                }
            )
        kind, expected, cache = cache_kind(work)
        os.environ["RESECTBENCH_CACHE"] = str(cache)
        rows.append(
            {
                "kind": kind,
                "via": "run",
                "expected": expected,
                "outcome": outcome(
                    invoke(
                        "run",
                        "-m",
                        "dummy",
                        "--data",
                        write_msd(work / "d5", n=12),
                        "--run-dir",
                        work / "r5",
                        "--no-progress",
                    )
                ),
            }
        )
    counts = {
        k: sum(r["outcome"] == k for r in rows)
        for k in ("named error", "warning", "accepted", "unnamed failure", "traceback")
    }
    result = {
        "command": "python benchmarks/bad_inputs.py" + (" --quick" if args.quick else ""),
        "date": time.strftime("%Y-%m-%d"),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "kinds_tried": len(rows),
        **{k.replace(" ", "_"): v for k, v in counts.items()},
        "mismatches": [r for r in rows if r["outcome"] != r["expected"]],
        "kinds": rows,
    }
    from resectbench._version import __version__

    result["resectbench"] = __version__
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "kinds"}, indent=1))
    if result["mismatches"] or counts["traceback"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
