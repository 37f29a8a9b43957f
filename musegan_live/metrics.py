"""Musical metrics of pianoroll phrases (numpy only; the runtime never imports torch).

Inputs follow ``musegan_live.representation``: a batch of phrases ``bool[N, B, 48, 84, T]`` or one
phrase ``bool[B, 48, 84, T]``, where B is the number of bars (4 for a whole phrase; any B >= 1 is
accepted so that, for instance, only the last bar of each phrase can be scored), 48 steps per bar
(12 per beat), 84 pitches (index ``i`` is MIDI pitch ``24 + i``) and T track slices. The
``tracks`` argument names the representation track of each slice of the last axis
(``representation.DRUMS`` = 0, ``PIANO`` = 1, ...); a nonzero cell is a sounding note-step.

Per-track metrics return ``float64[T]`` (one value per slice, in the order of ``tracks``), NaN
where the metric is undefined: pitch metrics for drums, the drum metric for pitched tracks, and
any ratio whose denominator is zero. Ratios are pooled over the whole batch (every bar, note or
step of every phrase counts once), not averaged per phrase.

Two bugs of MuseGAN's published metric code are deliberately *not* reproduced: its chroma summed
adjacent semitones into one bin (here the chroma of pitch index ``i`` is ``(24 + i) % 12``, so
index 0 is C), and its empty-bar figure was the share of *non*-empty bars.

Notes: a note is a run of consecutive True steps of one pitch inside one phrase (runs continue
across bar lines but not across phrases, and a re-struck note with no silent step between the two
strikes is indistinguishable from one long note in this representation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musegan_live.representation import (
    DRUMS,
    LOWEST_PITCH,
    N_PITCHES,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    TRACK_NAMES,
    check_roll,
    check_track_slices,
)

#: Pitch class (0 = C ... 11 = B) of each pitch index: MIDI pitch ``24 + i`` modulo 12.
PITCH_CLASSES: np.ndarray = (LOWEST_PITCH + np.arange(N_PITCHES)) % 12
#: ``float64[84, 12]``: one-hot map from pitch index to pitch class.
_PITCH_TO_CLASS = np.zeros((N_PITCHES, 12))
_PITCH_TO_CLASS[np.arange(N_PITCHES), PITCH_CLASSES] = 1.0

#: A note counts as "qualified" when it lasts at least this many steps (3 steps = a 16th note at
#: 12 steps per beat; MuseGAN used 3 steps at 24 steps per beat, a 32nd note).
QUALIFIED_NOTE_MIN_STEPS = 3
#: Steps between two 16th-note grid positions (the 8th-note grid is a subset of it).
GRID_16TH_STEPS = STEPS_PER_BEAT // 4

#: Harte, Sandler & Gasser (2006) tonal centroid: radii and angles (radians per semitone) of the
#: circle of fifths, circle of minor thirds and circle of major thirds.
TONAL_RADII = (1.0, 1.0, 0.5)
TONAL_ANGLES = (7.0 * np.pi / 6.0, 3.0 * np.pi / 2.0, 2.0 * np.pi / 3.0)


def _tonal_matrix() -> np.ndarray:
    """``float64[6, 12]`` Phi: rows (r1 sin, r1 cos, r2 sin, r2 cos, r3 sin, r3 cos) of l*angle."""
    pcs = np.arange(12)
    rows = []
    for radius, angle in zip(TONAL_RADII, TONAL_ANGLES, strict=True):
        rows.append(radius * np.sin(pcs * angle))
        rows.append(radius * np.cos(pcs * angle))
    return np.stack(rows)


TONAL_MATRIX: np.ndarray = _tonal_matrix()

#: Per-track metrics computed by :func:`summarize`, in table order.
PER_TRACK_METRICS: tuple[str, ...] = (
    "empty_bar_rate",
    "used_pitch_classes",
    "qualified_note_rate",
    "polyphony",
    "drum_pattern_rate",
)
#: Metrics of a track against the condition track, computed by :func:`summarize`.
PAIR_METRICS: tuple[str, ...] = ("tonal_distance", "harmony_ratio")
METRIC_NAMES: tuple[str, ...] = PER_TRACK_METRICS + PAIR_METRICS


# --- input checking -------------------------------------------------------------------------
def _as_phrases(phrases: np.ndarray, tracks: Sequence[int]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Validate and return ``bool[N, B, 48, 84, T]`` and the track index of each slice."""
    arr = check_roll(
        phrases,
        "phrases",
        ("N", "bars", STEPS_PER_BAR, N_PITCHES, "tracks"),
        ("bars", STEPS_PER_BAR, N_PITCHES, "tracks"),
    )
    if arr.ndim == 4:
        arr = arr[np.newaxis]
    return arr.astype(bool, copy=False), check_track_slices(tracks, arr.shape[4])


