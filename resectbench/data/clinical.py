"""Clinical preprocessing as a scikit-learn pipeline, fitted on the training part only.

Continuous variables: z-score with training statistics, then KNN imputation (k = 5) in that
z-space (so CA 19-9 in U/mL does not dominate the neighbour distances), then z-scored again so
imputed columns keep unit variance. Binary variables: mode imputation, kept as 0/1. Categorical
variables: mode imputation, one-hot encoding (categories seen only at test time are all-zero).

A table without a column the preprocessor was fitted on is refused: a whole variable left out changes what
the model sees. Only a caller that means it adds the column as missing (:func:`with_absent_columns`), so the
fitted imputers fill it from the training cases: an external cohort's allowed variables
(resectbench/protocol/final.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from .schema import VariableSpec


def with_absent_columns(clinical: pd.DataFrame, columns) -> pd.DataFrame:
    """``clinical`` with ``columns`` added, every value missing: the opt-in way to transform a table that lacks
    variables the preprocessor was fitted on (its imputers fill them)."""
    return clinical.assign(**{col: np.nan for col in columns})


class ClinicalPreprocessor:
    """sklearn-style: ``fit(clinical_df, schema)`` -> ``transform(df)`` -> float32 (n, n_features)."""

    def __init__(self, n_neighbors: int = 5, exclude: tuple[str, ...] = ()):
        self.n_neighbors = n_neighbors
        self.exclude = tuple(exclude)
        self.pipeline_ = None
        self.columns_: dict[str, list[str]] = {}

    def _split(self, columns, schema: dict[str, VariableSpec]) -> dict[str, list[str]]:
        kinds = {"continuous": [], "binary": [], "categorical": []}
        for col in columns:
            if col in self.exclude:
                continue
            spec = schema.get(col)
            if spec is None:
                raise DataError(f"clinical column {col!r} has no entry in the schema")
            kinds[spec.kind].append(col)
        return kinds

    def _frame(self, df: pd.DataFrame) -> pd.DataFrame:
        missing = [c for cols in self.columns_.values() for c in cols if c not in df.columns]
        if missing:
            raise DataError(
                f"clinical table lacks columns the preprocessor was fitted on: {', '.join(missing)} (an external "
                "cohort of a run may lack them when allowed, to have them imputed: allow_missing_variables of its "
                "[[data.externals]] entry, or --external-allow-missing NAME=VARIABLE)"
            )
        out = df.copy()
        for col in self.columns_["continuous"] + self.columns_["binary"]:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
        for col in self.columns_["categorical"]:
            out[col] = out[col].map(lambda v: np.nan if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
            out[col] = out[col].astype(object)
        return out

    def fit(self, clinical: pd.DataFrame, schema: dict[str, VariableSpec]) -> "ClinicalPreprocessor":
        if len(clinical) == 0:
            raise DataError("cannot fit clinical preprocessing on zero cases")
        self.columns_ = self._split(list(clinical.columns), schema)
        return self._fit_columns(clinical)

    def _fit_columns(self, clinical: pd.DataFrame) -> "ClinicalPreprocessor":
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import KNNImputer, SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        df = self._frame(clinical)
        used = [c for cols in self.columns_.values() for c in cols]
        #: the training rows it was fitted on (KNN imputation keeps them anyway): its whole fitted state
        self.fit_rows_ = df[used].copy()
        parts = []
        cont = self.columns_["continuous"]
        if cont:
            k = max(1, min(self.n_neighbors, len(df) - 1))
            parts.append(
                (
                    "continuous",
                    Pipeline(
                        [
                            ("scale", StandardScaler()),
                            ("impute", KNNImputer(n_neighbors=k, keep_empty_features=True)),
                            ("rescale", StandardScaler()),
                        ]
                    ),
                    cont,
                )
            )
        if self.columns_["binary"]:
            parts.append(
                ("binary", SimpleImputer(strategy="most_frequent", keep_empty_features=True), self.columns_["binary"])
            )
        if self.columns_["categorical"]:
            parts.append(
                (
                    "categorical",
                    Pipeline(
                        [
                            ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
                            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                        ]
                    ),
                    self.columns_["categorical"],
                )
            )
        if not parts:
            raise DataError("no clinical variables to preprocess")
        self.pipeline_ = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
        self.pipeline_.fit(df)
        return self

    def transform(self, clinical: pd.DataFrame) -> np.ndarray:
        if self.pipeline_ is None:
            raise DataError("ClinicalPreprocessor.transform called before fit")
        return np.asarray(self.pipeline_.transform(self._frame(clinical)), dtype=np.float32)

    # -- persistence without pickle: the training rows and column kinds as plain JSON --------------
    def to_state(self) -> dict:
        """Plain-JSON state: refitting on it (:meth:`from_state`) gives the same transform (the fit is
        deterministic: scalers, KNN imputation, mode imputation and one-hot categories)."""
        if self.pipeline_ is None:
            raise DataError("ClinicalPreprocessor.to_state called before fit")
        rows = self.fit_rows_.astype(object).where(self.fit_rows_.notna(), None)
        return {
            "n_neighbors": self.n_neighbors,
            "exclude": list(self.exclude),
            "columns": {k: list(v) for k, v in self.columns_.items()},
            "rows": rows.to_dict(orient="split"),
        }

    @classmethod
    def from_state(cls, state: dict) -> "ClinicalPreprocessor":
        try:
            out = cls(n_neighbors=int(state["n_neighbors"]), exclude=tuple(state["exclude"]))
            out.columns_ = {k: list(state["columns"].get(k, [])) for k in ("continuous", "binary", "categorical")}
            rows = state["rows"]
            frame = pd.DataFrame(rows["data"], index=rows["index"], columns=rows["columns"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"clinical preprocessing state is malformed ({type(exc).__name__}: {exc})") from None
        return out._fit_columns(frame)

    def fit_transform(self, clinical: pd.DataFrame, schema: dict[str, VariableSpec]) -> np.ndarray:
        return self.fit(clinical, schema).transform(clinical)

    def feature_names_out(self) -> list[str]:
        if self.pipeline_ is None:
            raise DataError("ClinicalPreprocessor.feature_names_out called before fit")
        return [str(n) for n in self.pipeline_.get_feature_names_out()]

    @property
    def n_features(self) -> int:
        return len(self.feature_names_out())
