"""Grow-only reusable buffers: the frame loop's ROI- and crop-sized arrays are made once.

A fresh array of a few MB per frame costs page faults on every frame (3-4 ms for 5 MB on
the 2-core build machine); a view of a buffer kept from the last frame costs nothing.
"""

from __future__ import annotations

import math

import numpy as np


def grow_view(flat, shape: tuple, dtype, empty):
    """(flat, view): a contiguous `shape` view of the 1-D buffer `flat`, which is replaced by a
    new one from `empty(n, dtype=...)` (25 % headroom) when missing, too small or of another dtype."""
    n = math.prod(int(v) for v in shape)
    if flat is None or flat.size < n or flat.dtype != np.dtype(dtype):
        flat = empty((max(n, 1) * 5 // 4,), dtype=dtype)
    return flat, flat[:n].reshape(shape)
