"""Song rolls and phrases -> the files MuseGAN users expect: .npy, pypianoroll .npz, .png.

Every writer creates missing parent folders and writes atomically (a temporary file in the same
folder, then :func:`os.replace`), so an interrupted run never leaves half a file behind.
pypianoroll and matplotlib are imported only when their writer is called.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from musegan_live.atomic_files import atomic_write
from musegan_live.files.midi_write import cell_velocities, check_note_roll
from musegan_live.representation import (
    DRUMS,
    LOWEST_PITCH,
    N_BARS,
    N_PITCHES,
    N_TRACKS,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    TRACK_NAMES,
    TRACK_PROGRAMS,
    check_roll,
    check_track_slices,
)

#: One colour per track, in representation order (drums, piano, guitar, bass, strings).
TRACK_COLOURS: tuple[str, ...] = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd")
_BACKGROUND = (1.0, 1.0, 1.0)
_BEAT_LINE = (0.90, 0.90, 0.90)
_BAR_LINE = (0.55, 0.55, 0.55)
_TRACK_SEPARATOR = (0.25, 0.25, 0.25)
_PANEL_GAP_PX = 8
_LABEL_MARGIN_PX = 64
_TITLE_MARGIN_PX = 28
_SONG_PHRASES_PER_LINE = 2  # a song is drawn 8 bars per line by default


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save one array as ``.npy`` (no pickles), exactly as :func:`numpy.load` reads it back."""
    arr = np.asarray(array)
    atomic_write(path, lambda f: np.save(f, arr, allow_pickle=False))


def save_pypianoroll_npz(
    path: str | os.PathLike,
    roll: np.ndarray,
    *,
    tracks: Sequence[int] = range(N_TRACKS),
    tempo_bpm: float = 120.0,
    velocity: int | Sequence[int] | np.ndarray = 100,
) -> None:
    """Save a roll ``bool[n_steps, 84, len(tracks)]`` as a pypianoroll ``.npz``.

    ``pypianoroll.load(path)`` returns a ``Multitrack`` with ``resolution`` 12 (steps per beat),
    a 1-D ``tempo`` (bpm per step), a 1-D ``downbeat`` (every 48 steps) and one
    ``StandardTrack`` per slice: ``uint8[n_steps, 128]`` velocities, the 84 pitches placed from
    MIDI pitch 24, named and programmed as in :mod:`musegan_live.representation`. ``velocity`` is
    one int, one per slice, or per cell (as in :func:`musegan_live.files.midi_write.roll_to_midi`).

    The tempo array is written 1-D on purpose: pypianoroll 1.0.4's own MIDI reader makes it
    ``(n_steps, 1)``, which its ``validate()`` rejects and which makes ``to_pretty_midi()``
    / ``write()`` fail under numpy >= 2.4 (``float(hmean(tempo))`` of a 1-element array).
    """
    import pypianoroll

    arr, track_list = check_note_roll(roll, tracks)
    if not (math.isfinite(tempo_bpm) and tempo_bpm > 0):
        raise ValueError(f"tempo_bpm must be a positive number, got {tempo_bpm}")
    velocities = cell_velocities(arr, velocity)
    n_steps = arr.shape[0]
    track_objects = []
    for k, track in enumerate(track_list):
        pianoroll = np.zeros((n_steps, 128), dtype=np.uint8)
        pianoroll[:, LOWEST_PITCH : LOWEST_PITCH + N_PITCHES] = np.where(
            arr[:, :, k], velocities[:, :, k], 0
        )
        track_objects.append(
            pypianoroll.StandardTrack(
                name=TRACK_NAMES[track],
                program=TRACK_PROGRAMS[track],
                is_drum=track == DRUMS,
                pianoroll=pianoroll,
            )
        )
    multitrack = pypianoroll.Multitrack(
        name=Path(path).stem,
        resolution=STEPS_PER_BEAT,
        tempo=np.full(n_steps, float(tempo_bpm)),
        downbeat=np.arange(n_steps) % STEPS_PER_BAR == 0,
        tracks=track_objects,
    )
    multitrack.validate()
    # pypianoroll.save appends info.json to the zip after writing it, so it needs a real path.
    # numpy appends '.npz' to names without it, so the temporary name always ends with it.
    atomic_write(
        path, None, save_to_path=lambda tmp: pypianoroll.save(tmp, multitrack), tmp_suffix=".npz"
    )


def save_png(
    path: str | os.PathLike,
    rolls: np.ndarray,
    *,
    tracks: Sequence[int] = range(N_TRACKS),
    columns: int | None = None,
    title: str | None = None,
) -> None:
    """Draw rolls as a MuseGAN-style picture: tracks stacked per sample, time on x, pitch up.

    ``rolls`` is one song ``[n_steps, 84, T]`` (drawn 8 bars per line, padded to whole 4-bar
    phrases), one phrase ``[4, 48, 84, T]`` or a batch ``[n, 4, 48, 84, T]`` drawn as a grid
    with ``columns`` panels per row (default: a square-ish grid; for a song, 2 phrases per line).
    ``tracks[k]`` is the representation track of slice ``k`` (its colour and label). Values are
    booleans, integers (nonzero = on) or probabilities in [0, 1] (drawn as colour intensity).
    One pixel per step and per pitch; beat lines light grey, bar lines darker, tracks separated by
    a dark line; track names in the left margin, ``title`` on top.
    """
    phrases = _as_phrases(rolls)
    track_list = list(check_track_slices(tracks, phrases.shape[-1]))
    if columns is None:
        columns = (
            _SONG_PHRASES_PER_LINE
            if np.ndim(rolls) == 3
            else max(1, math.ceil(math.sqrt(len(phrases))))
        )
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    columns = min(columns, len(phrases))
    image = _grid_image(phrases, track_list, columns)
    atomic_write(path, lambda f: _render_png(f, image, track_list, title))


