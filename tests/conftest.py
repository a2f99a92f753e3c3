"""Test-wide settings: small thread counts (2-core CI), caches in a temporary folder."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep the user's cache untouched: generated cohorts and preprocessing go to a temp dir."""
    if "RESECTBENCH_CACHE" not in os.environ:
        os.environ["RESECTBENCH_CACHE"] = str(tmp_path_factory.mktemp("resectbench-cache"))
    yield
