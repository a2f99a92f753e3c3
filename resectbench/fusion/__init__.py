"""Fusion strategies (registry ``fusions``): image + clinical embeddings -> class logits.

Each is an ``nn.Module(image_dim, clinical_dim, n_classes=3, ...)`` including its classification
head; forward maps ``(image_emb (B, image_dim), clinical_emb (B, clinical_dim))`` to logits
``(B, n_classes)``. A zero dimension means the modality is absent.
"""

from .base import Fusion
from .clinical_only import ClinicalOnlyFusion
from .concat import ConcatFusion
from .cross_attention import CrossAttentionFusion
from .film import FiLMFusion
from .gated import GatedFusion
from .head import ClassificationHead
from .image_only import ImageOnlyFusion
from .late import LateFusion
from .low_rank_tensor import LowRankTensorFusion
from .mean_embedding import MeanClinicalFusion, MeanEmbeddingFusion, MeanImageFusion

__all__ = [
    "ClassificationHead",
    "ClinicalOnlyFusion",
    "ConcatFusion",
    "CrossAttentionFusion",
    "FiLMFusion",
    "Fusion",
    "GatedFusion",
    "ImageOnlyFusion",
    "LateFusion",
    "LowRankTensorFusion",
    "MeanClinicalFusion",
    "MeanEmbeddingFusion",
    "MeanImageFusion",
]
