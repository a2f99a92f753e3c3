"""Seeds derived from the base seed and names, so every part of a run is reproducible on its own."""

from __future__ import annotations

import hashlib


def derive_seed(base_seed: int, *parts: object) -> int:
    """A 31-bit seed that depends only on ``base_seed`` and ``parts`` (not on call order)."""
    text = "/".join([str(int(base_seed)), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
