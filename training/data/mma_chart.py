"""Chord charts for MMA (Musical MIDI Accompaniment): chord labels in, chart text out.

POP909's ``chord_midi.txt`` rows (``start end label``, Harte-style labels such as ``A:min7``)
become MMA chord names, one per beat of the song's bar grid, and then an MMA song file: one bar
per line, one field per beat, ``/`` repeats the previous beat's chord, ``z`` rests. Bar ``k`` of
the chart is the ``k``-th bar of the grid it was given. Rendering the chart is
:mod:`training.data.mma`'s job.

Times are in seconds (``_seconds``), tempi in beats per minute (``_bpm``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musegan_live.errors import DataFileError

logger = logging.getLogger(__name__)

_NOTE_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
#: Harte-style chord quality (as in POP909's chord_midi.txt) -> MMA chord-name suffix.
_QUALITY_SUFFIX = {
    "maj": "",
    "min": "m",
    "7": "7",
    "maj7": "maj7",
    "min7": "m7",
    "maj6": "6",
    "min6": "m6",
    "dim": "dim",
    "dim7": "dim7",
    "hdim7": "m7b5",
    "aug": "aug",
    "sus2": "sus2",
    "sus4": "sus4",
    "sus4(b7)": "7sus4",
    "minmaj7": "mM7",
    "maj9": "maj9",
    "min9": "m9",
    "9": "9",
}
#: semitones above the root of a scale degree written after '/' (e.g. '/b3', '/5', '/7')
_DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11, 9: 2, 11: 5, 13: 9}
_DEGREE_RE = re.compile(r"^(b*|#*)(\d+)$")
_ROOT_RE = re.compile(r"^([A-G])([#b]?)$")


# --- chord labels -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ChordSpan:
    """One row of a chord annotation: ``label`` sounds from ``start_seconds`` to ``end_seconds``."""

    start_seconds: float
    end_seconds: float
    label: str


def read_chord_labels(path: str | Path) -> list[ChordSpan]:
    """Read ``start end label`` rows (POP909 ``chord_midi.txt``), whitespace separated."""
    spans = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise DataFileError(f"{path}: cannot read chord labels ({err})") from err
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            if len(fields) != 3:
                raise ValueError(f"expected 3 fields, got {len(fields)}")
            spans.append(ChordSpan(float(fields[0]), float(fields[1]), fields[2]))
        except ValueError as err:
            raise DataFileError(
                f"{path}:{number}: not a 'start end label' chord row ({err}): {line.strip()!r}"
            ) from err
    return spans


def mma_chord_name(label: str) -> str | None:
    """MMA's name for a Harte-style label: 'A:min7' -> 'Am7', 'C:maj/3' -> 'C/E', 'N' -> None.

    Qualities outside the known vocabulary fall back to the triad their name starts with
    (a warning is logged); a label whose root is not a note name raises ValueError.
    """
    label = label.strip()
    if label in ("N", "X", ""):
        return None
    root_text, _, rest = label.partition(":")
    quality, _, bass_text = (rest or "maj").partition("/")
    match = _ROOT_RE.match(root_text)
    if not match:
        raise ValueError(f"chord label {label!r} has no root note name (A..G with # or b)")
    root_pc = (_NOTE_PITCH_CLASS[match.group(1)] + {"#": 1, "b": -1, "": 0}[match.group(2)]) % 12
    names = _FLAT_NAMES if match.group(2) == "b" or root_pc in (3, 10) else _SHARP_NAMES
    suffix = _QUALITY_SUFFIX.get(quality)
    if suffix is None:
        suffix = next(
            (
                s
                for q, s in (("min", "m"), ("dim", "dim"), ("aug", "aug"), ("sus", "sus4"))
                if quality.startswith(q)
            ),
            "",
        )
        logger.warning("unknown chord quality %r in %r: using the triad %r", quality, label, suffix)
    name = names[root_pc] + suffix
    if bass_text:
        degree = _DEGREE_RE.match(bass_text)
        if not degree or int(degree.group(2)) not in _DEGREE_SEMITONES:
            raise ValueError(
                f"chord label {label!r}: bass degree {bass_text!r} is not like b3, 5 or 7"
            )
        shift = _DEGREE_SEMITONES[int(degree.group(2))]
        shift += degree.group(1).count("#") - degree.group(1).count("b")
        if shift % 12:
            name += "/" + names[(root_pc + shift) % 12]
    return name


# --- the bar grid and the chart ---------------------------------------------------------------
def chords_per_beat(
    spans: list[ChordSpan], bar_beats_seconds: np.ndarray
) -> list[list[str | None]]:
    """MMA chord name (None = no chord) of every beat: the label overlapping the beat the most.

    ``bar_beats_seconds`` is ``float[n_bars, 5]``: each bar's four beat starts and its end.
    """
    starts = np.asarray([s.start_seconds for s in spans], dtype=float)
    ends = np.asarray([s.end_seconds for s in spans], dtype=float)
    names = [mma_chord_name(s.label) for s in spans]
    bars = []
    for row in bar_beats_seconds:
        bar: list[str | None] = []
        for beat_start, beat_end in zip(row[:-1], row[1:], strict=True):
            overlap = np.minimum(ends, beat_end) - np.maximum(starts, beat_start)
            best = int(np.argmax(overlap)) if len(spans) else -1
            bar.append(names[best] if best >= 0 and overlap[best] > 0 else None)
        bars.append(bar)
    return bars


def chart_text(bars: list[list[str | None]], *, groove: str, tempo_bpm: float, seed: int) -> str:
    """An MMA song file: header, then one line per bar with one field per beat.

    A beat repeating the previous beat's chord is written ``/``; no chord is ``z`` (drums go on).
    """
    lines = [
        "// written by musegan-live training.data.mma",
        f"RndSeed {int(seed)}",
        f"Tempo {max(20.0, min(400.0, float(tempo_bpm))):.2f}",
        f"Groove {groove}",
    ]
    for number, bar in enumerate(bars, 1):
        fields = []
        previous = object()
        for chord in bar:
            name = "z" if chord is None else chord
            fields.append("/" if name == previous else name)
            previous = name
        lines.append(f"{number} " + " ".join(fields))
    return "\n".join(lines) + "\n"
