"""``generate_cohort``: write a synthetic phantom cohort in the MSD / nnU-Net layout.

Everything random is drawn from ``numpy.random.default_rng([seed, case_index, stream])``, so a
cohort is identical for a given seed whatever the number of worker processes.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ...errors import ResectbenchError
from ..labels import INDEX, STRUCTURES, canonical_name
from ..nifti import fast_gzip, write_volume
from ..schema import CLINICAL_SCHEMA
from .anatomy import sample_anatomy
from .clinical import draw_clinical, sample_bmi
from .phantom import Grid, PlacementError, render
from .scenario import PAPER_CLASS_MIX, RULED, Scenario, bayes_optimal_accuracy, class_counts, draw_scenario, noisy_label

GENERATOR_VERSION = "phantom-4"
#: file orientations drawn per case (the reader must undo them from the affine); RAS and LPS most often
ORIENTATIONS = ("RAS", "RAS", "LPS", "LPS", "LAS", "RPI", "PLS")
#: per-case slice-thickness factors (anisotropic voxels are common: thick slices, fine in-plane)
SLICE_FACTORS = (1.0, 1.0, 1.33, 1.67)
MAX_ATTEMPTS = 24
ANATOMIES_PER_SCENARIO = 4


@dataclass(frozen=True)
class SizePreset:
    """Field of view and voxel size of a phantom. ``scale`` shrinks the 160 mm anatomy to the field of view."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    min_radius_vox: float = 2.4
    vary_geometry: bool = True  # per-case spacing and orientation
    gap_vox: float = 2.0  # fat plane between tumor and untouched vessels (voxels)
    min_visible_fraction: float = 0.7  # share of each contact angle the voxels must show (0: unchecked)
    # a second phantom style (a "site"): per-case voxel ranges, storage, anatomy and scanner
    inplane_mm: tuple[float, float] | None = None  # per-case in-plane spacing range (else spacing x 0.9-1.1)
    slice_mm: tuple[float, float] | None = None  # per-case slice thickness range (else SLICE_FACTORS)
    orientations: tuple[str, ...] = ORIENTATIONS
    anatomy_scale: float | None = None  # 160 mm anatomy x this (else the field of view's share)
    hu_shift: tuple[tuple[str, float], ...] = ()  # contrast timing: HU added per structure
    noise_sd_hu: tuple[float, float] = (10.0, 18.0)
    label_names: tuple[str, ...] | None = None  # dataset.json names in the site's own numbering
    class_mix: tuple[int, int, int] = PAPER_CLASS_MIX
    n_cases: int = 159
    #: the site's own clinical coding: variable -> ((code, value), ...) written to clinical.csv as codes and
    #: declared in data_dictionary.csv's ``values`` column (the readers decode it)
    clinical_codes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    @property
    def fov_mm(self) -> np.ndarray:
        return np.asarray(self.shape) * np.asarray(self.spacing)

    @property
    def scale(self) -> float:
        return float(self.anatomy_scale or self.fov_mm.min() / 160.0)


#: other phantom styles, made with ``generate_cohort(profile=NAME)`` / ``resectbench data synth --profile NAME``:
#: ``site-b`` is a second centre unlike the embedded cohort (not tuned to any pipeline): a ~100 mm view around
#: the pancreas at 0.7-0.9 mm in-plane and 1-3 mm slices, half stored LPS, the anatomy larger in the view
#: (other proportions), a later portal phase (arteries darker, veins brighter, the tumour less conspicuous),
#: noisier scans, its own label numbering and names, its own clinical coding (sex as 0/1,
#: declared in its data_dictionary.csv), and 90 cases with another case mix (``--n 52``: the study's external set).
SITES = {
    "site-b": SizePreset(
        shape=(125, 125, 50),
        spacing=(0.8, 0.8, 2.0),
        min_radius_vox=3.0,
        inplane_mm=(0.7, 0.9),
        slice_mm=(1.0, 3.0),
        orientations=("RAS", "LPS"),
        anatomy_scale=0.68,
        hu_shift=(("arteries", -30.0), ("veins", 12.0), ("tumor", 10.0)),
        noise_sd_hu=(15.0, 25.0),
        label_names=(
            "background",
            "portal_vein",
            "superior_mesenteric_vein",
            "splenic_vein",
            "inferior_vena_cava",
            "aorta",
            "superior_mesenteric_artery",
            "celiac_axis",
            "hepatic_artery",
            "proper_hepatic_artery",
            "gda",
            "splenic_artery",
            "pancreas",
            "pdac",
            "pancreatic_duct",
            "common_bile_duct",
        ),
        class_mix=(40, 30, 20),
        n_cases=90,
        clinical_codes=(("sex", (("0", "female"), ("1", "male"))),),
    ),
}


