"""Offline jobs: accompany a MIDI file, generate from nothing, interpolate between latents.

:func:`accompany` works in MuseGAN's setting by default: each 4-bar phrase of the file is
accompanied with its whole condition known (the best a file can get). With ``as_live`` it drives
the very same :class:`~musegan_live.live.session.Session` as the daemon instead, on a simulated
clock: ticks at the file's tempo, the file's condition-track notes fed as the player's messages at
their times, inference inline (:class:`InlinePlanner`), so the result is what a live listener
would have heard. Both are the same for the same seed. :func:`generate` and
:func:`interpolate` call the model directly with an empty condition (nothing heard) and write
what MuseGAN users expect: all phrases as ``.npy`` and a ``.png`` grid, each phrase as a
pypianoroll ``.npz`` and a ``.mid``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mido
import numpy as np

from musegan_live.clock.follower import ClockEvent
from musegan_live.config.live import LiveConfig, default_config
from musegan_live.errors import ConfigError, MidiFileError
from musegan_live.files.midi_read import read_midi
from musegan_live.files.midi_write import write_midi
from musegan_live.files.roll_files import save_npy, save_png, save_pypianoroll_npz
from musegan_live.live.planner import InlinePlanner
from musegan_live.live.scheduler import FOLLOW_DEFAULT_VELOCITY
from musegan_live.live.session import Outgoing, Session
from musegan_live.model.batches import run_in_batches
from musegan_live.representation import (
    DRUMS,
    N_BARS,
    N_PITCHES,
    N_TRACKS,
    STEPS_PER_BAR,
    TICKS_PER_STEP,
    TRACK_NAMES,
    roll_note_events,
    seconds_per_tick_at,
)

logger = logging.getLogger(__name__)

INTERPOLATION_MODES = ("linear", "slerp")
#: Phrases per model call in generate/interpolate.
BATCH = 16


@dataclass(frozen=True)
class AccompanyResult:
    """What :func:`accompany` wrote: ``notes`` counts note onsets per track name."""

    out_mid: Path
    png: Path | None
    n_bars: int
    tempo_bpm: float
    notes: dict[str, int]
    late_plans: int  # as live only (0 otherwise)


def _given_or_loaded(
    accompanist: Any, config: LiveConfig, model_dir: str | os.PathLike | None
) -> Any:
    """``accompanist`` if given, else the model of ``model_dir`` / ``config`` (loaded now)."""
    if accompanist is not None:
        return accompanist
    from musegan_live.model.inference import load_accompanist

    return load_accompanist(config, model_dir)


def offline_config(config: LiveConfig) -> LiveConfig:
    """``config`` for a simulated clock: no thru, no latency offsets, nothing recorded live."""
    return config.replace(
        tracks=tuple(dataclasses.replace(t, latency_ms=0.0) for t in config.tracks),
        input=dataclasses.replace(config.input, thru=False, channel=None),
        record=None,
    )


# --- accompany -------------------------------------------------------------------------------
def accompany(
    midi_path: str | os.PathLike,
    out_mid: str | os.PathLike,
    *,
    model_dir: str | os.PathLike | None = None,
    png: str | os.PathLike | None = None,
    seed: int = 0,
    config: LiveConfig | None = None,
    accompanist: Any = None,
    as_live: bool = False,
    assume_4_4: bool = False,
) -> AccompanyResult:
    """Accompany the condition track of ``midi_path``, write ``out_mid`` (the file's condition
    track + the four generated tracks) and optionally a ``png`` picture. By default every phrase
    hears its whole condition; ``as_live`` plays the file through the live session instead (see
    the module docstring). ``accompanist`` reuses a loaded model (else ``model_dir`` is loaded).
    ``assume_4_4``: read the file as 4/4 whatever its time signatures say. Deterministic for a
    given ``seed``."""
    config = offline_config(config or default_config())
    accompanist = _given_or_loaded(accompanist, config, model_dir)
    song = read_midi(midi_path, assume_4_4=assume_4_4)
    condition = int(accompanist.condition_track)
    if not song.roll[:, :, condition].any():
        raise MidiFileError(
            f"{midi_path}: no {TRACK_NAMES[condition]} notes to accompany (the file has "
            f"{song.describe_tracks()}); the model follows "
            f"{TRACK_NAMES[condition]}: give a file with that part, or use "
            "'musegan-live generate' for accompaniment from nothing",
            reason="no_usable_tracks",
        )
    n_steps = song.roll.shape[0]
    late_plans = 0
    if as_live:
        session = Session(config, accompanist, planner=InlinePlanner(), seed=seed, keep_take=True)
        play_song(
            session,
            song.roll[:, :, condition],
            song.velocity[:, :, condition],
            song.tempo_bpm,
            drums=condition == DRUMS,
        )
        roll, velocity = session.take_roll()
        roll, velocity = _fit(roll, n_steps), _fit(velocity, n_steps)
        late_plans = session.stats.late_plans
    else:
        roll, velocity = _accompany_whole(
            accompanist, song.roll[:, :, condition], song.velocity[:, :, condition], config, seed
        )
    roll[:, :, condition] = song.roll[:, :, condition]
    velocity[:, :, condition] = song.velocity[:, :, condition]
    programs = [p if (p := config.tracks[t].program) is not None else 0 for t in range(N_TRACKS)]
    write_midi(out_mid, roll, tempo_bpm=song.tempo_bpm, velocity=velocity, programs=programs)
    if png is not None:
        save_png(png, roll, title=f"{Path(midi_path).name}, accompanied (seed {seed})")
    onsets = roll & ~np.concatenate([np.zeros_like(roll[:1]), roll[:-1]])
    result = AccompanyResult(
        out_mid=Path(out_mid),
        png=Path(png) if png is not None else None,
        n_bars=n_steps // STEPS_PER_BAR,
        tempo_bpm=song.tempo_bpm,
        notes={TRACK_NAMES[t]: int(onsets[:, :, t].sum()) for t in range(N_TRACKS)},
        late_plans=late_plans,
    )
    logger.debug("accompanied %s: %d bars, notes %s", midi_path, result.n_bars, result.notes)
    return result


def _accompany_whole(
    accompanist: Any, condition: np.ndarray, velocity: np.ndarray, config: LiveConfig, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """MuseGAN's setting: each 4-bar phrase of ``condition`` ``bool[n_steps, 84]`` accompanied
    with all of it heard (the last phrase padded with silence), one ``z`` per phrase.

    Returns the song roll ``bool[n_steps, 84, 5]`` (the condition track left empty) and its
    velocities: a track's fixed velocity, or for "follow" the median of the player's note-ons.
    """
    n_steps = condition.shape[0]
    phrase_steps = N_BARS * STEPS_PER_BAR
    n_phrases = -(-n_steps // phrase_steps)
    padded = _fit(condition, n_phrases * phrase_steps)
    phrases = padded.reshape(n_phrases, N_BARS, STEPS_PER_BAR, N_PITCHES).astype(np.float32)
    z = accompanist.sample_z(np.random.default_rng(seed), n_phrases).astype(np.float32)
    known = np.ones((n_phrases, N_BARS, STEPS_PER_BAR), np.float32)
    tracks = run_in_batches(  # [n_phrases, 4, 48, 84, 4]
        lambda c, k, zs: accompanist.accompany(c, k, zs, threshold=config.threshold),
        phrases, known, z, batch_size=BATCH,
    ).astype(bool, copy=False)
    generated = tracks.reshape(n_phrases * phrase_steps, N_PITCHES, -1)[:n_steps]
    roll = np.zeros((n_steps, N_PITCHES, N_TRACKS), bool)
    roll[:, :, list(accompanist.output_tracks)] = generated
    played = velocity[velocity > 0]
    follow = int(np.median(played)) if played.size else FOLLOW_DEFAULT_VELOCITY
    levels = np.array([follow if config.tracks[t].follows_player else int(config.tracks[t].velocity)
                       for t in range(N_TRACKS)], np.uint8)
    return roll, (roll * levels).astype(np.uint8)


def play_song(
    session: Session,
    condition: np.ndarray,
    velocity: np.ndarray,
    tempo_bpm: float,
    *,
    drums: bool = False,
) -> list[Outgoing]:
    """Run ``session`` through a song on a simulated clock: Start, a tick every
    ``60 / (tempo_bpm * 24)`` seconds from time 0, the condition roll ``bool[n_steps, 84]`` played
    as note messages at their step times (``velocity`` ``uint8[n_steps, 84]``), then Stop.
    Returns everything the session sent."""
    seconds_per_tick = seconds_per_tick_at(tempo_bpm)
    n_steps = condition.shape[0]
    ons, offs = roll_note_events(condition, velocity, drums=drums)
    out = session.start_messages()
    out += session.handle_clock(ClockEvent("start", 0, 0.0, seconds_per_tick))
    for tick in range(n_steps * TICKS_PER_STEP):
        now = tick * seconds_per_tick
        if tick % TICKS_PER_STEP == 0:
            step = tick // TICKS_PER_STEP
            for pitch in offs.get(step, ()):
                session.handle_player(mido.Message("note_off", note=pitch), now)
            for pitch, vel in ons.get(step, ()):
                session.handle_player(mido.Message("note_on", note=pitch, velocity=vel), now)
        out += session.handle_clock(ClockEvent("tick", tick, now, seconds_per_tick))
    end = n_steps * TICKS_PER_STEP
    for pitch in offs.get(n_steps, ()):
        session.handle_player(mido.Message("note_off", note=pitch), end * seconds_per_tick)
    out += session.handle_clock(ClockEvent("stop", end, end * seconds_per_tick, seconds_per_tick))
    return out


def _fit(array: np.ndarray, n_steps: int) -> np.ndarray:
    """``array`` cut or zero-padded to ``n_steps`` along axis 0."""
    if array.shape[0] >= n_steps:
        return array[:n_steps].copy()
    pad = np.zeros((n_steps - array.shape[0], *array.shape[1:]), dtype=array.dtype)
    return np.concatenate([array, pad])


# --- generate / interpolate -------------------------------------------------------------------
def generate(
    out_dir: str | os.PathLike,
    n: int = 8,
    seed: int = 0,
    model_dir: str | os.PathLike | None = None,
    *,
    config: LiveConfig | None = None,
    accompanist: Any = None,
    tempo_bpm: float = 120.0,
) -> list[Path]:
    """``n`` phrases from scratch (empty condition, nothing known) into ``out_dir``; returns
    the files written (see :func:`write_phrases`)."""
    if n < 1:
        raise ConfigError(f"generate: n must be at least 1 (got {n})")
    config = config or default_config()
    accompanist = _given_or_loaded(accompanist, config, model_dir)
    z = accompanist.sample_z(np.random.default_rng(seed), n)
    phrases = phrases_from_latents(accompanist, z, config.threshold)
    return write_phrases(out_dir, phrases, stem="generated", tempo_bpm=tempo_bpm)


def interpolate(
    out_dir: str | os.PathLike,
    *,
    rows: int = 4,
    cols: int = 4,
    corners: int = 2,
    mode: str = "slerp",
    seed: int = 0,
    model_dir: str | os.PathLike | None = None,
    config: LiveConfig | None = None,
    accompanist: Any = None,
    tempo_bpm: float = 120.0,
) -> list[Path]:
    """A ``rows`` x ``cols`` grid of phrases between random latent vectors.

    ``corners=2``: from one vector to another along the grid in reading order; ``corners=4``:
    one vector per grid corner, bilinear in between. ``mode``: ``linear`` or ``slerp``
    (spherical, which keeps Gaussian latents at a typical norm)."""
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise ConfigError(f"interpolate: the grid must hold 2 or more phrases (got {rows}x{cols})")
    if corners not in (2, 4):
        raise ConfigError(f"interpolate: corners must be 2 or 4 (got {corners})")
    if corners == 4 and (rows < 2 or cols < 2):
        raise ConfigError(f"interpolate: 4 corners need at least 2x2 (got {rows}x{cols})")
    if mode not in INTERPOLATION_MODES:
        raise ConfigError(
            f"interpolate: mode must be one of {', '.join(INTERPOLATION_MODES)} (got {mode!r})"
        )
    config = config or default_config()
    accompanist = _given_or_loaded(accompanist, config, model_dir)
    ends = accompanist.sample_z(np.random.default_rng(seed), corners)
    z = latent_grid(ends, rows, cols, mode)
    phrases = phrases_from_latents(accompanist, z, config.threshold)
    return write_phrases(out_dir, phrases, stem="interpolation", tempo_bpm=tempo_bpm, columns=cols)


def latent_grid(ends: np.ndarray, rows: int, cols: int, mode: str) -> np.ndarray:
    """Latents ``float32[rows * cols, latent]`` in reading order between 2 or 4 ``ends``."""
    mix = slerp if mode == "slerp" else lerp
    if len(ends) == 2:
        ts = np.linspace(0.0, 1.0, rows * cols)
        return np.stack([mix(ends[0], ends[1], t) for t in ts]).astype(np.float32)
    top_left, top_right, bottom_left, bottom_right = ends
    out = []
    for v in np.linspace(0.0, 1.0, rows):
        for u in np.linspace(0.0, 1.0, cols):
            out.append(mix(mix(top_left, top_right, u), mix(bottom_left, bottom_right, u), v))
    return np.stack(out).astype(np.float32)


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1.0 - t) * a + t * b


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation; falls back to linear for (anti)parallel vectors."""
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return lerp(a, b, t)
    return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def phrases_from_latents(accompanist: Any, z: np.ndarray, threshold: float | None) -> np.ndarray:
    """Phrases ``bool[n, 4, 48, 84, 5]`` for latents ``z`` with nothing heard (the condition
    track stays empty)."""
    n = len(z)
    phrases = np.zeros((n, N_BARS, STEPS_PER_BAR, N_PITCHES, N_TRACKS), dtype=bool)
    silence = np.zeros((n, N_BARS, STEPS_PER_BAR, N_PITCHES), np.float32)
    nothing_heard = np.zeros((n, N_BARS, STEPS_PER_BAR), np.float32)
    tracks = run_in_batches(
        lambda c, k, zs: accompanist.accompany(c, k, zs, threshold=threshold),
        silence, nothing_heard, z, batch_size=BATCH,
    )
    phrases[..., [int(t) for t in accompanist.output_tracks]] = tracks.astype(bool, copy=False)
    return phrases


def write_phrases(
    out_dir: str | os.PathLike,
    phrases: np.ndarray,
    *,
    stem: str,
    tempo_bpm: float = 120.0,
    columns: int | None = None,
) -> list[Path]:
    """Write ``phrases`` ``bool[n, 4, 48, 84, 5]``: ``<stem>.npy`` (all), ``<stem>.png`` (a
    grid), and per phrase ``<stem>_NN.npz`` (pypianoroll) and ``<stem>_NN.mid``."""
    folder = Path(out_dir)
    written = [folder / f"{stem}.npy", folder / f"{stem}.png"]
    save_npy(written[0], phrases)
    save_png(written[1], phrases, columns=columns, title=f"{stem}: {len(phrases)} phrases")
    width = max(2, len(str(len(phrases) - 1)))
    for i, phrase in enumerate(phrases):
        roll = phrase.reshape(-1, N_PITCHES, N_TRACKS)
        npz = folder / f"{stem}_{i:0{width}d}.npz"
        mid = folder / f"{stem}_{i:0{width}d}.mid"
        save_pypianoroll_npz(npz, roll, tempo_bpm=tempo_bpm)
        write_midi(mid, roll, tempo_bpm=tempo_bpm)
        written += [npz, mid]
    return written
