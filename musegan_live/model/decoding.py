"""Note probabilities -> notes: the one place where the generator's output becomes playable.

The generator gives a probability per (step, pitch) cell; thresholding each cell on its own makes
1-2 step blips, notes that stutter where the probability dips, and clusters no instrument plays.
:func:`decode_notes` turns probabilities into notes the way an arranger would read them, per output
track, over the whole phrase (4 bars x 48 steps, bar lines do not cut notes):

1. **Voice limit** (``max_voices``, per track name): at each step at most this many pitches sound,
   the most probable ones (a guitar has six strings; a bass line is one note, two with an octave).
2. **Hysteresis** (pitched tracks): a note starts where the probability reaches the track's start
   threshold (``track_thresholds[name]``, else ``threshold``) and holds while it stays at or above
   ``sustain_threshold`` (never above the start threshold), so a held note does not stutter.
3. **Minimum length** (``min_note_steps``, per track name): a note shorter than this many steps is
   dropped, unless it still sounds at the phrase's last step (it may go on past the phrase: in the
   live engine the next plan decides).

Drums are thresholded cell by cell only (hits have a fixed length; holding them would merge hits),
after their voice limit if one is given. The same decoding runs live, offline and in
``training.evaluate``, so what is measured is what is played. The values live in ``model.yaml``
(``threshold`` and its ``decoding`` section) and can be edited there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from musegan_live.representation import (
    DRUMS,
    N_BARS,
    N_PITCHES,
    STEPS_PER_BAR,
    STEPS_PER_PHRASE,
    TRACK_NAMES,
    check_roll,
)


@dataclass(frozen=True)
class NoteDecoding:
    """How probabilities become notes (see the module docstring).

    ``threshold``: a note starts where probability >= this, in (0, 1).
    ``sustain_threshold``: a started note holds while probability >= this; ``None`` = ``threshold``
    (no hysteresis). Never above ``threshold``.
    ``min_note_steps``: track name -> shortest note kept, in steps (48 per bar; 3 = a 16th note).
    ``max_voices``: track name -> most pitches sounding at one step.
    ``track_thresholds``: track name -> its own start threshold (a model less sure of one
    instrument than of another needs a lower one there to play it as densely as a band does).
    Tracks not named have no minimum length, no voice limit and the common ``threshold``.
    """

    threshold: float = 0.5
    sustain_threshold: float | None = None
    min_note_steps: Mapping[str, int] = field(default_factory=dict)
    max_voices: Mapping[str, int] = field(default_factory=dict)
    track_thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        sustain = self.sustain_threshold
        if sustain is not None and not 0.0 < sustain <= self.threshold:
            raise ValueError(
                f"sustain_threshold must be in (0, threshold = {self.threshold}], got {sustain}"
            )
        for key, values, lowest, highest in (
            ("min_note_steps", self.min_note_steps, 1, STEPS_PER_PHRASE),
            ("max_voices", self.max_voices, 1, N_PITCHES),
        ):
            for name, value in values.items():
                if name not in TRACK_NAMES:
                    raise ValueError(f"{key} names {name!r}, which is not one of {TRACK_NAMES}")
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{key}.{name} must be a whole number, got {value!r}")
                if not lowest <= value <= highest:
                    raise ValueError(
                        f"{key}.{name} must be between {lowest} and {highest}, got {value}"
                    )

        for name, value in self.track_thresholds.items():
            if name not in TRACK_NAMES:
                raise ValueError(f"track_thresholds names {name!r}, which is not one of "
                                 f"{TRACK_NAMES}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 < value < 1.0:
                raise ValueError(f"track_thresholds.{name} must be in (0, 1), got {value!r}")

    def start_threshold(self, name: str) -> float:
        """Where a note of track ``name`` starts: its own threshold, else ``threshold``."""
        return float(self.track_thresholds.get(name, self.threshold))

    def hold_threshold(self, name: str) -> float:
        """What a started note of track ``name`` must stay above: ``sustain_threshold`` (or its
        start threshold without hysteresis), never above the start threshold."""
        start = self.start_threshold(name)
        return start if self.sustain_threshold is None else min(self.sustain_threshold, start)

    def with_threshold(self, threshold: float | None) -> NoteDecoding:
        """This decoding with another start threshold for every track (``None``: unchanged).

        The per-track thresholds give way to it (``--threshold`` is one knob for the whole band);
        the sustain threshold is kept, but never above the new start threshold.
        """
        if threshold is None:
            return self
        threshold = float(threshold)
        sustain = self.sustain_threshold
        if sustain is not None:
            sustain = min(sustain, threshold)
        return replace(self, threshold=threshold, sustain_threshold=sustain, track_thresholds={})

    def with_density(self, density: Mapping[str, float] | None) -> NoteDecoding:
        """This decoding with each named track's start threshold ``t`` raised to the power of
        its density factor (> 1: lower thresholds, more notes; < 1: fewer); ``t ** d`` stays in
        (0, 1). ``None`` or ``{}``: unchanged. The keyboard's density knob
        (``musegan_live.live.controls``) sets the factors."""
        if not density:
            return self
        thresholds = dict(self.track_thresholds)
        for name, factor in density.items():
            if factor <= 0:
                raise ValueError(f"density of {name} must be > 0, got {factor}")
            thresholds[name] = self.start_threshold(name) ** float(factor)
        return replace(self, track_thresholds=thresholds)

    def to_mapping(self) -> dict[str, Any]:
        """The ``decoding`` section of ``model.yaml`` (everything but ``threshold``)."""
        return {
            "sustain_threshold": self.sustain_threshold,
            "min_note_steps": dict(self.min_note_steps),
            "max_voices": dict(self.max_voices),
            "track_thresholds": dict(self.track_thresholds),
        }

    @classmethod
    def from_mapping(cls, threshold: float, values: Mapping[str, Any] | None) -> NoteDecoding:
        """Build from ``model.yaml``'s ``threshold`` and ``decoding`` section (``None``: none).

        Raises ValueError naming the bad key.
        """
        values = dict(values or {})
        known = ("sustain_threshold", "min_note_steps", "max_voices", "track_thresholds")
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown decoding key(s) {unknown}; known: {', '.join(known)}")
        sustain = values.get("sustain_threshold")
        if sustain is not None and (isinstance(sustain, bool) or
                                    not isinstance(sustain, (int, float))):
            raise ValueError(f"sustain_threshold must be a number or null, got {sustain!r}")
        per_track = {}
        for key in ("min_note_steps", "max_voices", "track_thresholds"):
            mapping = values.get(key) or {}
            if not isinstance(mapping, Mapping):
                raise ValueError(f"{key} must map track names to numbers, got {mapping!r}")
            per_track[key] = dict(mapping)
        return cls(
            threshold=float(threshold),
            sustain_threshold=None if sustain is None else float(sustain),
            **per_track,
        )


def decode_notes(
    probabilities: np.ndarray, tracks: Sequence[int], decoding: NoteDecoding
) -> np.ndarray:
    """Notes ``bool[B, 4, 48, 84, T]`` from probabilities ``float[B, 4, 48, 84, T]``.

    ``tracks`` are the representation indices of the T slices (e.g. ``[0, 2, 3, 4]`` for the
    accompaniment of a piano model). Raises ValueError for other shapes.
    """
    probs = check_roll(
        probabilities, "probabilities", ("B", N_BARS, STEPS_PER_BAR, N_PITCHES, len(tracks))
    ).astype(np.float32, copy=False)
    notes = np.empty(probs.shape, dtype=bool)
    for slot, track in enumerate(tracks):
        name = TRACK_NAMES[track]
        track_probs = probs[..., slot]
        voices = decoding.max_voices.get(name)
        if voices is not None and voices < N_PITCHES:
            track_probs = np.where(_loudest(track_probs, voices), track_probs, 0.0)
        if track == DRUMS:
            notes[..., slot] = track_probs >= decoding.start_threshold(name)
        else:
            notes[..., slot] = _held_notes(
                track_probs, decoding.start_threshold(name), decoding.hold_threshold(name),
                decoding.min_note_steps.get(name, 1),
            )
    return notes


def _loudest(track_probs: np.ndarray, voices: int) -> np.ndarray:
    """``bool[..., 84]``: True at the ``voices`` most probable pitches of each step (ties: any)."""
    top = np.argpartition(-track_probs, voices - 1, axis=-1)[..., :voices]
    keep = np.zeros(track_probs.shape, dtype=bool)
    np.put_along_axis(keep, top, True, axis=-1)
    return keep


def _held_notes(
    track_probs: np.ndarray, start: float, hold: float, min_steps: int
) -> np.ndarray:
    """Hysteresis + minimum length on one track ``float[B, 4, 48, 84]`` -> ``bool`` alike.

    Works on rows of one pitch across the phrase (``[B * 84, 192]``): a candidate note is a maximal
    run of steps with probability >= ``hold``; it is kept when some step of it reaches ``start``
    and it lasts >= ``min_steps`` steps or reaches the phrase's last step.
    """
    batch = track_probs.shape[0]
    rows = track_probs.reshape(batch, STEPS_PER_PHRASE, N_PITCHES).transpose(0, 2, 1)
    rows = rows.reshape(-1, STEPS_PER_PHRASE)
    held = rows >= hold
    padded = np.zeros((rows.shape[0], STEPS_PER_PHRASE + 2), dtype=np.int8)
    padded[:, 1:-1] = held
    edges = np.diff(padded, axis=1)  # +1 where a run starts, -1 one past where it ends
    run_rows, run_starts = np.nonzero(edges == 1)
    _, run_ends = np.nonzero(edges == -1)  # same row-major order as the starts
    started = np.zeros((rows.shape[0], STEPS_PER_PHRASE + 1), dtype=np.int32)
    np.cumsum(rows >= start, axis=1, out=started[:, 1:])
    reaches_start = started[run_rows, run_ends] > started[run_rows, run_starts]
    long_enough = (run_ends - run_starts >= min_steps) | (run_ends == STEPS_PER_PHRASE)
    keep = reaches_start & long_enough
    marks = np.zeros((rows.shape[0], STEPS_PER_PHRASE + 1), dtype=np.int32)
    np.add.at(marks, (run_rows[keep], run_starts[keep]), 1)
    np.add.at(marks, (run_rows[keep], run_ends[keep]), -1)
    notes = np.cumsum(marks, axis=1)[:, :STEPS_PER_PHRASE] > 0
    return notes.reshape(batch, N_PITCHES, STEPS_PER_PHRASE).transpose(0, 2, 1).reshape(
        track_probs.shape
    )
