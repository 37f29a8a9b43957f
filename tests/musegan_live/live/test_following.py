"""Does the live path follow the player? The shipped model on the simulated clock.

A player alternates C major and F# major, one chord per bar (the two share no pitch class). A
band that follows plays the current bar's chord; one that is a bar behind plays the previous
bar's. The accompaniment is the daemon's own: the session, the engine and the shipped default
model, driven by a simulated clock (inference inline, so the timing is the ideal of a machine
fast enough). Yesterday's model and engine scored 0.23 current / 0.32 previous through JACK.
"""

from __future__ import annotations

import numpy as np
import pytest

from musegan_live.config.live import load_config
from musegan_live.live.planner import InlinePlanner
from musegan_live.live.session import Session
from musegan_live.metrics import chord_shares
from musegan_live.model.inference import Accompanist
from musegan_live.model.model_dir import default_model_dir
from musegan_live.offline import offline_config, play_song
from musegan_live.representation import (
    DRUMS,
    LOWEST_PITCH,
    N_PITCHES,
    STEPS_PER_BAR,
    TRACK_NAMES,
    other_tracks,
)

C_MAJOR = (60, 64, 67)
F_SHARP_MAJOR = (66, 70, 73)
N_BARS_PLAYED = 12


def alternating_chords(n_bars: int) -> tuple[np.ndarray, list[set[int]]]:
    """The player's roll ``bool[n_bars * 48, 84]`` (each bar's chord held the whole bar, struck
    again on every bar line) and the pitch classes of each bar's chord."""
    roll = np.zeros((n_bars * STEPS_PER_BAR, N_PITCHES), bool)
    chords = []
    for bar in range(n_bars):
        chord = C_MAJOR if bar % 2 == 0 else F_SHARP_MAJOR
        rows = [p - LOWEST_PITCH for p in chord]
        roll[bar * STEPS_PER_BAR : (bar + 1) * STEPS_PER_BAR - 1, rows] = True
        chords.append({p % 12 for p in chord})
    return roll, chords


@pytest.fixture(scope="module")
def shipped_model() -> Accompanist:
    return Accompanist.from_dir(default_model_dir())


@pytest.mark.parametrize("seed", [0, 1])
def test_the_band_plays_the_chord_of_the_current_bar(shipped_model: Accompanist, seed: int):
    config = offline_config(load_config(None, {"seed": str(seed)}))
    session = Session(config, shipped_model, planner=InlinePlanner(), keep_take=True)
    roll, chords = alternating_chords(N_BARS_PLAYED)
    play_song(session, roll, np.where(roll, 90, 0).astype(np.uint8), 120.0)
    take, _ = session.take_roll()
    pitched = [t for t in other_tracks(shipped_model.condition_track) if t != DRUMS]
    # a band that rests follows nothing: each pitched track sounds in most of the bars
    bars = take[: N_BARS_PLAYED * STEPS_PER_BAR].reshape(N_BARS_PLAYED, -1, *take.shape[1:])
    for track in pitched:
        playing = bars[..., track].any(axis=(1, 2)).mean()
        assert playing >= 0.75, f"{TRACK_NAMES[track]} plays in only {playing:.0%} of the bars"
    current, previous = chord_shares(take[:, :, pitched], chords)
    assert current >= 0.6, f"in the current bar's chord {current:.2f}, previous {previous:.2f}"
    assert previous <= 0.25, f"in the previous bar's chord {previous:.2f}"
