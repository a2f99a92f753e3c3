"""The user cache directory and the embedded default cohort that lives in it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .cohort import Cohort

CACHE_ENV = "RESECTBENCH_CACHE"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$RESECTBENCH_CACHE``, else ``~/.cache/resectbench``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "resectbench"


def default_cohort_dir(profile: str = "cpu", seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    from .synth import GENERATOR_VERSION

    return cache_root(cache_dir) / "cohorts" / f"phantom-{profile}-s{seed}-{GENERATOR_VERSION}"


def default_cohort(
    profile: str = "cpu",
    seed: int = 0,
    cache_dir: str | Path | None = None,
    on_progress=None,
    workers: int | None = None,
    load_options: dict | None = None,
) -> Cohort:
    """The synthetic cohort of ``profile`` (159 cases, paper class mix), generated on first use into the
    cache directory and loaded from there afterwards. A generation that was interrupted is redone.
    ``load_options`` go to :func:`load_cohort` (e.g. the voxel checks a run does)."""
    from ..profiles import get_profile
    from .readers import load_cohort
    from .synth import generate_cohort

    if profile != "tiny":
        profile = get_profile(profile).cohort or profile  # profiles that share one embedded cohort
    target = default_cohort_dir(profile, seed, cache_dir)
    done = target / ".complete"
    if not done.exists():
        n = get_profile(profile).n_cases if profile != "tiny" else 9
        partial = target.with_name(target.name + f".partial-{os.getpid()}")
        if partial.exists():
            shutil.rmtree(partial)
        generate_cohort(partial, n=n, seed=seed, profile=profile, workers=workers, on_progress=on_progress)
        (partial / ".complete").write_text("ok\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial.rename(target)
        except OSError:  # another process finished first: keep theirs
            if not done.exists():
                raise
            shutil.rmtree(partial, ignore_errors=True)
    return load_cohort(target, **(load_options or {}))