def _as_track_roll(roll: np.ndarray, name: str) -> np.ndarray:
    """Validate one track's roll and return ``bool[N, B, 48, 84]``."""
    arr = check_roll(
        roll, name, ("N", "bars", STEPS_PER_BAR, N_PITCHES), ("bars", STEPS_PER_BAR, N_PITCHES)
    )
    if arr.ndim == 3:
        arr = arr[np.newaxis]
    return arr.astype(bool, copy=False)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ``numerator / denominator`` as float64, NaN where the denominator is 0."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _pitched(tracks: tuple[int, ...]) -> np.ndarray:
    return np.array([t != DRUMS for t in tracks], dtype=bool)


def _steps(x: np.ndarray) -> np.ndarray:
    """``[N, B, 48, 84, T]`` -> ``[N, B*48, 84, T]`` (bars joined into one time axis)."""
    return x.reshape(x.shape[0], x.shape[1] * x.shape[2], x.shape[3], x.shape[4])


def _onsets(steps: np.ndarray) -> np.ndarray:
    """Note starts: True where a step sounds and the previous step of that pitch did not.

    ``steps`` is ``bool[N, S, 84, T]``; the first step of each phrase counts as preceded by silence.
    """
    previous = np.zeros_like(steps)
    previous[:, 1:] = steps[:, :-1]
    return steps & ~previous


# --- per-track metrics ----------------------------------------------------------------------
def empty_bar_rate(phrases: np.ndarray, tracks: Sequence[int]) -> np.ndarray:
    """Share of bars in which a track plays no note at all.

    Inputs: ``phrases`` ``bool[N, B, 48, 84, T]`` (or one phrase ``[B, 48, 84, T]``), ``tracks``
    the representation track of each slice. Output: ``float64[T]`` in [0, 1] = (bars of that
    track with no True cell) / (N * B); NaN when there are no bars. Defined for drums too.
    (MuseGAN's code reported the share of non-empty bars under this name.)
    """
    x, _ = _as_phrases(phrases, tracks)
    bar_has_note = x.any(axis=(2, 3))  # [N, B, T]
    n_bars = bar_has_note.shape[0] * bar_has_note.shape[1]
    return _ratio((~bar_has_note).sum(axis=(0, 1)), np.full(x.shape[4], n_bars))


def used_pitch_classes(phrases: np.ndarray, tracks: Sequence[int]) -> np.ndarray:
    """Mean number of distinct pitch classes used in a bar, over the non-empty bars of a track.

    A pitch class is ``(24 + pitch_index) % 12`` (0 = C); a bar uses a class when any step of any
    pitch of that class sounds in it. Output ``float64[T]`` in [1, 12] (units: pitch classes per
    bar); NaN for drums and for a track with no non-empty bar.
    """
    x, track_list = _as_phrases(phrases, tracks)
    pitch_used = x.any(axis=2)  # [N, B, 84, T]
    class_used = np.einsum("nbpt,pc->nbct", pitch_used.astype(np.float64), _PITCH_TO_CLASS) > 0
    n_classes = class_used.sum(axis=2)  # [N, B, T]
    nonempty = n_classes > 0
    out = _ratio(n_classes.sum(axis=(0, 1)), nonempty.sum(axis=(0, 1)))
    out[~_pitched(track_list)] = np.nan
    return out


