"""The user cache directory and the embedded default cohort that lives in it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import OutputError
from .cohort import Cohort

CACHE_ENV = "RESECTBENCH_CACHE"


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a folder this process writes in; None when it can.

    Checked before any work, so a run does not fail after minutes of it on a path it could never write."""
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        return "is a file, not a folder" if existing == path else f"cannot be created: {existing} is a file"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "is read-only (not writable)" if existing == path else f"cannot be created: {existing} is read-only"
    return None


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$RESECTBENCH_CACHE`` (refused when it cannot be a writable folder), else
    ``~/.cache/resectbench``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if not env:
        return Path.home() / ".cache" / "resectbench"
    root = Path(env).expanduser()
    problem = folder_problem(root)
    if problem:
        raise OutputError(
            f"{CACHE_ENV}={env} {problem}; point {CACHE_ENV} at a writable folder, or unset it to use "
            "~/.cache/resectbench"
        )
    return root


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
