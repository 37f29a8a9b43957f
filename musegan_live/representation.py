"""The one place that fixes how music is represented (``docs/DESIGN.md``, "Representation").

A *phrase* is ``bool[N_BARS, STEPS_PER_BAR, N_PITCHES, N_TRACKS]`` = ``[4, 48, 84, 5]``:
4 bars of 4/4, 12 steps per beat, MIDI pitches 24..107, tracks in LPD-5 order.
A *dataset* stacks phrases: ``[N, 4, 48, 84, 5]``.

Everything else in the project (MIDI reading and writing, the model, the live engine) imports its
constants from here; ``training`` imports this module, never the other way round.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from musegan_live.atomic_files import atomic_write
from musegan_live.errors import DataFileError

# --- tracks ---------------------------------------------------------------------------------
TRACK_NAMES: tuple[str, ...] = ("Drums", "Piano", "Guitar", "Bass", "Strings")
N_TRACKS = len(TRACK_NAMES)
DRUMS, PIANO, GUITAR, BASS, STRINGS = range(N_TRACKS)
#: General MIDI program per track when writing MIDI (drums use the kit on channel 10).
TRACK_PROGRAMS: tuple[int, ...] = (0, 0, 25, 33, 48)
#: 0-based MIDI channel of the drum track (channel 10 in 1-based numbering).
DRUM_CHANNEL = 9

# --- time -----------------------------------------------------------------------------------
BEATS_PER_BAR = 4
STEPS_PER_BEAT = 12
STEPS_PER_BAR = STEPS_PER_BEAT * BEATS_PER_BAR  # 48
N_BARS = 4  # bars per phrase
STEPS_PER_PHRASE = STEPS_PER_BAR * N_BARS  # 192

# --- MIDI clock (24 PPQN) -------------------------------------------------------------------
TICKS_PER_BEAT = 24
TICKS_PER_STEP = TICKS_PER_BEAT // STEPS_PER_BEAT  # 2
TICKS_PER_BAR = TICKS_PER_BEAT * BEATS_PER_BAR  # 96
TICKS_PER_SPP_UNIT = 6  # Song Position Pointer counts 16th notes
STEPS_PER_SPP_UNIT = TICKS_PER_SPP_UNIT // TICKS_PER_STEP  # 3
#: Tempi (quarter notes per minute) the internal clock runs at and the external clock estimate
#: is held within.
MIN_BPM, MAX_BPM = 20.0, 300.0


def bpm_for_seconds_per_tick(seconds_per_tick: float) -> float:
    """Quarter notes per minute for a MIDI clock tick interval in seconds (24 ticks per beat)."""
    return 60.0 / (seconds_per_tick * TICKS_PER_BEAT)


def seconds_per_tick_at(bpm: float) -> float:
    """Seconds between two MIDI clock ticks at ``bpm`` quarter notes per minute (no range check;
    ``musegan_live.clock.tempo.seconds_per_tick_for_bpm`` checks the range)."""
    return 60.0 / (bpm * TICKS_PER_BEAT)


def bar_beat(position_ticks: int) -> str:
    """``"bar:beat"``, both 1-based: tick 0 -> ``"1:1"``, tick 96 + 24 -> ``"2:2"``."""
    bar = position_ticks // TICKS_PER_BAR + 1
    beat = (position_ticks % TICKS_PER_BAR) // TICKS_PER_BEAT + 1
    return f"{bar}:{beat}"


# MIDI controller numbers the live path sends or understands.
SUSTAIN_CC = 64
ALL_SOUND_OFF_CC = 120
ALL_NOTES_OFF_CC = 123

# --- pitch ----------------------------------------------------------------------------------
LOWEST_PITCH = 24
N_PITCHES = 84
HIGHEST_PITCH = LOWEST_PITCH + N_PITCHES - 1  # 107

PHRASE_SHAPE: tuple[int, int, int, int] = (N_BARS, STEPS_PER_BAR, N_PITCHES, N_TRACKS)

#: Drums are stored as onsets held for this many steps (a 16th note at 12 steps per beat).
DRUM_NOTE_STEPS = 3


#: One axis of a roll layout for :func:`check_roll`: a fixed size, or a name for any size.
Axis = int | str


def check_roll(array: np.ndarray, name: str, *layouts: tuple[Axis, ...]) -> np.ndarray:
    """``array`` as an ndarray if its shape fits one of ``layouts``, else ValueError.

    A layout gives each axis a fixed size (``48``) or a name that allows any size (``"N"``,
    ``"n_steps"``); the message names the array, its shape and every layout accepted, e.g.
    ``roll has shape (48, 128, 5); expected [n_steps, 84, tracks]``. Layouts should differ in
    their number of axes, so a caller can tell by ``ndim`` which one it got.
    """
    arr = np.asarray(array)
    for layout in layouts:
        if arr.ndim == len(layout) and all(
            isinstance(size, str) or arr.shape[axis] == size for axis, size in enumerate(layout)
        ):
            return arr
    expected = " or ".join(f"[{', '.join(map(str, layout))}]" for layout in layouts)
    raise ValueError(f"{name} has shape {arr.shape}; expected {expected}")


def check_track_slices(
    tracks: Iterable[int], n_slices: int, *, distinct: bool = False
) -> tuple[int, ...]:
    """The representation track index of each of ``n_slices`` slices on a roll's last axis.

    ValueError unless ``tracks`` gives exactly one index in ``0..N_TRACKS-1`` per slice (and,
    with ``distinct``, no index twice).
    """
    track_list = tuple(int(t) for t in tracks)
    if len(track_list) != n_slices:
        raise ValueError(
            f"tracks {list(track_list)} name {len(track_list)} tracks but the roll has "
            f"{n_slices} slices on its last axis; pass one representation track index per slice"
        )
    bad = [t for t in track_list if not 0 <= t < N_TRACKS]
    if bad:
        raise ValueError(f"track indices {bad} are not in 0..{N_TRACKS - 1} ({TRACK_NAMES})")
    if distinct and len(set(track_list)) != len(track_list):
        raise ValueError(f"tracks must be distinct indices, got {list(track_list)}")
    return track_list


def roll_notes(track_roll: np.ndarray, *, drums: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Notes of one track ``bool[n_steps, 84]`` as (start_steps, end_steps, pitch_rows), ordered
    by pitch row (0..83), then step; an end step is exclusive.

    Each run of ``True`` is one note; for drums (the LPD-5 rule) a run is one hit every
    ``DRUM_NOTE_STEPS`` steps, each ``DRUM_NOTE_STEPS`` long, the last ending with the run.
    """
    edges = np.diff(track_roll.astype(np.int8), axis=0, prepend=0, append=0).T  # [84, n+1]
    pitches, starts = np.nonzero(edges == 1)  # ordered by pitch, then step
    _, ends = np.nonzero(edges == -1)  # the same order, so runs pair up one to one
    if drums:
        n_hits = -(-(ends - starts) // DRUM_NOTE_STEPS)
        run = np.repeat(np.arange(len(starts)), n_hits)
        hit_in_run = np.arange(len(run)) - np.repeat(np.cumsum(n_hits) - n_hits, n_hits)
        hit_starts = starts[run] + hit_in_run * DRUM_NOTE_STEPS
        ends = np.minimum(hit_starts + DRUM_NOTE_STEPS, ends[run])
        starts, pitches = hit_starts, pitches[run]
    return starts, ends, pitches


def roll_note_events(
    track_roll: np.ndarray, velocity: np.ndarray, *, drums: bool
) -> tuple[dict[int, list[tuple[int, int]]], dict[int, list[int]]]:
    """Note-ons ``{step: [(midi_pitch, velocity)]}`` and note-offs ``{step: [midi_pitch]}`` of
    one track ``bool[n_steps, 84]`` with its velocities ``uint8[n_steps, 84]`` (0 reads as 100),
    notes cut as :func:`roll_notes` cuts them: how a player would play the roll."""
    ons: dict[int, list[tuple[int, int]]] = {}
    offs: dict[int, list[int]] = {}
    for start, end, row in zip(*roll_notes(track_roll, drums=drums), strict=True):
        vel = int(velocity[start, row]) or 100
        ons.setdefault(int(start), []).append((LOWEST_PITCH + int(row), vel))
        offs.setdefault(int(end), []).append(LOWEST_PITCH + int(row))
    return ons, offs


def drum_hits(
    notes: np.ndarray, previous: np.ndarray, steps_into_run: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The drum rule of :func:`roll_notes` one step at a time (the live scheduler's way).

    ``notes`` and ``previous``: ``bool[84]`` drum cells at this step and at the step before (all
    False when the step before was not played); ``steps_into_run``: ``int[84]``, the second value
    this function returned for the step before. Returns ``(hits, steps_into_run)``: the pitch
    rows where a hit starts at this step (the first step of a run, then every
    ``DRUM_NOTE_STEPS`` steps into it, as :func:`roll_notes` cuts a run), and how many steps each
    cell is into its run now (0 on its first step).
    """
    into = np.where(notes & previous, steps_into_run + 1, 0)
    return notes & (into % DRUM_NOTE_STEPS == 0), into


def representation_constants() -> dict[str, object]:
    """The constants a model must agree with, as written into model.yaml and ONNX metadata."""
    return {
        "tracks": list(TRACK_NAMES),
        "n_bars": N_BARS,
        "steps_per_bar": STEPS_PER_BAR,
        "steps_per_beat": STEPS_PER_BEAT,
        "n_pitches": N_PITCHES,
        "lowest_pitch": LOWEST_PITCH,
    }


def track_index(name: str) -> int:
    """Index of a track given its name, case-insensitively ('piano' -> 1)."""
    for index, track_name in enumerate(TRACK_NAMES):
        if track_name.lower() == name.strip().lower():
            return index
    raise ValueError(f"unknown track {name!r}; choose one of {', '.join(TRACK_NAMES)}")


def other_tracks(condition_track: int) -> list[int]:
    """The accompaniment tracks for a condition track, in representation order."""
    return [t for t in range(N_TRACKS) if t != condition_track]


def lpd5_track_for_program(program: int, is_drum: bool) -> int | None:
    """LPD-5 'max' merge rule: the track a MIDI instrument belongs to, or None if dropped.

    ``program`` is the 0-based General MIDI program number.
    """
    if is_drum:
        return DRUMS
    if 0 <= program <= 7:
        return PIANO
    if 24 <= program <= 31:
        return GUITAR
    if 32 <= program <= 39:
        return BASS
    if 96 <= program <= 103 or program >= 112:
        return None
    return STRINGS


# --- phrases <-> long rolls -----------------------------------------------------------------
def steps_to_phrases(roll_steps: np.ndarray, hop_bars: int = N_BARS) -> np.ndarray:
    """Cut a song roll ``bool[n_steps, 84, 5]`` into phrases ``bool[N, 4, 48, 84, 5]``.

    Phrases start every ``hop_bars`` bars; a trailing partial phrase is dropped.
    """
    if hop_bars < 1:
        raise ValueError("hop_bars must be >= 1")
    n_bars_total = roll_steps.shape[0] // STEPS_PER_BAR
    starts = range(0, n_bars_total - N_BARS + 1, hop_bars)
    phrases = [
        roll_steps[b * STEPS_PER_BAR : (b + N_BARS) * STEPS_PER_BAR].reshape(PHRASE_SHAPE)
        for b in starts
    ]
    if not phrases:
        return np.zeros((0, *PHRASE_SHAPE), dtype=bool)
    return np.stack(phrases).astype(bool, copy=False)


def phrases_to_steps(phrases: np.ndarray) -> np.ndarray:
    """Join phrases ``[..., 4, 48, 84, T]`` (or one phrase) into ``[n_steps, 84, T]``."""
    arr = np.asarray(phrases)
    return arr.reshape(-1, arr.shape[-2], arr.shape[-1])


# --- LPD-5 sparse file format ---------------------------------------------------------------
@dataclass(frozen=True)
class SparseDataset:
    """A dataset kept in LPD-5's sparse form: a shape and the coordinates of the true cells.

    ``phrase(i)`` and ``phrases(indices)`` densify only what is asked for, so a 100k-phrase file
    costs its nonzero count in memory, not ``N * 4 * 48 * 84 * 5`` bytes.
    """

    shape: tuple[int, ...]
    nonzero: tuple[np.ndarray, ...]  # one integer array per axis, sorted by the first axis

    def __len__(self) -> int:
        return int(self.shape[0])

    def _bounds(self, index: int) -> tuple[int, int]:
        first = self.nonzero[0]
        lo = int(np.searchsorted(first, index, "left"))
        return lo, int(np.searchsorted(first, index, "right"))

    def phrase(self, index: int) -> np.ndarray:
        """Dense ``bool[4, 48, 84, 5]`` phrase number ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"phrase {index} out of range for {len(self)} phrases")
        lo, hi = self._bounds(index)
        out = np.zeros(self.shape[1:], dtype=bool)
        out[tuple(axis[lo:hi] for axis in self.nonzero[1:])] = True
        return out

    def phrases(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """Dense ``bool[len(indices), 4, 48, 84, 5]``."""
        return np.stack([self.phrase(int(i)) for i in indices]) if len(indices) else np.zeros(
            (0, *self.shape[1:]), dtype=bool
        )

    def dense(self) -> np.ndarray:
        """The whole dataset densified (only for small files)."""
        return self.phrases(np.arange(len(self)))


def sparse_from_dense(data: np.ndarray) -> SparseDataset:
    """Sparse form of a dense boolean dataset ``[N, ...]``."""
    nonzero = tuple(np.asarray(a, dtype=np.int64) for a in np.asarray(data).nonzero())
    return SparseDataset(shape=tuple(int(s) for s in data.shape), nonzero=nonzero)


def save_sparse_npz(path: str | os.PathLike, data: np.ndarray | SparseDataset) -> None:
    """Write the LPD-5 sparse format: ``np.savez_compressed(path, shape=..., nonzero=...)``.

    ``nonzero`` is stored as int32 ``[5, K]`` sorted by phrase (what ``data.nonzero()`` gives, at
    half the memory of int64); LPD-5's own loader, ``data[tuple(nonzero)] = True``, reads it.
    """
    sparse = data if isinstance(data, SparseDataset) else sparse_from_dense(data)
    nonzero = np.stack(sparse.nonzero).astype(np.int32, copy=False)
    shape = np.asarray(sparse.shape, dtype=np.int64)
    # savez insists on a .npz name, so the temporary file gets that extension too.
    atomic_write(
        path,
        save_to_path=lambda tmp: np.savez_compressed(tmp, shape=shape, nonzero=nonzero),
        tmp_suffix=".npz",
    )


def load_sparse_npz(path: str | os.PathLike) -> SparseDataset:
    """Read an LPD-5 sparse ``.npz`` (``shape``, ``nonzero``) without densifying it."""
    try:
        with np.load(path, allow_pickle=False) as f:
            shape = tuple(int(s) for s in f["shape"])
            nonzero_arr = np.asarray(f["nonzero"])
    except FileNotFoundError as err:
        raise DataFileError(f"{path}: no such file") from err
    except (KeyError, ValueError, OSError) as err:
        raise DataFileError(
            f"{path}: not an LPD-5 sparse npz (needs arrays 'shape' and 'nonzero'): {err}"
        ) from err
    if len(shape) != 5 or tuple(shape[1:]) != PHRASE_SHAPE:
        raise DataFileError(
            f"{path}: shape {shape} is not [N, {', '.join(map(str, PHRASE_SHAPE))}] "
            "(4 bars x 48 steps x 84 pitches x 5 tracks)"
        )
    if nonzero_arr.ndim != 2 or nonzero_arr.shape[0] != len(shape):
        raise DataFileError(f"{path}: 'nonzero' has shape {nonzero_arr.shape}, expected (5, K)")
    if nonzero_arr.dtype.kind not in "iu":
        raise DataFileError(f"{path}: 'nonzero' holds {nonzero_arr.dtype}, expected integers")
    if nonzero_arr.size and (
        (nonzero_arr < 0).any() or (nonzero_arr.max(axis=1) >= np.asarray(shape)).any()
    ):
        raise DataFileError(f"{path}: 'nonzero' indexes outside shape {shape}")
    if nonzero_arr.shape[1] and np.any(np.diff(nonzero_arr[0]) < 0):
        # Files written from data.nonzero() are sorted by phrase already; others get sorted once.
        nonzero_arr = nonzero_arr[:, np.argsort(nonzero_arr[0], kind="stable")]
    nonzero = tuple(nonzero_arr)
    return SparseDataset(shape=shape, nonzero=nonzero)