def qualified_note_rate(phrases: np.ndarray, tracks: Sequence[int]) -> np.ndarray:
    """Share of notes that last at least ``QUALIFIED_NOTE_MIN_STEPS`` (3) steps.

    A note is a maximal run of consecutive True steps of one pitch within one phrase (bar lines
    do not split it). Output ``float64[T]`` in [0, 1] = (notes >= 3 steps) / (all notes); NaN for
    drums (stored as fixed-length hits) and for a track without notes.
    """
    x, track_list = _as_phrases(phrases, tracks)
    steps = _steps(x)
    onsets = _onsets(steps)
    n_steps = steps.shape[1]
    long_enough = onsets.copy()
    for offset in range(1, QUALIFIED_NOTE_MIN_STEPS):
        following = np.zeros_like(steps)
        following[:, : n_steps - offset] = steps[:, offset:]
        long_enough &= following
    out = _ratio(long_enough.sum(axis=(0, 1, 2)), onsets.sum(axis=(0, 1, 2)))
    out[~_pitched(track_list)] = np.nan
    return out


def drum_pattern_rate(phrases: np.ndarray, tracks: Sequence[int]) -> np.ndarray:
    """Share of drum onsets that fall exactly on the 16th-note grid.

    An onset is the first step of a run of True steps of one drum pitch (so hits of the same drum
    with no silent step between them merge into one onset). It is on the grid when its step within
    the bar is a multiple of ``GRID_16TH_STEPS`` (3 steps at 12 steps per beat: steps 0, 3, 6, ...;
    every 8th-note position is also a 16th position). No tolerance window is used (MuseGAN scored
    steps with a tolerance pattern over 16 positions per bar at 24 steps per beat). Output
    ``float64[T]`` in [0, 1]; NaN for pitched tracks and for a drum track with no onset.
    """
    x, track_list = _as_phrases(phrases, tracks)
    onsets = _onsets(_steps(x))
    step_in_bar = np.arange(onsets.shape[1]) % STEPS_PER_BAR
    on_grid = (step_in_bar % GRID_16TH_STEPS == 0)[np.newaxis, :, np.newaxis, np.newaxis]
    out = _ratio((onsets & on_grid).sum(axis=(0, 1, 2)), onsets.sum(axis=(0, 1, 2)))
    out[_pitched(track_list)] = np.nan
    return out


def polyphony(phrases: np.ndarray, tracks: Sequence[int]) -> np.ndarray:
    """Share of sounding steps at which at least two pitches of the track sound together.

    Output ``float64[T]`` in [0, 1] = (steps with >= 2 True pitches) / (steps with >= 1), pooled
    over every step of every phrase; 0 for a purely monophonic line, 1 when every sounding step is
    a chord or interval. NaN for drums (simultaneous drum hits are not polyphony) and for a
    silent track.
    """
    x, track_list = _as_phrases(phrases, tracks)
    n_sounding = x.sum(axis=3)  # [N, B, 48, T]
    out = _ratio((n_sounding >= 2).sum(axis=(0, 1, 2)), (n_sounding >= 1).sum(axis=(0, 1, 2)))
    out[~_pitched(track_list)] = np.nan
    return out


