"""Mixed precision: ``amp="auto"`` means bf16 autocast on CUDA and full fp32 on CPU.

bf16 needs no loss scaling (unlike fp16), so the training loop stays the same for every choice.
On CPU, bf16 autocast is accepted (``amp="bf16"``) but measured slower for 3D convolutions on
this project's CPUs (see benchmarks/models.py), hence off by default there.
"""

from __future__ import annotations

import contextlib

import torch

from ...vocabulary import resolve_device  # noqa: F401 (defined once for engine and protocol)

AMP_CHOICES = ("auto", "bf16", "fp16", "off")


def resolve_amp(amp: str | bool | None, device: str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (None = no autocast)."""
    if amp is True:
        amp = "auto"
    if amp in (None, False, "off", "none", "fp32"):
        return None
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {AMP_CHOICES}, got {amp!r}")
    on_cuda = str(device).startswith("cuda")
    if amp == "auto":
        return torch.bfloat16 if on_cuda else None
    if amp == "fp16" and not on_cuda:
        raise ValueError("amp='fp16' needs a CUDA device; use 'bf16' or 'off' on CPU")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def autocast(dtype: torch.dtype | None, device: str):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
