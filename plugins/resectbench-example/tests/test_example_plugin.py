"""The example plugin's own tests: its components pass resectbench's conformance checks.

Run with ``pytest plugins/resectbench-example/tests`` (the plugin importable, e.g. installed with
``pip install -e plugins/resectbench-example``). Copy this file into your plugin.
"""

import pytest
from resectbench_example.components import BilinearFusion, TinyCNN3D

from resectbench import plugins
from resectbench.testing import check_backbone, check_fusion, check_recipe


@pytest.fixture
def registered(monkeypatch):
    """The plugin loaded as resectbench loads it (here through RESECTBENCH_PLUGINS, no install needed)."""
    monkeypatch.setenv("RESECTBENCH_PLUGINS", "resectbench_example.plugin")
    plugins.reset()
    yield
    plugins.reset()


def test_components_conform_by_factory():
    check_backbone(TinyCNN3D, roi=(16, 16, 16), width=4, depth=2)
    check_fusion(BilinearFusion, rank_dim=4)


def test_registered_components_conform(registered):
    # by name: built through the registry, with the search spaces plugin.py registers
    check_backbone("example-tinycnn", roi=(16, 16, 16), width=4, depth=2)
    check_fusion("example-bilinear", rank_dim=4)
    check_recipe("example-fusion")