# --- chroma, tonal centroid and two-track metrics -------------------------------------------
def beat_chroma(roll: np.ndarray) -> np.ndarray:
    """Chroma per beat of one track: ``bool[N, B, 48, 84]`` (or ``[B, 48, 84]``) -> counts.

    Returns ``float64[N, B*4, 12]``: for each beat (12 steps) and pitch class (0 = C), the number
    of sounding (step, pitch) cells of that class in the beat. Pitch index ``i`` has class
    ``(24 + i) % 12``, so octaves share a bin and adjacent semitones never do.
    """
    x = _as_track_roll(roll, "roll")
    n, bars = x.shape[:2]
    per_beat = x.reshape(n, bars * (STEPS_PER_BAR // STEPS_PER_BEAT), STEPS_PER_BEAT, N_PITCHES)
    return per_beat.sum(axis=2, dtype=np.float64) @ _PITCH_TO_CLASS


def tonal_centroids(roll: np.ndarray) -> np.ndarray:
    """Harte et al.'s 6-D tonal centroid of each beat of one track.

    ``roll`` ``bool[N, B, 48, 84]`` (or ``[B, 48, 84]``). The beat's chroma (see
    :func:`beat_chroma`) is L1-normalised and projected by ``TONAL_MATRIX`` (fifths at 7*pi/6,
    minor thirds at 3*pi/2, major thirds at 2*pi/3 radians per semitone; radii 1, 1, 0.5).
    Returns ``float64[N, B*4, 6]``; silent beats are NaN.
    """
    chroma = beat_chroma(roll)
    total = chroma.sum(axis=-1, keepdims=True)
    normalised = _ratio(chroma, np.broadcast_to(total, chroma.shape))
    return normalised @ TONAL_MATRIX.T


def tonal_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance between two tracks' tonal centroids, over beats where both sound.

    ``a`` and ``b`` are rolls of one track each, same shape ``bool[N, B, 48, 84]`` (or
    ``[B, 48, 84]``), aligned in time. For every beat (12 steps) in which both tracks sound, the
    distance between their 6-D centroids (:func:`tonal_centroids`) is taken; the result is the
    mean over all such beats of all phrases (unitless, 0 for identical chroma, at most
    2 * sqrt(1 + 1 + 0.25) = 3). NaN when no beat has both tracks sounding.
    """
    ca, cb = tonal_centroids(a), tonal_centroids(b)
    if ca.shape != cb.shape:
        raise ValueError(f"tonal_distance needs rolls of equal shape, got {np.shape(a)} and "
                         f"{np.shape(b)}")
    both = ~np.isnan(ca[..., 0]) & ~np.isnan(cb[..., 0])
    if not both.any():
        return float("nan")
    return float(np.linalg.norm(ca[both] - cb[both], axis=-1).mean())


def harmony_ratio(generated: np.ndarray, condition: np.ndarray) -> float:
    """Share of a pitched track's note-steps whose pitch class the condition plays in that beat.

    ``generated`` and ``condition`` are rolls of one track each, same shape ``bool[N, B, 48, 84]``
    (or ``[B, 48, 84]``). Among the beats in which the condition sounds at all, every sounding
    (step, pitch) cell of ``generated`` counts once; it is "in harmony" when the condition
    sounds some pitch of the same pitch class anywhere in that beat. Output in [0, 1]; NaN when
    ``generated`` has no note-step in a beat where the condition sounds. Not symmetric: a C note
    against a C major triad scores 1, the triad against the C scores 1/3. Meaningless for drums.
    """
    gen_counts = beat_chroma(generated)
    cond_counts = beat_chroma(condition)
    if gen_counts.shape != cond_counts.shape:
        raise ValueError(f"harmony_ratio needs rolls of equal shape, got {np.shape(generated)} "
                         f"and {np.shape(condition)}")
    cond_classes = cond_counts > 0  # [N, beats, 12]
    cond_sounds = cond_classes.any(axis=-1)
    denominator = gen_counts[cond_sounds].sum()
    numerator = (gen_counts * cond_classes)[cond_sounds].sum()
    return float(_ratio(numerator, denominator))


def chord_shares(
    generated: np.ndarray, bar_chords: Sequence[Sequence[int]], first_bar: int = 1
) -> tuple[float, float]:
    """How closely an accompaniment follows a chord per bar, and how much it lags one bar.

    ``generated`` ``bool[n_steps, 84]`` or ``[n_steps, 84, T]`` (pitched tracks; merged),
    ``bar_chords[b]`` the pitch classes (0 = C) the player holds in bar ``b``. Over the
    note-steps of bars ``first_bar ..``: the share whose pitch class is in the same bar's chord,
    and the share in the previous bar's chord. NaN when there is no note-step.
    """
    roll = np.asarray(generated, bool)
    if roll.ndim == 3:
        roll = roll.any(axis=2)
    n_bars = min(len(bar_chords), roll.shape[0] // STEPS_PER_BAR)
    current = previous = total = 0
    for bar in range(max(first_bar, 1), n_bars):
        steps, pitches = np.nonzero(roll[bar * STEPS_PER_BAR : (bar + 1) * STEPS_PER_BAR])
        classes = (pitches + LOWEST_PITCH) % 12
        total += classes.size
        current += int(np.isin(classes, list(bar_chords[bar])).sum())
        previous += int(np.isin(classes, list(bar_chords[bar - 1])).sum())
    if total == 0:
        return float("nan"), float("nan")
    return current / total, previous / total


# --- everything at once ---------------------------------------------------------------------
_PER_TRACK_FUNCTIONS = {
    "empty_bar_rate": empty_bar_rate,
    "used_pitch_classes": used_pitch_classes,
    "qualified_note_rate": qualified_note_rate,
    "polyphony": polyphony,
    "drum_pattern_rate": drum_pattern_rate,
}


def summarize(
    phrases: np.ndarray, tracks: Sequence[int], condition_track: int
) -> dict[str, object]:
    """All metrics of a batch of phrases, keyed by metric then track name.

    ``phrases`` ``bool[N, B, 48, 84, T]`` (or one phrase), ``tracks`` the representation track of
    each slice, ``condition_track`` the representation index of the track the others are scored
    against (it must be one of ``tracks``). Returns::

        {"n_phrases": N, "n_bars": B, "condition_track": "Piano",
         "tracks": ["Drums", ...],                   # names in slice order
         "metrics": {"empty_bar_rate": {"Drums": 0.1, ...}, ..., "tonal_distance": {...},
                     "harmony_ratio": {...}}}

    Values are Python floats, NaN where undefined. ``tonal_distance`` and ``harmony_ratio`` are
    NaN for the condition track itself and for drums (and for every track when the condition is
    the drum track).
    """
    x, track_list = _as_phrases(phrases, tracks)
    if condition_track not in track_list:
        raise ValueError(
            f"condition track {condition_track} is not among the tracks {list(track_list)}; "
            "include the condition's slice so the other tracks can be scored against it"
        )
    names = [TRACK_NAMES[t] for t in track_list]
    metrics: dict[str, dict[str, float]] = {}
    for metric in PER_TRACK_METRICS:
        values = _PER_TRACK_FUNCTIONS[metric](x, track_list)
        metrics[metric] = {name: float(v) for name, v in zip(names, values, strict=True)}
    cond_roll = x[..., track_list.index(condition_track)]
    pitched_condition = condition_track != DRUMS
    for metric, fn in (("tonal_distance", tonal_distance), ("harmony_ratio", harmony_ratio)):
        metrics[metric] = {}
        for slice_index, (track, name) in enumerate(zip(track_list, names, strict=True)):
            scored = pitched_condition and track != DRUMS and track != condition_track
            metrics[metric][name] = fn(x[..., slice_index], cond_roll) if scored else float("nan")
    return {
        "n_phrases": int(x.shape[0]),
        "n_bars": int(x.shape[1]),
        "condition_track": TRACK_NAMES[condition_track],
        "tracks": names,
        "metrics": metrics,
    }
