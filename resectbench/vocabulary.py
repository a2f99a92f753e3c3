"""The names every part of resectbench shares, defined once (imports nothing from the package).

Classes and their probability columns, the metrics and which way each is better, the unit key of
a run directory (``fold_<repeat>_<fold>``), canonical segmentation structures and the vessel sets
built from them, and the file names of the run-directory layout (docs/results-format.md). The
protocol writes run directories through these names and the leaderboard reads them through the
same names, so neither needs to import the other (nor the models). Two helpers that several
layers need and that must agree everywhere live here too: :func:`macro_f1` (training loop and
protocol) and :func:`resolve_device`; their heavy dependencies are imported lazily.
"""

from __future__ import annotations

# -- classes -----------------------------------------------------------------------------------------
#: the three resectability classes, in label order (0, 1, 2)
CLASS_NAMES: tuple[str, ...] = ("resectable", "borderline", "locally_advanced")
N_CLASSES = len(CLASS_NAMES)
SHORT_CLASS_NAMES: tuple[str, ...] = ("R", "BR", "LA")
#: the class names as prose ("locally advanced")
CLASS_DISPLAY_NAMES: tuple[str, ...] = tuple(name.replace("_", " ") for name in CLASS_NAMES)

#: probability columns of predictions.csv / oof_predictions.csv (a list: pandas selects columns with it)
PROB_COLUMNS: list[str] = [f"prob_{c}" for c in CLASS_NAMES]
PREDICTION_COLUMNS: list[str] = ["case_id", "repeat", "fold", "label", *PROB_COLUMNS, "pred"]

# -- metrics -----------------------------------------------------------------------------------------
#: metrics where a smaller value is better; every other metric is "higher is better"
LOWER_IS_BETTER = frozenset({"ece", "brier"})


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def metric_sign(metric: str) -> int:
    """+1 or -1: ``metric_sign(m) * value`` is higher-is-better (the tuning objective's orientation)."""
    return 1 if higher_is_better(metric) else -1


def per_class_metric(prefix: str) -> tuple[str, ...]:
    """``f1`` -> ``("f1_resectable", "f1_borderline", "f1_locally_advanced")``."""
    return tuple(f"{prefix}_{c}" for c in CLASS_NAMES)


# -- component slots of composed recipes ------------------------------------------------------------
#: recipe parameter naming a component -> (registry kind, dotted prefix of that component's options).
#: The prefixes are the ones ``NeuralRecipe`` accepts (``fusion.dropout``; models/recipes/compose.py);
#: the order is that of composed model labels (``swinunetr-fusion+cnn3d+late``).
COMPONENT_SLOTS: dict[str, tuple[str, str]] = {
    "backbone": ("backbones", "backbone."),
    "fusion": ("fusions", "fusion."),
    "clinical_encoder": ("clinical_encoders", "clinical."),
    "loss_schedule": ("loss_schedules", "schedule."),
    "balancing": ("balancing", "balancing."),
}


# -- run-directory layout (docs/results-format.md) ---------------------------------------------------
class RunFiles:
    """File and folder names of a run directory; both the writer and the readers use these."""

    MANIFEST = "manifest.json"
    SPLITS = "splits.json"
    CONFIG = "config.toml"
    OPTUNA_DB = "optuna.db"
    CACHE_DIR = "cache"
    WORK_DIR = "work"
    MODELS_DIR = "models"
    COHORT_DIR = "cohort"
    CASES = "cases.csv"  # in COHORT_DIR
    GROUND_TRUTH = "ground_truth.csv"  # in COHORT_DIR
    # per model (MODELS_DIR/<label>/)
    MODEL_INFO = "model.json"
    OOF_PREDICTIONS = "oof_predictions.csv"
    OOF_METRICS = "oof_metrics.json"
    # per unit (MODELS_DIR/<label>/<unit key>/); DONE is written last
    PREDICTIONS = "predictions.csv"
    METRICS = "metrics.json"
    BEST_PARAMS = "best_params.json"
    TRIALS = "trials.csv"
    HISTORY = "history.csv"
    TIMINGS = "timings.json"
    DONE = "DONE"
    # the final model of a model (MODELS_DIR/<label>/final/): tuned and fitted on the whole development
    # cohort; its files are those of a unit (trials, best_params, history, timings, DONE) plus these
    FINAL_DIR = "final"
    FINAL_INFO = "final.json"  # recipe, params, seed, profile, training/validation case ids, state kind
    STATE_DIR = "state"  # weights-only checkpoint(s) + fitted preprocessing as JSON (no pickle)
    # external cohorts (MODELS_DIR/<label>/external/<cohort>/): predictions + metrics + DONE
    EXTERNAL_DIR = "external"
    EXTERNAL_INFO = "external.json"  # per run: cohort name -> path, fingerprint, n_cases, class counts


#: glob of unit folders in a model folder
UNIT_GLOB = "fold_*_*"


def unit_key(repeat: int, fold: int) -> str:
    """Name of a unit (one model, repeat, outer fold) and of its folder: ``fold_<repeat>_<fold>``."""
    return f"fold_{repeat}_{fold}"


