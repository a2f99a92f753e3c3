"""``clinical-sklearn``: clinical variables only, logistic regression or gradient boosting.

The 17 clinical variables go through :class:`resectbench.data.clinical.ClinicalPreprocessor`
(KNN imputation + z-score for continuous, mode + one-hot for categorical; fitted on the training
part only), then into a scikit-learn classifier. The paper's "tabular-only" ablation is the neural
version of this row; this one shows what the clinical data give without any network.
"""

from __future__ import annotations

import numpy as np

from ..models.base import FitContext, ResectabilityModel
from ..registry import component
from ..search_space import Categorical, Float, Int
from ._sklearn import full_proba

CLASSIFIERS = ("logistic", "gradient-boosting")


@component(
    "clinical-sklearn",
    tags=("baseline", "clinical"),
    description="Clinical variables only: logistic regression or gradient boosting (scikit-learn)",
    search_space={
        "classifier": Categorical(list(CLASSIFIERS)),
        # each family's parameters are sampled only where they act
        "C": Float(1e-3, 1e2, log=True, when={"classifier": "logistic"}),
        "class_weight": Categorical(["balanced", "none"]),
        "learning_rate": Float(0.01, 0.3, log=True, when={"classifier": "gradient-boosting"}),
        "max_depth": Int(1, 4, when={"classifier": "gradient-boosting"}),
        "n_estimators": Int(50, 300, step=50, when={"classifier": "gradient-boosting"}),
    },
)
class ClinicalSklearnRecipe(ResectabilityModel):
    """Clinical-only classifier. ``C`` and ``class_weight`` tune the logistic regression,
    ``learning_rate``/``max_depth``/``n_estimators`` the gradient boosting (the other family's
    parameters are ignored). ``class_weight`` "balanced" weights classes inversely to their frequency
    (for gradient boosting through sample weights). ``exclude_leak_risk`` drops variables the schema
    flags as known only after biopsy or resection (histopathological grade)."""

    mask_source = "none"
    uses_validation = False

    def __init__(
        self,
        classifier: str = "logistic",
        C: float = 1.0,
        class_weight: str = "balanced",
        learning_rate: float = 0.1,
        max_depth: int = 2,
        n_estimators: int = 100,
        exclude_leak_risk: bool = False,
    ):
        super().__init__()
        if classifier not in CLASSIFIERS:
            raise ValueError(f"clinical-sklearn classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")
        if class_weight not in ("balanced", "none"):
            raise ValueError(f"clinical-sklearn class_weight must be 'balanced' or 'none', got {class_weight!r}")
        self.classifier_name = classifier
        self.C, self.class_weight = float(C), class_weight
        self.learning_rate, self.max_depth, self.n_estimators = float(learning_rate), int(max_depth), int(n_estimators)
        self.exclude_leak_risk = bool(exclude_leak_risk)
        self.preprocessor = None
        self.classifier = None

    def _features(self, cohort) -> np.ndarray:
        return np.asarray(self.preprocessor.transform(cohort.clinical.loc[cohort.case_ids]), dtype=float)

    def needs(self, profile=None):
        from ..models.needs import Needs

        return Needs(clinical=True)

    def fit(self, train, valid, ctx: FitContext) -> "ClinicalSklearnRecipe":
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.utils.class_weight import compute_sample_weight

        from ..data.clinical import ClinicalPreprocessor

        # variables known only after biopsy/resection (histopathological grade) can be left out
        leaky = (
            tuple(n for n, spec in train.clinical_schema.items() if getattr(spec, "leak_risk", False))
            if self.exclude_leak_risk
            else ()
        )
        self.preprocessor = ClinicalPreprocessor(exclude=leaky).fit(
            train.clinical.loc[train.case_ids], train.clinical_schema
        )
        X, y = self._features(train), np.asarray(train.labels, dtype=int)
        balanced = self.class_weight == "balanced"
        if self.classifier_name == "logistic":
            self.classifier = LogisticRegression(
                C=self.C, class_weight="balanced" if balanced else None, max_iter=2000, random_state=ctx.seed
            ).fit(X, y)
        else:
            weights = compute_sample_weight("balanced", y) if balanced else None
            self.classifier = GradientBoostingClassifier(
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                n_estimators=self.n_estimators,
                random_state=ctx.seed,
            ).fit(X, y, sample_weight=weights)
        return self

    def predict_proba(self, cohort, ctx: FitContext) -> np.ndarray:
        if self.classifier is None:
            raise RuntimeError("clinical-sklearn: predict_proba called before fit")
        return full_proba(self.classifier, self._features(cohort))

    def n_parameters(self) -> int:
        if self.classifier is None:
            return 0
        if self.classifier_name == "logistic":
            return int(self.classifier.coef_.size + self.classifier.intercept_.size)
        return int(sum(tree.tree_.node_count for tree in self.classifier.estimators_.ravel()))
