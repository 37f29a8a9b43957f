"""Running a model over many phrases: consecutive batches, results joined in order.

Offline jobs, the evaluation and the calibration all run the model on more phrases than one call
should take; this is the one place that slices them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def run_in_batches(
    run: Callable[..., np.ndarray], *arrays: np.ndarray, batch_size: int
) -> np.ndarray:
    """``run(*slices)`` on consecutive slices of at most ``batch_size`` rows of every array
    (all of the same length, rows = phrases), the results concatenated along axis 0.

    E.g. ``run_in_batches(accompanist.probabilities, condition, known_mask, z, batch_size=32)``.
    """
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        lengths = [len(a) for a in arrays]
        raise ValueError(f"run_in_batches needs arrays of one length, got {lengths}")
    return np.concatenate([
        np.asarray(run(*(a[lo : lo + batch_size] for a in arrays)))
        for lo in range(0, n, batch_size)
    ])