def size_preset(profile: str) -> SizePreset:
    """``tiny`` (32^3 at 3 mm, for tests) or the profile's ``volume_shape`` and ``spacing_mm``."""
    if profile == "tiny":
        return SizePreset((32, 32, 32), (3.0, 3.0, 3.0), min_radius_vox=1.5, gap_vox=1.2, min_visible_fraction=0.0)
    if profile in SITES:
        return SITES[profile]
    from ...profiles import get_profile

    p = get_profile(profile)
    return SizePreset(tuple(p.volume_shape), tuple(p.spacing_mm))


def _case_geometry(preset: SizePreset, rng: np.random.Generator) -> tuple[tuple, tuple, str]:
    """(shape, spacing, orientation) of one case: same field of view, varied voxels and axis order."""
    if not preset.vary_geometry:
        return preset.shape, preset.spacing, "RAS"
    if preset.inplane_mm is not None:
        inplane = float(rng.uniform(*preset.inplane_mm))
        spacing = (inplane, inplane, float(rng.uniform(*preset.slice_mm)))
    else:
        inplane = float(np.round(rng.uniform(0.9, 1.1), 3))
        sfac = float(rng.choice(SLICE_FACTORS))
        spacing = (preset.spacing[0] * inplane, preset.spacing[1] * inplane, preset.spacing[2] * sfac)
    spacing = tuple(round(s, 4) for s in spacing)
    shape = tuple(int(round(f / s)) for f, s in zip(preset.fov_mm, spacing))
    return shape, spacing, str(rng.choice(preset.orientations))


def _reorient(data: np.ndarray, affine: np.ndarray, codes: str):
    """Store a canonical RAS array in another axis order; the affine keeps world coordinates exact."""
    import nibabel as nib

    if codes == "RAS":
        return data, affine
    ornt = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt("RAS"), nib.orientations.axcodes2ornt(tuple(codes))
    )
    out = nib.orientations.apply_orientation(data, ornt)
    return np.ascontiguousarray(out), affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)


def render_case(job: dict) -> dict:
    """Worker: draw the scenario and anatomy of one case, voxelise, write image and mask.

    Returns the scenario actually rendered (as a dict) and render details. When an anatomy cannot
    host the scenario on this grid (a vessel out of view, a contact lost to discretisation), the
    anatomy is redrawn; after a few failures the scenario too (same target class), so the class mix
    never changes and the ground truth always matches the voxels.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    seed, index = job["seed"], job["index"]
    preset: SizePreset = job["preset"]
    grid = Grid(tuple(job["shape"]), tuple(job["spacing"]))
    failure = None
    for attempt in range(MAX_ATTEMPTS):
        sc = draw_scenario(np.random.default_rng([seed, index, 0, attempt // ANATOMIES_PER_SCENARIO]), job["target"])
        rng = np.random.default_rng([seed, index, 1, attempt])
        anat = sample_anatomy(
            rng,
            preset.scale,
            preset.min_radius_vox * float(np.mean(preset.spacing)),
            bmi=job["bmi"],
            dilated_ducts=sc.location == "head",
            step=0.3 * float(min(job["spacing"])),
        )
        try:
            # the last tries relax the look check (wrapping an untouched vessel behind its fat plane); touched /
            # untouched vessels and the angle each contact shows are always as the ground truth says
            strict = attempt < MAX_ATTEMPTS - ANATOMIES_PER_SCENARIO
            labels, image, details = render(
                anat,
                sc,
                grid,
                rng,
                gap_vox=preset.gap_vox,
                reject_encircling=strict,
                min_visible_fraction=preset.min_visible_fraction,
                hu_shift=dict(preset.hu_shift),
                noise_sd_hu=preset.noise_sd_hu,
            )
            break
        except PlacementError as exc:
            failure = exc
    else:
        raise ResectbenchError(f"case {job['case_id']}: could not place the tumor in {MAX_ATTEMPTS} tries ({failure})")
    details["attempts"] = attempt + 1
    hu = np.clip(np.round(image), -1024, 3071).astype(np.int16)
    if preset.label_names is not None:  # the site's own numbering: canonical index -> its position in label_names
        numbering = np.zeros(256, dtype=np.uint8)
        for value, name in enumerate(preset.label_names):
            numbering[INDEX[canonical_name(name)]] = value
        labels = numbering[labels]
    img_arr, aff = _reorient(hu, grid.affine, job["orientation"])
    lab_arr, _ = _reorient(labels, grid.affine, job["orientation"])
    out = Path(job["out_dir"])
    with fast_gzip(1):
        write_volume(out / "imagesTr" / f"{job['case_id']}_0000.nii.gz", img_arr, aff)
        write_volume(out / "labelsTr" / f"{job['case_id']}.nii.gz", lab_arr, aff)
    details.pop("sectors", None)
    return {"case_id": job["case_id"], "scenario": sc.as_dict(), **details}


def _readme(meta: dict, gt: pd.DataFrame) -> str:
    counts = gt["label"].value_counts().reindex([0, 1, 2], fill_value=0).tolist()
    true_counts = gt["label_true"].value_counts().reindex([0, 1, 2], fill_value=0).tolist()
    mech = gt.groupby(["label_true", "mechanism"]).size().to_string()
    bayes = meta["bayes_optimal_accuracy"]
    return f"""# Synthetic peri-pancreatic CT phantom cohort

