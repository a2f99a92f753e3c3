"""The runner's pieces: config merging, the profile carried in the resolved config, the run's cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from resectbench.data.images import ImageConfig, VolumeStore
from resectbench.data.synth import tiny_cohort
from resectbench.profiles import PROFILES
from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, ProtocolError
from resectbench.protocol.cache_stats import RunCache
from resectbench.protocol.config import merge_overrides


def test_flags_override_the_file_and_none_keeps_it():
    base = ExperimentConfig(
        models=[ModelSpec("dummy"), ModelSpec("clinical-sklearn", label="lr", params={"c": 1.0})],
        protocol=ProtocolConfig(outer_folds=3, trials=4, seed=7),
        profile="cpu",
    )
    base.data.allow_missing_variables = ["ca19_9"]
    cfg = merge_overrides(
        base,
        models=None,
        protocol={"outer_folds": 4, "trials": None},
        data={"allow_missing_variables": ["bmi"], "skip_invalid": False, "path": Path("x")},
        run_dir=Path("runs/a"),
        storage=None,
    )
    assert [m.label for m in cfg.models] == ["dummy", "lr"]
    assert (cfg.protocol.outer_folds, cfg.protocol.trials, cfg.protocol.seed) == (4, 4, 7)
    assert cfg.data.allow_missing_variables == ["ca19_9", "bmi"] and cfg.data.path == "x"
    assert cfg.run_dir == "runs/a" and cfg.storage is None
    composed = merge_overrides(base, models=["swinunetr-fusion"], parts={"fusion": "late", "backbone": None})
    assert [(m.label, m.params) for m in composed.models] == [("swinunetr-fusion+late", {"fusion": "late"})]


def test_resolved_config_carries_the_profile_and_never_writes_it(tmp_path):
    cfg = ExperimentConfig(models=[ModelSpec("dummy")], profile="cpu-cascade", run_dir=str(tmp_path / "r")).resolved()
    assert cfg.profile_spec is PROFILES["cpu-cascade"]
    assert "profile_spec" not in cfg.to_toml() and "profile_spec" not in cfg.to_dict()
    again = ExperimentConfig.from_dict(cfg.to_dict()).resolved()
    assert again.profile_spec is PROFILES["cpu-cascade"]
    with pytest.raises(ProtocolError, match="profile_spec"):
        ExperimentConfig.from_dict({"profile_spec": "cpu"})


def test_run_cache_counts_its_own_directory_only(tmp_path):
    cohort = tiny_cohort(tmp_path / "data", n=3)
    config = ImageConfig(target_spacing=(3.0, 3.0, 3.0), roi=(16, 16, 16))
    cache = RunCache(tmp_path / "run-cache")
    with cache.counting() as first:
        VolumeStore(cache.directory, config).get(cohort)
        VolumeStore(tmp_path / "elsewhere", config).get(cohort)  # not the run's cache: not counted
    assert first == {"hits": 0, "misses": 3}
    with cache.counting() as second:
        VolumeStore(cache.directory, config).get(cohort)
        VolumeStore(cache.directory, config).get(cohort, case_ids=cohort.case_ids[:1])
    assert second == {"hits": 4, "misses": 0}
    assert cache.summary([first, second])["hit_rate"] == pytest.approx(4 / 7)
