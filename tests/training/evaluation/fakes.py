"""Code-made phrases and transparent stand-ins for the ONNX model, for the evaluation tests."""

from __future__ import annotations

import numpy as np

from musegan_live.representation import (
    BASS,
    DRUMS,
    GUITAR,
    PHRASE_SHAPE,
    PIANO,
    STEPS_PER_BAR,
    STRINGS,
    other_tracks,
)


def band_phrases(n: int, rng: np.random.Generator, silent_condition: tuple[int, ...] = (),
                 condition_track: int = PIANO) -> np.ndarray:
    """``n`` small five-track phrases: a triad per bar in the pitched tracks, drums on 8ths.

    Phrases listed in ``silent_condition`` have an empty ``condition_track``.
    """
    x = np.zeros((n, *PHRASE_SHAPE), dtype=bool)
    for p in range(n):
        for bar in range(4):
            root = int(rng.integers(36, 48))  # pitch index of the bar's chord root (MIDI 60..71)
            triad = [root, root + 4, root + 7]
            x[p, bar, 0:24, triad, PIANO] = True
            x[p, bar, 12:36, [t - 12 for t in triad], GUITAR] = True
            x[p, bar, :, root - 24, BASS] = True
            x[p, bar, 0:36, [t + 12 for t in triad], STRINGS] = True
            for step in range(0, STEPS_PER_BAR, 6):
                x[p, bar, step : step + 3, 12 if step % 12 == 0 else 18, DRUMS] = True
    for p in silent_condition:
        x[p, ..., condition_track] = False
    return x


class EchoAccompanist:
    """Plays back the *known* condition on every output track (so the harmony is perfect).

    Same interface as musegan_live.model.inference.Accompanist; records every call's batch size.
    """

    def __init__(self, condition_track: int = PIANO):
        self.condition_track = condition_track
        self.output_tracks = other_tracks(condition_track)
        self.latent_dim = 4
        self.threshold = 0.5
        self.batch_sizes: list[int] = []

    def sample_z(self, rng, batch=1):
        return rng.standard_normal((batch, self.latent_dim)).astype(np.float32)

    def accompany(self, condition, known_mask, z, threshold=None):
        assert condition.shape[0] == known_mask.shape[0] == z.shape[0]
        self.batch_sizes.append(condition.shape[0])
        heard = np.asarray(condition, dtype=bool) & (known_mask[..., np.newaxis] > 0)
        return np.repeat(heard[..., np.newaxis], len(self.output_tracks), axis=-1)


class PastEchoAccompanist(EchoAccompanist):
    """Plays the heard condition of the bar *before* in every bar (bar 1: silence).

    A stand-in for a model that uses the past: in the live setting its bar 4 is the heard bar 3,
    whatever of bar 4 has been heard.
    """

    def accompany(self, condition, known_mask, z, threshold=None):
        heard = super().accompany(condition, known_mask, z, threshold)
        late = np.zeros_like(heard)
        late[:, 1:] = heard[:, :-1]
        return late


class LeakyEchoAccompanist(EchoAccompanist):
    """Echoes the condition it is given *ignoring* ``known_mask``: it would leak unheard steps
    if the caller passed them."""

    def accompany(self, condition, known_mask, z, threshold=None):
        return super().accompany(condition, np.ones_like(known_mask), z, threshold)
