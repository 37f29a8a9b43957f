"""Note probabilities -> notes: the one place where the generator's output becomes playable.

The generator gives a probability per (step, pitch) cell; thresholding each cell on its own makes
1-2 step blips, notes that stutter where the probability dips, and clusters no instrument plays.
:func:`decode_notes` turns probabilities into notes the way an arranger would read them, per output
track, over the bars it is given (a whole phrase of 4 bars, or the one bar a live plan decides;
bar lines do not cut notes):

1. **Voice limit** (``max_voices``, per track name): at each step at most this many pitches sound,
   the most probable ones (a guitar has six strings; a bass line is one note, two with an octave).
2. **Hysteresis** (pitched tracks): a note starts where the probability reaches the track's start
   threshold (``track_thresholds[name]``, else ``threshold``) and holds while it stays at or above
   ``sustain_threshold`` (never above the start threshold), so a held note does not stutter.
3. **Minimum length** (``min_note_steps``, per track name): a note shorter than this many steps is
   dropped, unless it still sounds at the last step given (it may go on: live, the next plan
   decides).
4. **Carry-in** (``sounding_before``, live): a pitch that sounded at the step just before the
   first one given continues where its probability holds from that first step on, whatever its
   length there and even below the start threshold (it started earlier), as it would in a
   decoding that included the steps before.

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
            ("min_note_steps", self.min_note_steps, 1, N_BARS * STEPS_PER_BAR),
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
    probabilities: np.ndarray,
    tracks: Sequence[int],
    decoding: NoteDecoding,
    sounding_before: np.ndarray | None = None,
) -> np.ndarray:
    """Notes ``bool[B, bars, 48, 84, T]`` from probabilities ``float[B, bars, 48, 84, T]``.

    ``bars`` is 1..4 (a phrase, or the bar a live plan decides). ``tracks`` are the representation
    indices of the T slices (e.g. ``[0, 2, 3, 4]`` for the accompaniment of a piano model).
    ``sounding_before`` ``bool[B, 84, T]``: the pitches sounding at the step before the first one
    given (the carry-in, module docstring; ``None`` = nothing). Raises ValueError for other shapes.
    """
    probs = check_roll(
        probabilities, "probabilities", ("B", "bars", STEPS_PER_BAR, N_PITCHES, len(tracks))
    ).astype(np.float32, copy=False)
    if not 1 <= probs.shape[1] <= N_BARS:
        raise ValueError(f"probabilities hold {probs.shape[1]} bars; expected 1 to {N_BARS}")
    if sounding_before is not None:
        sounding_before = check_roll(sounding_before, "sounding_before",
                                     (probs.shape[0], N_PITCHES, len(tracks))).astype(bool)
    notes = np.empty(probs.shape, dtype=bool)
    for slot, track in enumerate(tracks):
        name = TRACK_NAMES[track]
        track_probs = probs[..., slot]
        voices = decoding.max_voices.get(name)
        if voices is not None and voices < N_PITCHES:
            lowest = decoding.start_threshold(name) if track == DRUMS else \
                decoding.hold_threshold(name)
            track_probs = _loudest_only(track_probs, voices, lowest)
        if track == DRUMS:
            notes[..., slot] = track_probs >= decoding.start_threshold(name)
        else:
            notes[..., slot] = _held_notes(
                track_probs, decoding.start_threshold(name), decoding.hold_threshold(name),
                decoding.min_note_steps.get(name, 1),
                None if sounding_before is None else sounding_before[..., slot],
            )
    return notes


def _loudest_only(track_probs: np.ndarray, voices: int, lowest: float) -> np.ndarray:
    """``track_probs`` with every pitch but the ``voices`` most probable of its step set to 0
    (ties: any), computed only at steps where more than ``voices`` pitches reach ``lowest``: the
    least probability that can still make a note, so elsewhere nothing would change."""
    crowded = (track_probs >= lowest).sum(axis=-1) > voices
    if not crowded.any():
        return track_probs
    limited = track_probs.copy()
    rows = track_probs[crowded]  # [n, 84]
    top = np.argpartition(-rows, voices - 1, axis=-1)[:, :voices]
    keep = np.zeros(rows.shape, dtype=bool)
    np.put_along_axis(keep, top, True, axis=-1)
    limited[crowded] = np.where(keep, rows, 0.0)
    return limited


def _held_notes(
    track_probs: np.ndarray, start: float, hold: float, min_steps: int,
    sounding_before: np.ndarray | None,
) -> np.ndarray:
    """Hysteresis + minimum length + carry-in on one track ``float[B, bars, 48, 84]`` -> ``bool``.

    A candidate note is a maximal run of steps of one pitch with probability >= ``hold`` (runs
    are numbered in (batch, pitch, step) order, and every cell carries its run's number); it is
    kept when some step of it reaches ``start`` and it lasts >= ``min_steps`` steps or reaches
    the last step, or when it begins at the first step and its pitch was sounding before
    (``sounding_before`` ``bool[B, 84]``).
    """
    batch = track_probs.shape[0]
    rows = track_probs.reshape(batch, -1, N_PITCHES)  # [B, steps, 84]: runs go along axis 1
    held = rows >= hold
    if not held.any():
        return np.zeros(track_probs.shape, dtype=bool)
    begins = held.copy()
    begins[:, 1:] &= ~held[:, :-1]
    by_pitch = begins.transpose(0, 2, 1)
    run_of = np.cumsum(by_pitch.ravel()).reshape(by_pitch.shape).transpose(0, 2, 1)  # 0 = none
    cells = run_of[held]
    length = np.bincount(cells, minlength=int(run_of.max()) + 1)
    reaches = np.bincount(cells, weights=rows[held] >= start, minlength=length.size) > 0
    keep = reaches & (length >= min_steps)
    at_end = run_of[:, -1][held[:, -1]]
    keep[at_end] = reaches[at_end]  # it may go on past the steps given
    if sounding_before is not None:
        keep[run_of[:, 0][held[:, 0] & sounding_before]] = True
    keep[0] = False
    return (held & keep[run_of]).reshape(track_probs.shape)
