"""docs/security.md, the storage claims: a password in a storage URL is never printed nor written to the run
directory. (Checkpoints: tests/test_backbones.py and tests/test_engine.py; plugins: tests/test_plugins.py;
untrusted datasets: tests/test_bad_inputs.py.)"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.protocol.coordination import open_storage, redact, scrub
from resectbench.protocol.errors import ProtocolError

SECRET = "s3cr%40et"  # URL-quoted "s3cr@et": both spellings must be masked


@pytest.mark.parametrize(
    "url",
    [f"postgresql://me:{SECRET}@127.0.0.1:1/db", f"me:{SECRET}@host/db", f"postgresql://me:{SECRET}@bad host:x/db"],
)
def test_storage_errors_mask_the_password(url):
    with pytest.raises(ProtocolError) as exc:
        open_storage(url)
    assert SECRET not in str(exc.value) and "s3cr@et" not in str(exc.value) and "me:***@" in str(exc.value)
    assert exc.value.__cause__ is None  # the driver's message is kept only scrubbed


def test_redact_and_scrub():
    assert redact(f"postgresql://me:{SECRET}@h/db") == "postgresql://me:***@h/db"
    assert redact("journal:/shared/bench.log") == "journal:/shared/bench.log"
    assert redact("sqlite:///runs/x/optuna.db") == "sqlite:///runs/x/optuna.db"
    assert scrub("auth failed for s3cr@et / s3cr%40et", f"postgresql://me:{SECRET}@h/db") == "auth failed for *** / ***"


def test_run_prints_no_password_and_writes_none(tmp_path, monkeypatch):
    from resectbench.data.synth import tiny_cohort

    monkeypatch.chdir(tmp_path)
    data = tiny_cohort(tmp_path / "data", n=18).root
    for url in (f"postgresql://me:{SECRET}@127.0.0.1:1/db", f"me:{SECRET}@host/db"):
        result = CliRunner().invoke(
            build_app(),
            [
                "run",
                "-m",
                "dummy",
                "--data",
                str(data),
                "--outer-folds",
                "3",
                "--run-dir",
                "run",
                "--storage",
                url,
                "--no-progress",
            ],
            catch_exceptions=False,
        )
        assert result.exit_code == 2 and "storage" in result.output
        assert SECRET not in result.output and "s3cr@et" not in result.output
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()] if (tmp_path / "run").exists() else []
    assert not [p for p in written if SECRET.encode() in p.read_bytes() or b"s3cr@et" in p.read_bytes()]