# --- drawing --------------------------------------------------------------------------------
def _as_phrases(rolls: np.ndarray) -> np.ndarray:
    """Any accepted input as intensities ``float32[n, 4, 48, 84, T]`` in [0, 1]."""
    arr = check_roll(
        rolls,
        "rolls",
        ("n_steps", N_PITCHES, "tracks"),
        (N_BARS, STEPS_PER_BAR, N_PITCHES, "tracks"),
        ("n>0", N_BARS, STEPS_PER_BAR, N_PITCHES, "tracks"),
    )
    if arr.ndim == 5 and not len(arr):
        raise ValueError(f"rolls has shape {arr.shape}; expected at least one phrase")
    if arr.ndim == 3:
        n_steps = arr.shape[0]
        phrase_steps = N_BARS * STEPS_PER_BAR
        n_phrases = max(1, -(-n_steps // phrase_steps))
        padded = np.zeros((n_phrases * phrase_steps, *arr.shape[1:]), dtype=arr.dtype)
        padded[:n_steps] = arr
        arr = padded.reshape(n_phrases, N_BARS, STEPS_PER_BAR, N_PITCHES, arr.shape[-1])
    elif arr.ndim == 4:
        arr = arr[np.newaxis]
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return (arr != 0).astype(np.float32)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"rolls must be boolean, integer or float, got {arr.dtype}")
    return np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0)


def _rgb(colour: str) -> np.ndarray:
    return np.asarray([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)], dtype=np.float32)


def _panel_height_px(n_tracks: int) -> int:
    return n_tracks * N_PITCHES + (n_tracks - 1)


def _grid_image(phrases: np.ndarray, tracks: list[int], columns: int) -> np.ndarray:
    """RGB ``float32[H, W, 3]``: panels (one per phrase) in a grid with gaps between them."""
    n, _, _, _, n_tracks = phrases.shape
    rows = -(-n // columns)
    panel_w = N_BARS * STEPS_PER_BAR
    panel_h = _panel_height_px(n_tracks)
    width = columns * panel_w + (columns + 1) * _PANEL_GAP_PX
    height = rows * panel_h + (rows + 1) * _PANEL_GAP_PX
    image = np.ones((height, width, 3), dtype=np.float32)

    blank = np.empty((panel_h, panel_w, 3), dtype=np.float32)
    blank[:] = _BACKGROUND
    blank[:, ::STEPS_PER_BEAT] = _BEAT_LINE
    blank[:, ::STEPS_PER_BAR] = _BAR_LINE
    blank[:, -1] = _BAR_LINE
    for k in range(1, n_tracks):
        blank[k * (N_PITCHES + 1) - 1] = _TRACK_SEPARATOR
    colours = [_rgb(TRACK_COLOURS[t]) for t in tracks]

    for i in range(n):
        panel = blank.copy()
        steps = phrases[i].reshape(panel_w, N_PITCHES, n_tracks)
        for k in range(n_tracks):
            # Pitch grows upward: row 0 of the strip is the highest pitch.
            alpha = steps[:, ::-1, k].T[..., np.newaxis]  # [84, panel_w, 1]
            top = k * (N_PITCHES + 1)
            strip = panel[top : top + N_PITCHES]
            panel[top : top + N_PITCHES] = strip * (1 - alpha) + colours[k] * alpha
        row, col = divmod(i, columns)
        y = _PANEL_GAP_PX + row * (panel_h + _PANEL_GAP_PX)
        x = _PANEL_GAP_PX + col * (panel_w + _PANEL_GAP_PX)
        image[y : y + panel_h, x : x + panel_w] = panel
    return image


def _render_png(f: IO[bytes], image: np.ndarray, tracks: list[int], title: str | None) -> None:
    """Put the image, track labels and title into a figure of exact pixel size; write PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    top = _TITLE_MARGIN_PX if title else 0
    height_px, width_px = image.shape[0] + top, image.shape[1] + _LABEL_MARGIN_PX
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes(
        (_LABEL_MARGIN_PX / width_px, 0.0, image.shape[1] / width_px, image.shape[0] / height_px)
    )
    ax.imshow(image, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    for k, track in enumerate(tracks):  # label the strips of the first row of panels
        centre_px = top + _PANEL_GAP_PX + k * (N_PITCHES + 1) + N_PITCHES / 2
        fig.text(
            (_LABEL_MARGIN_PX - 6) / width_px,
            1 - centre_px / height_px,
            TRACK_NAMES[track],
            ha="right",
            va="center",
            fontsize=8,
            color=TRACK_COLOURS[track],
            fontweight="bold",
        )
    if title:
        fig.text(0.5, 1 - (top / 2) / height_px, title, ha="center", va="center", fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    f.write(buffer.getvalue())


# --- files ----------------------------------------------------------------------------------
