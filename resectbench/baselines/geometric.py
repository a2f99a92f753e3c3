"""Geometric baselines: NCCN rules on measured contact, and geometry features + a classifier.

``geometric-rules`` applies a rule set (default the NCCN table ``nccn-2019``; ``rules=`` names another
shipped set or a rule file, :mod:`resectbench.geometry.nccn`) to contact angles measured on masks; the few thresholds that turn measurements into rule inputs (vein
deformity, unreconstructable encasement length, CHA reach, minimum contact) can be fitted on the
training part. Class probabilities are the training confusion matrix row of the predicted class
(Laplace-smoothed), so AUC is defined and reflects how often each rule class is right.

``geometric-features`` (after Viviers et al. 2023 as adapted in the paper): per-vessel contact
angle, contact length, minimum distance, >180 and encasement flags, vein deformity, tumor
location/volume, optionally the clinical variables (and, with ``rules=``, that rule set's class),
into a scikit-learn classifier whose type and hyper-parameters are in the registry search space.

Mask sources. ``-oracle`` recipes measure the cohort's ground-truth masks at test time too: an
upper bound, tagged ``oracle`` and labelled so in every table. The plain names use masks from a
segmenter trained on the training part only (:func:`resectbench.models.segmenter.train_segmenter`;
in a profile with a cascade, :func:`resectbench.models.cascade.train_window_segmenter`: a localiser
and a small U-Net of every structure in the fine window around the predicted tumour, so contact is
measured at 1.5 mm in a CPU budget), so inference needs no mask; training features come from the training cases' ground-truth masks
(masks may be used in fit). Measurements are cached by mask content under ``ctx.cache_dir``.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import numpy as np

from ..errors import DataError
from ..models.base import N_CLASSES, FitContext, ResectabilityModel
from ..registry import component
from ..search_space import Categorical, Float, Int
from ._sklearn import full_proba
from .geometric_measure import (
    MASK_SOURCES,
    GeometryCache,
    RuleThresholds,
    array_geometry,
    cohort_label_map,
    feature_table,
    fit_thresholds,
    oracle_geometry,
    rule_decision,
    rule_labels,
)

CLASSIFIERS = ("logistic", "random-forest", "gradient-boosting")


class _GeometricRecipe(ResectabilityModel):
    uses_validation = False

    def __init__(
        self,
        mask_source: str,
        segmenter_backbone: str = "cnn3d",
        segmenter_epochs: int | None = None,
        rules=None,
        localiser_epochs: int | None = None,
        masks: str | None = None,
        mask_labels: str | None = None,
    ):
        super().__init__()
        from ..geometry.nccn import load_rules

        self.rules = load_rules(rules)  # a RulesError naming the file now, not after training
        if mask_source not in MASK_SOURCES:
            raise ValueError(f"mask_source must be one of {', '.join(MASK_SOURCES)}, got {mask_source!r}")
        self.masks, self.mask_labels = (str(masks), mask_labels) if masks else (None, None)
        if self.masks:  # another segmenter's masks replace the trained one, for training and test cases alike
            mask_source = "external"
            self._check_mask_folder()
        self.mask_source = mask_source
        self.segmenter = None
        self.segmenter_backbone, self.segmenter_epochs = segmenter_backbone, segmenter_epochs
        self.localiser_epochs = localiser_epochs  # the cascade's stage 1 (None: the profile's)
        self.label_map: dict[str, int] | None = None

    def _cache(self, ctx: FitContext) -> GeometryCache:
        return GeometryCache(ctx.cache_dir)

    def _check_mask_folder(self) -> None:
        """Before any work: the folder exists and its label map names the tumour and every rule vessel."""
        from pathlib import Path

        from ..data.readers.masks import read_label_map
        from ..vocabulary import STRUCTURE_INDEX

        folder = Path(self.masks).expanduser()
        if not folder.is_dir():
            raise DataError(f"masks={self.masks!r}: no such folder of masks")
        label_map, _ = read_label_map(folder, self.mask_labels)
        vessels = dict.fromkeys(v for rule in self.rules.rules for v in rule.vessels if v in STRUCTURE_INDEX)
        lacking = [s for s in ("tumor", *vessels) if s not in label_map]
        if lacking:
            raise DataError(
                f"masks={self.masks!r}: its label map names no {', '.join(lacking)} (it has "
                f"{', '.join(n for n in label_map if n != 'background')}); rule set {self.rules.name!r} reads "
                "each by name (mask_labels= gives a dataset.json or a JSON/TOML map of name -> value)"
            )

    def _external(self, cohort):
        from ..data.readers.masks import with_masks_from

        return with_masks_from(cohort, self.masks, self.mask_labels)

    def trains(self) -> str:
        return "a 3D segmenter" if self.mask_source == "predicted" else ""

    def needs(self, profile=None):
        """Reference masks naming the tumour and every vessel the rule set reads: on the training cases (the
        segmenter learns from them, the thresholds are fitted on them), on every case for the oracle."""
        from ..models.needs import Needs
        from ..vocabulary import STRUCTURE_INDEX

        vessels = dict.fromkeys(v for rule in self.rules.rules for v in rule.vessels if v in STRUCTURE_INDEX)
        if self.mask_source == "external":  # the cohort's own masks are not read
            return Needs(images=True, clinical=bool(getattr(self, "use_clinical", False)))
        return Needs(
            images=True,
            clinical=bool(getattr(self, "use_clinical", False)),
            masks="every case" if self.mask_source == "oracle" else "training",
            structures=("tumor", *vessels),
            because=((("tumor", *vessels), f"rule set {self.rules.name!r} reads the contact of each by name"),),
        )

    def _train_geometry(self, train, ctx: FitContext) -> dict:
        """Training measurements always come from ground-truth masks; the segmenter (predicted source)
        is trained here, on the training part only."""
        if self.mask_source == "external":
            train = self._external(train)
        self.label_map = cohort_label_map(train)
        geoms = oracle_geometry(train, self._cache(ctx), ctx.on_progress)
        if self.mask_source == "predicted":
            try:
                from ..models.cascade import train_window_segmenter
                from ..models.segmenter import train_segmenter
            except ImportError as exc:  # the segmenter module belongs to the models package
                raise DataError(
                    "mask_source='predicted' needs resectbench.models.segmenter.train_segmenter, "
                    f"which is not available ({exc}); use the -oracle recipe for an upper bound"
                ) from exc
            if ctx.profile.cascade is not None:  # contact measured in the cascade's fine window
                if self.localiser_epochs:  # a cheaper (or longer) stage 1 than the profile's, for this recipe only
                    cascade = replace(ctx.profile.cascade, localiser_epochs=int(self.localiser_epochs))
                    ctx = replace(ctx, profile=ctx.profile.with_(cascade=cascade))
                self.segmenter = train_window_segmenter(
                    train, ctx, **({"epochs": self.segmenter_epochs} if self.segmenter_epochs else {})
                )
            else:
                self.segmenter = train_segmenter(
                    train, ctx, backbone=self.segmenter_backbone, epochs=self.segmenter_epochs
                )
        return geoms

    def _test_geometry(self, cohort, ctx: FitContext) -> dict:
        if self.mask_source == "oracle":
            return oracle_geometry(cohort, self._cache(ctx), ctx.on_progress)
        if self.mask_source == "external":
            return oracle_geometry(self._external(cohort), self._cache(ctx), ctx.on_progress)
        if self.segmenter is None:
            raise RuntimeError(f"{type(self).__name__}: predict_proba called before fit")
        masks = self.segmenter.predict_masks(cohort)  # never the cohort's own masks
        missing = [c for c in cohort.case_ids if c not in masks]
        if missing:
            raise DataError(f"the segmenter returned no mask for {len(missing)} case(s)", case_id=missing[0])
        return array_geometry({c: masks[c] for c in cohort.case_ids}, self._cache(ctx), self.label_map)

    def extra_outputs(self, cohort, ctx: FitContext) -> dict[str, Any]:
        """``contact_deg``: case -> vessel -> measured angle (on this recipe's mask source), and the
        rule decision with its reasons, for reports (e.g. :func:`resectbench.geometry.plots.contact_scatter`)."""
        geoms = self._test_geometry(cohort, ctx)
        out = {"contact_deg": {}, "rules": {}}
        for cid in cohort.case_ids:
            g = geoms[cid]
            out["contact_deg"][cid] = dict(zip(g.vessels["vessel"], g.vessels["contact_deg"].astype(float)))
            d = rule_decision(g, getattr(self, "thresholds", RuleThresholds()), self.rules)
            out["rules"][cid] = {"label": d.label, "rules": d.rules, "reasons": d.reasons, "rule_set": d.version}
        return out


class GeometricRules(_GeometricRecipe):
    """NCCN rules on measured tumor-vessel contact."""

    def __init__(
        self,
        mask_source: str = "predicted",
        fit_thresholds: bool = True,
        modified_appleby: str | None = None,
        head_ca_le_180: str | None = None,
        min_contact_deg: float = 0.0,
        deformity: float = 0.08,
        unreconstructable_length_mm: float = 24.0,
        cha_reach_mm: float = 4.0,
        smoothing: float = 1.0,
        segmenter_backbone: str = "cnn3d",
        segmenter_epochs: int | None = None,
        rules: str = "nccn-2019",
        localiser_epochs: int | None = None,
        masks: str | None = None,
        mask_labels: str | None = None,
    ):
        super().__init__(mask_source, segmenter_backbone, segmenter_epochs, rules, localiser_epochs, masks, mask_labels)
        # given values (the tuner's, or fixed ones) replace the rule set's own option; None keeps it
        self.rules = self.rules.with_options(modified_appleby=modified_appleby, head_ca_le_180=head_ca_le_180)
        self.thresholds = RuleThresholds(
            min_contact_deg=float(min_contact_deg),
            deformity=float(deformity),
            unreconstructable_length_mm=float(unreconstructable_length_mm),
            cha_reach_mm=float(cha_reach_mm),
        )
        self.fit_thresholds = bool(fit_thresholds)
        self.smoothing = float(smoothing)
        self.confusion = np.full((N_CLASSES, N_CLASSES), self.smoothing)

    def _labels(self, geoms, ids, thresholds) -> np.ndarray:
        return rule_labels(geoms, ids, thresholds, self.rules)

    def fit(self, train, valid, ctx: FitContext) -> "GeometricRules":
        geoms = self._train_geometry(train, ctx)
        ids, y = train.case_ids, np.asarray(train.labels, dtype=int)
        if self.fit_thresholds:
            self.thresholds = fit_thresholds(geoms, ids, y, self.thresholds, self.rules)
        pred = self._labels(geoms, ids, self.thresholds)
        self.confusion = np.full((N_CLASSES, N_CLASSES), self.smoothing)
        np.add.at(self.confusion, (pred, y), 1.0)
        self.history = [
            {
                "train_rule_accuracy": float(np.mean(pred == y)),
                "rule_set": self.rules.version,
                **asdict(self.thresholds),
            }
        ]
        return self

    def predict_proba(self, cohort, ctx: FitContext) -> np.ndarray:
        geoms = self._test_geometry(cohort, ctx)
        pred = self._labels(geoms, cohort.case_ids, self.thresholds)
        table = self.confusion / self.confusion.sum(axis=1, keepdims=True)
        return table[pred]

    def n_parameters(self) -> int:
        return len(asdict(self.thresholds)) + self.confusion.size


class GeometricFeatures(_GeometricRecipe):
    """Geometry features (+ clinical variables) into a scikit-learn classifier."""

    def __init__(
        self,
        mask_source: str = "predicted",
        classifier: str = "random-forest",
        use_clinical: bool = True,
        C: float = 1.0,
        n_estimators: int = 200,
        max_depth: int = 4,
        learning_rate: float = 0.1,
        min_samples_leaf: int = 2,
        class_weight: str = "balanced",
        segmenter_backbone: str = "cnn3d",
        segmenter_epochs: int | None = None,
        rules: str | None = None,
        localiser_epochs: int | None = None,
        masks: str | None = None,
        mask_labels: str | None = None,
    ):
        super().__init__(mask_source, segmenter_backbone, segmenter_epochs, rules, localiser_epochs, masks, mask_labels)
        #: with a rule set named, its class (0/1/2, default thresholds) is one more feature
        self.rule_feature = rules is not None
        if classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")
        if class_weight not in ("balanced", "none"):
            raise ValueError(f"class_weight must be 'balanced' or 'none', got {class_weight!r}")
        self.classifier_name, self.use_clinical = classifier, bool(use_clinical)
        self.C, self.n_estimators, self.max_depth = float(C), int(n_estimators), int(max_depth)
        self.learning_rate, self.min_samples_leaf = float(learning_rate), int(min_samples_leaf)
        self.class_weight = class_weight
        self.scaler = self.preprocessor = self.classifier = None
        self.feature_names: list[str] = []

    def _geometry_table(self, geoms, case_ids):
        geo = feature_table(geoms, case_ids)
        if self.rule_feature:
            geo["rule_class"] = rule_labels(geoms, case_ids, RuleThresholds(), self.rules).astype(float)
        return geo

    def _features(self, cohort, geoms) -> np.ndarray:
        geo = self._geometry_table(geoms, cohort.case_ids)
        X = self.scaler.transform(geo.to_numpy(dtype=float))
        if self.preprocessor is not None:
            X = np.hstack([X, np.asarray(self.preprocessor.transform(cohort.clinical.loc[cohort.case_ids]), float)])
        return X

    def fit(self, train, valid, ctx: FitContext) -> "GeometricFeatures":
        from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
        from sklearn.utils.class_weight import compute_sample_weight

        geoms = self._train_geometry(train, ctx)
        geo = self._geometry_table(geoms, train.case_ids)
        self.scaler = StandardScaler().fit(geo.to_numpy(dtype=float))
        self.feature_names = list(geo.columns)
        self.preprocessor = None
        if self.use_clinical and train.clinical is not None and len(train.clinical.columns):
            from ..data.clinical import ClinicalPreprocessor

            self.preprocessor = ClinicalPreprocessor().fit(train.clinical.loc[train.case_ids], train.clinical_schema)
            self.feature_names += list(self.preprocessor.feature_names_out())
        X, y = self._features(train, geoms), np.asarray(train.labels, dtype=int)
        balanced = self.class_weight == "balanced"
        if self.classifier_name == "logistic":
            clf = LogisticRegression(
                C=self.C, class_weight="balanced" if balanced else None, max_iter=5000, random_state=ctx.seed
            )
            clf.fit(X, y)
        elif self.classifier_name == "random-forest":
            clf = RandomForestClassifier(
                n_estimators=self.n_estimators,
                max_depth=self.max_depth,
                min_samples_leaf=self.min_samples_leaf,
                n_jobs=1,
                class_weight="balanced" if balanced else None,
                random_state=ctx.seed,
            )
            clf.fit(X, y)
        else:
            clf = GradientBoostingClassifier(
                n_estimators=self.n_estimators,
                max_depth=self.max_depth,
                learning_rate=self.learning_rate,
                min_samples_leaf=self.min_samples_leaf,
                random_state=ctx.seed,
            )
            clf.fit(X, y, sample_weight=compute_sample_weight("balanced", y) if balanced else None)
        self.classifier = clf
        return self

    def predict_proba(self, cohort, ctx: FitContext) -> np.ndarray:
        if self.classifier is None:
            raise RuntimeError("geometric-features: predict_proba called before fit")
        return full_proba(self.classifier, self._features(cohort, self._test_geometry(cohort, ctx)))

    def n_parameters(self) -> int:
        clf = self.classifier
        if clf is None:
            return 0
        if self.classifier_name == "logistic":
            return int(clf.coef_.size + clf.intercept_.size)
        trees = clf.estimators_.ravel() if self.classifier_name == "gradient-boosting" else clf.estimators_
        return int(sum(t.tree_.node_count for t in trees))


RULES_SPACE = {
    "fit_thresholds": Categorical([True, False]),
    # the modified-Appleby cell, BR or LA (was the parameter modified_appleby); fixing `rules` takes it out
    "rules": Categorical(["nccn-2019", "nccn-2019-appleby-la"]),
}
FEATURES_SPACE = {
    "classifier": Categorical(list(CLASSIFIERS)),
    "use_clinical": Categorical([True, False]),
    "C": Float(1e-3, 1e2, log=True),
    "n_estimators": Int(50, 400, step=50),
    "max_depth": Int(2, 8),
    "learning_rate": Float(0.01, 0.3, log=True),
    "min_samples_leaf": Int(1, 8),
    "class_weight": Categorical(["balanced", "none"]),
}
_ORACLE_NOTE = " ORACLE: ground-truth masks at test time - an upper bound, not a mask-free method."


@component(
    "geometric-rules",
    tags=("baseline", "geometric", "predicted-masks"),
    search_space=RULES_SPACE,
    description="NCCN rules on contact measured from masks predicted by a segmenter trained on the "
    "training part (mask-free inference)",
)
def geometric_rules(
    fit_thresholds: bool = True,
    rules: str = "nccn-2019",
    modified_appleby: str | None = None,
    head_ca_le_180: str | None = None,
    min_contact_deg: float = 0.0,
    deformity: float = 0.08,
    unreconstructable_length_mm: float = 24.0,
    cha_reach_mm: float = 4.0,
    segmenter_backbone: str = "cnn3d",
    segmenter_epochs: int | None = None,
    localiser_epochs: int | None = None,
    masks: str | None = None,
    mask_labels: str | None = None,
) -> GeometricRules:
    """Rules (``rules``: a shipped rule-set name or a rule file; ``modified_appleby``/``head_ca_le_180``
    R/BR/LA replace that set's options, None keeps them) on measured contact; masks predicted by a
    segmenter trained on the training part (``segmenter_backbone``, ``segmenter_epochs`` - None: the
    profile's - go to ``train_segmenter``). In a profile with a cascade, ``localiser_epochs`` (None: the
    profile's) sets its stage 1 for this recipe: 15 with ``segmenter_epochs=20`` fits a 5-fold row in
    ~12 min on 2 cores (benchmarks/paper/cascade-budget.toml). ``masks=FOLDER``: another segmenter's label
    maps (``CASE_ID.nii.gz``; ``mask_labels``: their label map, default ``FOLDER/dataset.json``) instead of
    a trained segmenter, for training and test cases alike (mask source ``external`` on the board)."""
    return GeometricRules(
        "predicted",
        fit_thresholds,
        modified_appleby,
        head_ca_le_180,
        min_contact_deg,
        deformity,
        unreconstructable_length_mm,
        cha_reach_mm,
        segmenter_backbone=segmenter_backbone,
        segmenter_epochs=segmenter_epochs,
        rules=rules,
        localiser_epochs=localiser_epochs,
        masks=masks,
        mask_labels=mask_labels,
    )


@component(
    "geometric-rules-oracle",
    tags=("baseline", "geometric", "oracle"),
    search_space=RULES_SPACE,
    description="NCCN rules on contact measured from ground-truth masks." + _ORACLE_NOTE,
)
def geometric_rules_oracle(
    fit_thresholds: bool = True,
    rules: str = "nccn-2019",
    modified_appleby: str | None = None,
    head_ca_le_180: str | None = None,
    min_contact_deg: float = 0.0,
    deformity: float = 0.08,
    unreconstructable_length_mm: float = 24.0,
    cha_reach_mm: float = 4.0,
) -> GeometricRules:
    """Rules (``rules``, options as for ``geometric-rules``) on contact measured from ground-truth masks
    (upper bound)."""
    return GeometricRules(
        "oracle",
        fit_thresholds,
        modified_appleby,
        head_ca_le_180,
        min_contact_deg,
        deformity,
        unreconstructable_length_mm,
        cha_reach_mm,
        rules=rules,
    )


@component(
    "geometric-features",
    tags=("baseline", "geometric", "predicted-masks", "clinical"),
    search_space=FEATURES_SPACE,
    description="Viviers-style geometry features (+ clinical) into a tuned scikit-learn classifier; masks "
    "predicted by a segmenter trained on the training part",
)
def geometric_features(
    classifier: str = "random-forest",
    use_clinical: bool = True,
    C: float = 1.0,
    n_estimators: int = 200,
    max_depth: int = 4,
    learning_rate: float = 0.1,
    min_samples_leaf: int = 2,
    class_weight: str = "balanced",
    segmenter_backbone: str = "cnn3d",
    segmenter_epochs: int | None = None,
    rules: str | None = None,
    localiser_epochs: int | None = None,
    masks: str | None = None,
    mask_labels: str | None = None,
) -> GeometricFeatures:
    """Geometry features (+ clinical; + the class of rule set ``rules`` when given) -> scikit-learn
    classifier; predicted masks (``segmenter_backbone``, ``segmenter_epochs`` - None: the profile's - go to
    ``train_segmenter``; ``localiser_epochs``: the cascade's stage 1, None: the profile's), or with
    ``masks=FOLDER`` another segmenter's label maps (``mask_labels``: their label map)."""
    return GeometricFeatures(
        "predicted",
        classifier,
        use_clinical,
        C,
        n_estimators,
        max_depth,
        learning_rate,
        min_samples_leaf,
        class_weight,
        segmenter_backbone=segmenter_backbone,
        segmenter_epochs=segmenter_epochs,
        rules=rules,
        localiser_epochs=localiser_epochs,
        masks=masks,
        mask_labels=mask_labels,
    )


@component(
    "geometric-features-oracle",
    tags=("baseline", "geometric", "oracle", "clinical"),
    search_space=FEATURES_SPACE,
    description="Viviers-style geometry features (+ clinical) into a tuned scikit-learn classifier on "
    "ground-truth masks." + _ORACLE_NOTE,
)
def geometric_features_oracle(
    classifier: str = "random-forest",
    use_clinical: bool = True,
    C: float = 1.0,
    n_estimators: int = 200,
    max_depth: int = 4,
    learning_rate: float = 0.1,
    min_samples_leaf: int = 2,
    class_weight: str = "balanced",
    rules: str | None = None,
) -> GeometricFeatures:
    """Geometry features (+ clinical; + the class of rule set ``rules`` when given) -> scikit-learn
    classifier on ground-truth masks (upper bound)."""
    return GeometricFeatures(
        "oracle",
        classifier,
        use_clinical,
        C,
        n_estimators,
        max_depth,
        learning_rate,
        min_samples_leaf,
        class_weight,
        rules=rules,
    )