Generated by resectbench ({GENERATOR_VERSION}) with seed {meta["seed"]}, profile `{meta["profile"]}`,
{meta["n"]} cases, rater noise SD {meta["rater_noise_deg"]} degrees.

Layout: nnU-Net v2 / MSD (`dataset.json`, `imagesTr/<case>_0000.nii.gz` CT in HU (int16),
`labelsTr/<case>.nii.gz` masks with the label values listed in `dataset.json`), `clinical.csv`
(case_id, NCCN label, 17 clinical variables; data dictionary in `data_dictionary.csv`) and
`ground_truth.csv` (exact contact angle per vessel in degrees, tumor location, vein contour
irregularity, reconstructability, the noise-free rule class `label_true`, the rules that fired,
and the label used for training `label`).

Class counts (label used, 0/1/2 = resectable/borderline/locally advanced): {counts}
Class counts without rater noise: {true_counts}
Bayes-optimal accuracy of the labels given the exact geometry: {bayes if bayes is None else round(bayes, 4)}

Every case is stored with its own voxel spacing and axis order (RAS, LPS, ...); read it through
its affine (resectbench does). Contact angles are exact for the continuous geometry; the voxel
masks recover them up to discretisation. Mechanisms per class:

```
{mech}
```
Not real patients: anatomy, intensities and clinical values are procedural (see resectbench docs/data.md).
"""


def generate_cohort(
    out_dir: str | Path,
    n: int | None = 159,
    seed: int = 0,
    profile: str = "cpu",
    rater_noise_deg: float = 0.0,
    workers: int | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    class_mix=None,
    bayes_draws: int = 400,
) -> Path:
    """Write ``n`` phantom cases to ``out_dir`` (MSD / nnU-Net layout + clinical.csv + ground_truth.csv +
    data_dictionary.csv + README.md) and return ``out_dir``.

    ``profile`` sizes the volumes ("cpu", "paper", "tiny" for tests) or names another phantom style
    (:data:`SITES`, e.g. "site-b", whose case count and mix are the defaults of ``n`` = None and
    ``class_mix``). Class counts follow ``class_mix`` (paper 85/47/27) exactly for the noise-free labels; with ``rater_noise_deg`` > 0 every
    contact angle is misjudged by N(0, sd) before the rules, and the Monte-Carlo Bayes-optimal
    accuracy of those labels is written to dataset.json and README.md. ``workers`` processes render
    cases in parallel (default: all CPUs); ``on_progress(done, total, case_id)`` reports each case.
    """
    preset = size_preset(profile)
    n = preset.n_cases if n is None else n
    class_mix = preset.class_mix if class_mix is None else class_mix
    if n < 1:
        raise ResectbenchError("n must be at least 1")
    out = Path(out_dir).expanduser()
    if (out / "dataset.json").exists() or (out.exists() and any(out.iterdir())):
        raise ResectbenchError(f"{out} exists and is not empty; choose a new folder")
    root_rng = np.random.default_rng([seed, 2**31 - 1])
    targets = np.repeat(np.arange(3), class_counts(n, class_mix))
    root_rng.shuffle(targets)
    width = max(3, len(str(n - 1)))
    jobs = []
    bmis = sample_bmi(np.random.default_rng([seed, 2**31 - 2]), n)
    for i, target in enumerate(targets):
        shape, spacing, orientation = _case_geometry(preset, np.random.default_rng([seed, i, 3]))
        jobs.append(
            {
                "case_id": f"phantom_{i:0{width}d}",
                "index": i,
                "seed": seed,
                "preset": preset,
                "target": int(target),
                "shape": shape,
                "spacing": spacing,
                "orientation": orientation,
                "bmi": float(bmis[i]),
                "out_dir": str(out),
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    if workers is None:  # the CPUs this process may use (containers often allow fewer than cpu_count)
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, int(workers))
    details: dict[str, dict] = {}
    if workers == 1 or n <= 2:
        for k, job in enumerate(jobs):
            details[job["case_id"]] = render_case(job)
            if on_progress:
                on_progress(k + 1, n, job["case_id"])
    else:
        with ProcessPoolExecutor(max_workers=min(workers, n)) as pool:
            futures = [pool.submit(render_case, job) for job in jobs]
            for k, fut in enumerate(as_completed(futures)):
                d = fut.result()
                details[d["case_id"]] = d
                if on_progress:
                    on_progress(k + 1, n, d["case_id"])
    scenarios = [Scenario(**details[j["case_id"]]["scenario"]) for j in jobs]
    labels = [noisy_label(sc, np.random.default_rng([seed, i, 2]), rater_noise_deg) for i, sc in enumerate(scenarios)]

    ids = [j["case_id"] for j in jobs]
    bayes = bayes_optimal_accuracy(scenarios, rater_noise_deg, seed=seed, draws=bayes_draws)
    clinical = draw_clinical(
        np.random.default_rng([seed, 2**31 - 3]),
        np.asarray([s.label_true for s in scenarios]),
        [s.location for s in scenarios],
        bmi=bmis,
    )
    clinical.insert(0, "label", labels)
    clinical.insert(0, "case_id", ids)
    codes = {var: dict(pairs) for var, pairs in preset.clinical_codes}
    for var, mapping in codes.items():  # the site's coding: values written as its codes
        to_code = {value: code for code, value in mapping.items()}
        clinical[var] = clinical[var].map(lambda v, t=to_code: t.get(v, v))
    clinical.to_csv(out / "clinical.csv", index=False)
    gt = pd.DataFrame(
        [
            {
                "case_id": cid,
                **sc.to_row(),
                "aortic_involvement": False,
                "gda_intact": True,
                "label": lab,
                "orientation": j["orientation"],
                "spacing_x": j["spacing"][0],
                "spacing_y": j["spacing"][1],
                "spacing_z": j["spacing"][2],
                "tumor_voxels": details[cid]["tumor_voxels"],
                "noise_sd_hu": round(details[cid]["noise_sd_hu"], 2),
                "tumor_hu": round(details[cid]["tumor_hu"], 1),
                "attempts": details[cid]["attempts"],
            }
            for cid, sc, lab, j in zip(ids, scenarios, labels, jobs)
        ]
    )
    gt.to_csv(out / "ground_truth.csv", index=False)
    pd.DataFrame(
        [
            {
                "variable": k,
                **{kk: (";".join(map(str, vv)) if isinstance(vv, list) else vv) for kk, vv in v.to_dict().items()},
                **({"values": "; ".join(f"{c}={val}" for c, val in codes[k].items())} if k in codes else {}),
            }
            for k, v in CLINICAL_SCHEMA.items()
        ]
    ).to_csv(out / "data_dictionary.csv", index=False)
    meta = {
        "source": "synthetic",
        "generator": GENERATOR_VERSION,
        "profile": profile,
        "seed": seed,
        "n": n,
        "rater_noise_deg": rater_noise_deg,
        "bayes_optimal_accuracy": bayes,
        "class_mix": list(class_mix),
        "angle_columns": [f"angle_{v}" for v in RULED],
        "tumor_not_touching": "every vessel keeps a fat plane except where ground_truth.csv says it is touched",
    }
    dataset = {
        "name": f"resectbench-phantom-{profile}-s{seed}",
        "description": "Synthetic peri-pancreatic CT phantoms with exact tumor-vessel contact (resectbench)",
        "channel_names": {"0": "CT"},
        "labels": {name: i for i, name in enumerate(preset.label_names or STRUCTURES)},
        "numTraining": n,
        "file_ending": ".nii.gz",
        "resectbench": meta,
    }
    (out / "dataset.json").write_text(json.dumps(dataset, indent=2))
    (out / "README.md").write_text(_readme(meta, gt))
    return out
