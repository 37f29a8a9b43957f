"""Running the model for the evaluation: batched inference and splicing its tracks into phrases.

Shared by every setting of ``python -m training.evaluate`` (full, none and the live beats), so
all of them go through :meth:`musegan_live.model.inference.Accompanist.accompany`, the same call
(and the same note decoding from ``model.yaml``) the live engine makes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from musegan_live.model.batches import run_in_batches

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 32


class AccompanistLike(Protocol):
    """What the evaluation needs of :class:`musegan_live.model.inference.Accompanist`."""

    condition_track: int
    output_tracks: list[int]

    def sample_z(self, rng: np.random.Generator, batch: int = 1) -> np.ndarray: ...

    def accompany(
        self,
        condition: np.ndarray,
        known_mask: np.ndarray,
        z: np.ndarray,
        threshold: float | None = None,
    ) -> np.ndarray: ...


def generate(
    accompanist: AccompanistLike,
    condition: np.ndarray,
    known_mask: np.ndarray,
    z: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
    threshold: float | None = None,
) -> np.ndarray:
    """The model's accompaniment ``bool[n, 4, 48, 84, len(output_tracks)]``, in batches.

    ``condition`` ``bool[n, 4, 48, 84]``, ``known_mask`` ``float32[n, 4, 48]`` (1 = step heard),
    ``z`` ``float32[n, latent_dim]``; at most ``batch_size`` phrases go into one inference call.
    ``threshold`` replaces the model's note-start threshold (``None``: the model's own).
    """
    return run_in_batches(
        lambda c, k, zs: accompanist.accompany(c, k, zs, threshold=threshold),
        condition, known_mask, z, batch_size=batch_size,
    ).astype(bool, copy=False)


def with_accompaniment(
    real: np.ndarray, accompaniment: np.ndarray, output_tracks: Sequence[int]
) -> np.ndarray:
    """``real`` ``bool[n, B, 48, 84, 5]`` with the ``output_tracks`` slices replaced.

    ``accompaniment`` is ``bool[n, B, 48, 84, len(output_tracks)]`` (same number of bars B).
    """
    out = real.copy()
    out[..., list(output_tracks)] = accompaniment
    return out
