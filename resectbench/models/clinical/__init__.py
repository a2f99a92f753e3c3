"""Clinical encoders (registry ``clinical_encoders``): the preprocessed clinical table -> an embedding.

Each is an ``nn.Module(in_features, ...)`` with ``.out_dim`` (0 for ``none``) whose forward maps
``(B, in_features)`` to ``(B, out_dim)``.
"""

from .base import ClinicalEncoder
from .ft_transformer import FTTransformerClinicalEncoder
from .linear import LinearClinicalEncoder
from .mlp import MLPClinicalEncoder
from .none import NoClinicalEncoder

__all__ = [
    "ClinicalEncoder",
    "FTTransformerClinicalEncoder",
    "LinearClinicalEncoder",
    "MLPClinicalEncoder",
    "NoClinicalEncoder",
]
