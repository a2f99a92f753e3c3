"""``dummy``: the chance row of every leaderboard (scikit-learn DummyClassifier, no features)."""

from __future__ import annotations

import numpy as np

from ..models.base import FitContext, ResectabilityModel
from ..registry import component
from ._sklearn import full_proba


@component(
    "dummy",
    tags=("baseline", "chance"),
    description="Chance level: class priors of the training part (scikit-learn DummyClassifier)",
)
class DummyRecipe(ResectabilityModel):
    """Predicts the training class frequencies for every case (``strategy="prior"``) or one-hot the
    majority class (``"most_frequent"``). Uses neither images nor clinical data: any model worth
    reporting must beat it."""

    mask_source = "none"  # and needs nothing: the default Needs()
    #: no early stopping: the protocol refits it on the whole outer-training part
    uses_validation = False

    def __init__(self, strategy: str = "prior"):
        super().__init__()
        if strategy not in ("prior", "most_frequent"):
            raise ValueError(f"dummy strategy must be 'prior' or 'most_frequent', got {strategy!r}")
        self.strategy = strategy
        self.classifier = None

    def fit(self, train, valid, ctx: FitContext) -> "DummyRecipe":
        from sklearn.dummy import DummyClassifier

        labels = np.asarray(train.labels, dtype=int)
        self.classifier = DummyClassifier(strategy=self.strategy).fit(np.zeros((len(labels), 1)), labels)
        return self

    def predict_proba(self, cohort, ctx: FitContext) -> np.ndarray:
        if self.classifier is None:
            raise RuntimeError("dummy: predict_proba called before fit")
        return full_proba(self.classifier, np.zeros((len(cohort.case_ids), 1)))

    def n_parameters(self) -> int:
        return 0 if self.classifier is None else int(np.size(self.classifier.class_prior_))
