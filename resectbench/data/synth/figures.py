"""Axial and coronal slices of a case with its mask outlined, for docs and sanity checks.

Radiological convention: the patient's right is on the viewer's left, anterior (axial) or cranial
(coronal) at the top. Slices pass through the tumor centroid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..labels import INDEX

#: structures drawn in the overlay and their colours
OVERLAY = {
    "tumor": "#ff2d2d",
    "pancreas": "#ffd23f",
    "sma": "#ff8c00",
    "celiac_trunk": "#ff5fa2",
    "common_hepatic_artery": "#c77dff",
    "aorta": "#e63946",
    "smv": "#3a86ff",
    "portal_vein": "#00b4d8",
    "splenic_vein": "#48cae4",
    "ivc": "#4361ee",
    "splenic_artery": "#f4a261",
}


def focus_point(mask: np.ndarray, vessel: str | None = None) -> np.ndarray:
    """Voxel to slice through: the centre of the tumor's contact with ``vessel`` when there is one,
    else the tumor centroid, else the volume centre."""
    from scipy import ndimage

    tumor = mask == INDEX["tumor"]
    if vessel is not None:
        contact = np.argwhere(ndimage.binary_dilation(mask == INDEX[vessel]) & tumor)
        if len(contact):
            return contact.mean(axis=0).round().astype(int)
    if tumor.any():
        return np.argwhere(tumor).mean(axis=0).round().astype(int)
    return np.asarray(mask.shape) // 2


def plot_case(case, path: str | Path, title: str = "", window=(-160, 240), vessel: str | None = None) -> Path:
    """Save a 2x2 panel (axial/coronal, plain and with mask outlines) of a :class:`CaseVolume`, sliced
    through the tumor's contact with ``vessel`` (or the tumor centroid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    img, mask, sp = case.image, case.mask, case.spacing
    cx, cy, cz = focus_point(mask, vessel) if mask is not None else np.asarray(img.shape) // 2
    views = [
        ("axial", img[::-1, ::-1, cz].T, None if mask is None else mask[::-1, ::-1, cz].T, (sp[0], sp[1])),
        ("coronal", img[::-1, cy, ::-1].T, None if mask is None else mask[::-1, cy, ::-1].T, (sp[0], sp[2])),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(9, 9))
    for col, (name, im, mk, (sx, sy)) in enumerate(views):
        extent = (0, im.shape[1] * sx, im.shape[0] * sy, 0)
        for row in range(2):
            ax = axes[row, col]
            ax.imshow(im, cmap="gray", vmin=window[0], vmax=window[1], extent=extent, interpolation="nearest")
            if row == 1 and mk is not None:
                for struct, colour in OVERLAY.items():
                    m = (mk == INDEX[struct]).astype(float)
                    if m.any():
                        xs = (np.arange(im.shape[1]) + 0.5) * sx
                        ys = (np.arange(im.shape[0]) + 0.5) * sy
                        ax.contour(xs, ys, m, levels=[0.5], colors=[colour], linewidths=1.2)
            ax.set_title(f"{name}{' + mask' if row else ''}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(2, 6, "R", color="w", fontsize=9, va="top")
            ax.text(im.shape[1] * sx - 2, 6, "L", color="w", fontsize=9, va="top", ha="right")
    handles = [Line2D([0], [0], color=c, lw=2, label=s) for s, c in OVERLAY.items()]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


#: (file stem, class, mechanisms wanted in that order of preference) for the docs
DOC_FIGURES = (
    ("phantom_resectable", 0, ("vein_le180_smooth", "none")),
    ("phantom_borderline", 1, ("sma_le180", "vein_gt180", "cha", "vein_irregular")),
    ("phantom_locally_advanced", 2, ("sma_gt180",)),
    ("phantom_locally_advanced_vein", 2, ("vein_unreconstructable",)),
)
CONTACT_VESSELS = ("sma", "celiac_trunk", "common_hepatic_artery", "smv", "portal_vein", "ivc")


def write_doc_figures(
    out_dir: str | Path, n: int = 30, seed: int = 0, profile: str = "cpu", workdir: str | Path | None = None
) -> list[Path]:
    """Generate a small cohort and draw one case per class (plus a venous LA case) for docs/images."""
    import tempfile

    from ..readers import load_cohort
    from .generate import generate_cohort

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(workdir or tmp) / f"doc-figures-{profile}-s{seed}"
        if not (root / "dataset.json").exists():
            generate_cohort(root, n=n, seed=seed, profile=profile)
        cohort = load_cohort(root)
        gt = cohort.ground_truth
        written = []
        for stem, label, mechanisms in DOC_FIGURES:
            pool = gt[gt["label_true"] == label].sort_values("tumor_voxels", ascending=False)  # largest first
            pick = next(
                (pool.index[pool["mechanism"] == m][0] for m in mechanisms if (pool["mechanism"] == m).any()), None
            )
            if pick is None:
                continue
            row = gt.loc[pick]
            angles = {v: float(row[f"angle_{v}"]) for v in CONTACT_VESSELS}
            vessel = max(angles, key=angles.get) if max(angles.values()) > 0 else None
            touched = ", ".join(f"{v} {a:.0f} deg" for v, a in angles.items() if a > 0) or "no vessel contact"
            title = (
                f"{pick}: {row['tumor_location']} tumor, class {label} ({stem.split('_', 1)[1].replace('_', ' ')})"
                f"\ncontact: {touched}; rules: {row['rules'] or 'none'}"
            )
            written.append(plot_case(cohort.load_case(pick), Path(out_dir) / f"{stem}.png", title=title, vessel=vessel))
        return written