def parse_unit_key(key: str) -> tuple[int, int]:
    """``fold_<repeat>_<fold>`` -> (repeat, fold); ValueError if ``key`` is not a unit key."""
    repeat, fold = (int(x) for x in key.split("_")[1:3])
    return repeat, fold


# -- canonical structures and vessel sets ------------------------------------------------------------
#: the canonical segmentation structures in label order (the 16-class segmentation head)
STRUCTURES: tuple[str, ...] = (
    "background",
    "pancreas",
    "tumor",
    "portal_vein",
    "splenic_vein",
    "smv",
    "ivc",
    "sma",
    "celiac_trunk",
    "aorta",
    "common_hepatic_artery",
    "proper_hepatic_artery",
    "gastroduodenal_artery",
    "splenic_artery",
    "pancreatic_duct",
    "bile_duct",
)
STRUCTURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(STRUCTURES)}
#: the NCCN-relevant arteries and veins among the canonical structures
ARTERIES: tuple[str, ...] = ("sma", "celiac_trunk", "common_hepatic_artery")
VEINS: tuple[str, ...] = ("smv", "portal_vein")
#: replaced or accessory hepatic arteries: not canonical structures, but callers with that
#: information may pass contact for them to the rule engine under these names
VARIANT_ARTERIES: tuple[str, ...] = ("variant_hepatic_artery", "replaced_hepatic_artery", "accessory_hepatic_artery")
#: every vessel the NCCN rule table has rows for (variant arteries included)
RULE_TABLE_VESSELS: tuple[str, ...] = (*ARTERIES, *VARIANT_ARTERIES, *VEINS, "ivc")
#: the rule-table vessels that are canonical structures: what is measured on masks for the rules
MEASURED_RULE_VESSELS: tuple[str, ...] = tuple(v for v in RULE_TABLE_VESSELS if v in STRUCTURE_INDEX)

#: label names that lump several vessels in one label (PANORAMA's "arteries" / "veins"): such a mask cannot
#: tell the SMA from the celiac trunk, so it names no vessel that a rule or a contact feature reads by name
VESSEL_GROUPS: dict[str, tuple[str, ...]] = {
    "arteries": ARTERIES,
    "artery": ARTERIES,
    "arterial": ARTERIES,
    "veins": VEINS,
    "vein": VEINS,
    "venous": VEINS,
}


def vessel_group(name: str) -> tuple[str, ...] | None:
    """The named vessels a grouped label (``"Arteries"``) lumps together; None for any other name."""
    return VESSEL_GROUPS.get(str(name).strip().lower().replace(" ", "_").replace("-", "_"))


#: dataset label names -> canonical structure names
STRUCTURE_ALIASES = {
    "bg": "background",
    "0": "background",
    "pdac": "tumor",
    "tumour": "tumor",
    "cancer": "tumor",
    "lesion": "tumor",
    "pancreatic_tumor": "tumor",
    "pdac_lesion": "tumor",
    "pancreas_tumor": "tumor",
    "mass": "tumor",
    "pancreatic": "pancreas",
    "pancreas_parenchyma": "pancreas",
    "superior_mesenteric_artery": "sma",
    "superior_mesenteric_vein": "smv",
    "pv": "portal_vein",
    "portal": "portal_vein",
    "portalvein": "portal_vein",
    "celiac": "celiac_trunk",
    "celiac_axis": "celiac_trunk",
    "coeliac_trunk": "celiac_trunk",
    "ca": "celiac_trunk",
    "truncus_coeliacus": "celiac_trunk",
    "cha": "common_hepatic_artery",
    "hepatic_artery": "common_hepatic_artery",
    "pha": "proper_hepatic_artery",
    "gda": "gastroduodenal_artery",
    "splenic_v": "splenic_vein",
    "sv": "splenic_vein",
    "spleen_vein": "splenic_vein",
    "inferior_vena_cava": "ivc",
    "vena_cava": "ivc",
    "postcava": "ivc",
    "duct": "pancreatic_duct",
    "dilated_pancreatic_duct": "pancreatic_duct",
    "pd": "pancreatic_duct",
    "common_bile_duct": "bile_duct",
    "cbd": "bile_duct",
}


def canonical_name(name: str) -> str | None:
    """Canonical structure for a dataset's label name, or None if it is not one we know."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    if key in STRUCTURE_INDEX:
        return key
    return STRUCTURE_ALIASES.get(key)


# -- shared helpers ----------------------------------------------------------------------------------
def macro_f1(y_true, y_pred, n_classes: int = N_CLASSES) -> float:
    """Macro-F1 over all classes (a class absent from both counts as F1 0, as in scikit-learn)."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=list(range(n_classes)), average="macro", zero_division=0))


def resolve_device(device: str | None) -> str:
    """``auto``/None -> cuda when available, else mps, else cpu; any other name is returned as given."""
    if device not in (None, "", "auto"):
        return str(device)
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
