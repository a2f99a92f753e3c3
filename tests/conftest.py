"""Test-wide settings: small thread counts (2-core CI), caches in a temporary folder."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep the user's cache untouched: generated cohorts and preprocessing go to a temp dir."""
    if "RESECTBENCH_CACHE" not in os.environ:
        os.environ["RESECTBENCH_CACHE"] = str(tmp_path_factory.mktemp("resectbench-cache"))
    yield


@pytest.fixture
def toy_plugins(monkeypatch):
    """The test recipes, registered as a third-party plugin through RESECTBENCH_PLUGINS."""
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "protocol_plugin_recipes")
    monkeypatch.syspath_prepend(str(TESTS))
    from resectbench import plugins

    plugins.reset()
    import protocol_plugin_recipes

    protocol_plugin_recipes.LOG.clear()
    yield protocol_plugin_recipes
    plugins.reset()
