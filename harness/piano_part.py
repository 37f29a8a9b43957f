"""The piano part the tests and benchmarks play, and a tiny model made to answer it.

``CHORDS`` one per bar, struck on every beat (:func:`play_piano`); barely trained test models
play every track to it at the thresholds :func:`piano_part_thresholds` finds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.jack_clients import JackMidiPlayer

#: one chord per bar, struck on every beat (MIDI pitches, channel 1)
CHORDS = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
BEAT_FRAMES_120 = 24_000  # one beat at 120 BPM and 48 kHz


def play_piano(player: JackMidiPlayer, seconds: float, *, bpm: float = 120.0,
               start_delay_frames: int = 4_800, first_frame: int | None = None) -> int:
    """Schedule the chords on every beat for ``seconds``; returns how many note-ons."""
    beat_frames = round(player.rate * 60.0 / bpm)
    first = player.now_frame() + start_delay_frames if first_frame is None else first_frame
    count = 0
    for beat in range(int(seconds * bpm / 60.0 + 1e-9)):  # (33 beats: 9.9 s * 200 / 60)
        frame = first + beat * beat_frames
        for pitch in CHORDS[(beat // 4) % 4]:
            player.send_at(frame, [0x90, pitch, 80 + beat % 20])
            player.send_at(frame + beat_frames * 9 // 10, [0x80, pitch, 0])
            count += 1
    return count


def piano_part_thresholds(model_dir: Path) -> dict[str, float]:
    """Per output track, a start threshold at which a (barely trained) model plays it to
    ``CHORDS``: the track's 90th percentile of probabilities over the steps that sound live,
    i.e. the steps of the planned bar not heard yet, planned as the engine plans (bars 1-3
    heard, the bar itself heard for 0, 1, 2 or 3 beats), with a few latent vectors.

    Tiny test models' probabilities sit far apart per track, and apart between heard and
    unheard steps: at one common threshold some tracks never sound while others sound on
    every pitch."""
    import numpy as np

    from musegan_live.model.inference import Accompanist
    from musegan_live.representation import (
        LOWEST_PITCH,
        STEPS_PER_BAR,
        STEPS_PER_BEAT,
        TRACK_NAMES,
    )

    accompanist = Accompanist.from_dir(model_dir)
    condition = np.zeros((4, 48, 84), np.float32)
    for bar in range(4):
        for beat in range(4):
            start = beat * STEPS_PER_BEAT
            for pitch in CHORDS[bar]:
                condition[bar, start : start + 10, pitch - LOWEST_PITCH] = 1.0
    rng = np.random.default_rng(0)
    unheard = []
    for beats_heard in range(4):
        mask = np.zeros((4, 4, 48), np.float32)
        mask.reshape(4, -1)[:, : 3 * STEPS_PER_BAR + beats_heard * STEPS_PER_BEAT] = 1.0
        z = accompanist.sample_z(rng, 4).astype(np.float32)
        probabilities = accompanist.probabilities(np.repeat(condition[None], 4, 0), mask, z)
        unheard.append(probabilities[:, 3, beats_heard * STEPS_PER_BEAT :].reshape(
            -1, probabilities.shape[-1]))
    cells = np.concatenate(unheard)
    return {TRACK_NAMES[track]: float(np.quantile(cells[:, k], 0.9))
            for k, track in enumerate(accompanist.output_tracks)}


def model_playing_every_track(model_dir: Path, dest: Path) -> Path:
    """A copy of ``model_dir`` in ``dest`` whose ``model.yaml`` starts each track at its
    :func:`piano_part_thresholds` (for tests and benchmarks with barely trained models)."""
    from musegan_live.model.model_dir import write_track_thresholds

    copy = dest / f"{Path(model_dir).name}-playing"
    shutil.copytree(model_dir, copy, dirs_exist_ok=True)
    write_track_thresholds(copy, piano_part_thresholds(model_dir))
    return copy
