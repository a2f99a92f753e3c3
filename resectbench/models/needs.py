"""What a model recipe needs from a cohort, declared by the recipe and checked before any work.

``run`` refuses a model whose needs the cohort does not meet, naming what is missing; ``data validate``
lists, for every registered model, whether the cohort can feed it and why not. Recipes say what they
need in :meth:`resectbench.models.base.ResectabilityModel.needs`; a plugin's recipe declares its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..vocabulary import vessel_group

MASKS = ("none", "training", "every case")


@dataclass(frozen=True)
class Needs:
    """``masks``: "none", "training" (masks on the training cases: an auxiliary segmentation, a segmenter
    or a localiser learns from them; inference stays mask-free) or "every case" (reference masks at test
    time too: an oracle). ``structures``: canonical structures those masks must annotate by name."""

    images: bool = False
    clinical: bool = False
    masks: str = "none"
    structures: tuple[str, ...] = ()
    gpu: bool = False
    #: (structures, what reads them and how to do without) pairs, for the refusal
    because: tuple[tuple[tuple[str, ...], str], ...] = ()

    def __post_init__(self):
        if self.masks not in MASKS:
            raise ValueError(f"Needs.masks must be one of {', '.join(MASKS)}, got {self.masks!r}")

    def __or__(self, other: "Needs") -> "Needs":
        """Both sets of needs (an ensemble needs what each expert needs)."""
        return Needs(
            images=self.images or other.images,
            clinical=self.clinical or other.clinical,
            masks=MASKS[max(MASKS.index(self.masks), MASKS.index(other.masks))],
            structures=tuple(dict.fromkeys((*self.structures, *other.structures))),
            gpu=self.gpu or other.gpu,
            because=(*self.because, *other.because),
        )


def grouped_vessel_labels(cohort) -> dict[str, tuple[str, ...]]:
    """Label names of ``cohort`` that group vessels -> the named vessels they lump together."""
    return {name: group for name in cohort.unmapped_labels if (group := vessel_group(name))}


def unmet(needs: Needs, cohort, device: str = "cpu") -> list[str]:
    """Why ``cohort`` cannot feed a model with ``needs`` (empty when it can)."""
    reasons = []
    if needs.clinical and len(cohort.clinical.columns) == 0:
        reasons.append("it uses clinical variables and the cohort has none (no clinical.csv columns)")
    masks = cohort.table["mask"] if "mask" in cohort.table.columns else None  # tables built in code may lack it
    with_mask = int(masks.notna().sum()) if masks is not None else 0
    if needs.masks == "every case" and with_mask < len(cohort):
        reasons.append(
            f"it reads the reference masks of every case, test cases included, and {len(cohort) - with_mask} of "
            f"{len(cohort)} cases have none"
        )
    elif needs.masks == "training" and with_mask == 0:
        reasons.append("it learns from masks on the training cases and no case has a mask")
    if needs.masks != "none" and with_mask:
        lacking = [s for s in needs.structures if s not in cohort.structures]
        if lacking:
            groups = grouped_vessel_labels(cohort)
            grouped = [f"'{g}' lumps {', '.join(v)} in one label" for g, v in groups.items() if set(v) & set(lacking)]
            has = ", ".join(cohort.structures) or "no structure resectbench knows"
            reasons.append(
                f"its masks must name {', '.join(lacking)}, which this cohort's label map does not (it has {has}"
                + (f"; {'; '.join(grouped)}, which names no vessel" if grouped else "")
                + ")"
                + "".join(f": {why}" for why in dict.fromkeys(w for s, w in needs.because if set(s) & set(lacking)))
            )
    if needs.gpu and not str(device).startswith("cuda"):
        reasons.append(f"it needs a CUDA GPU and runs on {device}")
    return reasons


def check_models(models, cohort, profile, device: str = "cpu") -> dict[str, list[str]]:
    """``{label: reasons}`` of the models (label -> recipe) the cohort cannot feed."""
    return {label: why for label, model in models.items() if (why := unmet(model.needs(profile), cohort, device))}
