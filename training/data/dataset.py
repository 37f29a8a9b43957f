"""Phrases -> training batches: weighted files, a random "now" mask, condition dropout.

Data stays in LPD-5's sparse form (:func:`musegan_live.representation.load_sparse_npz`) and only
the phrases of one batch are densified. Each example of a batch gets

- a phrase ``bool[4, 48, 84, 5]`` from one of the files (files drawn by weight);
- a "now" (:class:`NowDistribution`): ``known_mask[bar, step] = 1`` before now. Drawn the way
  the live engine asks (most examples: now inside the window's last bar, mostly on a beat
  boundary or a few steps after one, since plans are made there), plus the whole phrase heard
  (offline accompaniment) and a uniform share, so the same model learns full, partial and live
  knowledge (``docs/DESIGN.md``, "The masked-condition model");
- optionally a transposition of every pitched track (not Drums) by the same random number of
  semitones, limited so that no note leaves the 84-pitch range (``transpose_semitones``, per
  file: a small corpus can be multiplied while a large one keeps its keys);
- optionally (``modulation_share``) a key change at a bar line: from a bar in 2..4 on, every
  pitched track moves by one more random interval of up to a tritone (:func:`modulate_phrase`),
  so chords a song never follows with (C then F#) still come with a band that plays them;
- with probability ``condition_dropout``, a dropped condition: mask all 0 (generation from
  scratch) and ``dropped = True``, which tells the training loop to show the critic an empty
  condition track too (nobody played; see train.py).

A phrase is usable when at least one accompaniment track has a note; conditioned examples also
need a note in the condition track (an empty condition teaches nothing about accompanying), while
dropped examples may come from phrases whose condition track is empty.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musegan_live.errors import DataFileError
from musegan_live.representation import (
    DRUM_NOTE_STEPS,
    DRUMS,
    LOWEST_PITCH,
    N_BARS,
    N_PITCHES,
    N_TRACKS,
    PHRASE_SHAPE,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    STEPS_PER_PHRASE,
    SparseDataset,
    load_sparse_npz,
)

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """One training batch (numpy; the loop moves it to the device)."""

    phrases: np.ndarray  # bool [B, 4, 48, 84, 5]: the real phrase, every track
    known_mask: np.ndarray  # float32 [B, 4, 48]: 1 where the condition step has been heard
    dropped: np.ndarray  # bool [B]: the condition was dropped (mask all 0, critic sees none)


@dataclass(frozen=True)
class NowDistribution:
    """How a training example's "now" (0..192 steps heard) is drawn.

    ``live_share`` of the examples hear bars 1-3 and bar 4 up to a step in 0..47; of those,
    ``on_beat_share`` are at a beat boundary or at most ``after_beat_steps`` steps after one (the
    engine plans on beats and right after the player's notes), the rest anywhere in the bar.
    ``full_share`` hear the whole phrase (offline accompaniment); the rest are uniform over
    0..192. Dropped conditions (generation from scratch) are decided separately.
    The defaults (0, 0) are the plain uniform "now".
    """

    live_share: float = 0.0
    full_share: float = 0.0
    on_beat_share: float = 0.7
    after_beat_steps: int = 3

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``int64[size]`` nows in 0..192 steps."""
        now = rng.integers(0, STEPS_PER_PHRASE + 1, size=size)
        kind = rng.random(size)
        live = kind < self.live_share
        full = (kind >= self.live_share) & (kind < self.live_share + self.full_share)
        on_beat = rng.random(size) < self.on_beat_share
        beat_steps = (rng.integers(0, 4, size=size) * STEPS_PER_BEAT
                      + rng.integers(0, self.after_beat_steps + 1, size=size))
        in_bar = np.where(on_beat, beat_steps, rng.integers(0, STEPS_PER_BAR, size=size))
        now[live] = (N_BARS - 1) * STEPS_PER_BAR + in_bar[live]
        now[full] = STEPS_PER_PHRASE
        return now


@dataclass
class _Source:
    path: str
    weight: float
    data: SparseDataset
    conditioned: np.ndarray  # int64 phrase indices usable with a condition
    free: np.ndarray  # int64 phrase indices usable without one
    offsets: np.ndarray  # int64[N + 1]: phrase i is nonzero[:][offsets[i] : offsets[i + 1]]
    transpose_semitones: int  # each drawn phrase moves by up to this many semitones (0 = never)

    def phrase_into(self, index: int, out: np.ndarray) -> None:
        """Write dense phrase ``index`` into ``out`` (bool[4, 48, 84, 5], cleared here)."""
        lo, hi = self.offsets[index], self.offsets[index + 1]
        out[...] = False
        out[tuple(axis[lo:hi] for axis in self.data.nonzero[1:])] = True


def known_mask_from_now(now_steps: np.ndarray) -> np.ndarray:
    """``float32[B, 4, 48]`` with 1 for every step before ``now_steps[b]`` (0..192)."""
    steps = np.arange(STEPS_PER_PHRASE)
    mask = steps[None, :] < np.asarray(now_steps)[:, None]
    return mask.reshape(-1, N_BARS, STEPS_PER_BAR).astype(np.float32)


def transpose_phrase(phrase: np.ndarray, max_semitones: int, rng: np.random.Generator) -> int:
    """Shift the pitched tracks of ``phrase`` (bool[bars, 48, 84, 5], in place) by one interval.

    The interval is uniform over the semitones in ``-max_semitones..max_semitones`` that keep every
    pitched note inside the 84-pitch range (a phrase spanning the whole range stays put); Drums
    are pitch-coded instruments and never move. Returns the shift in semitones.
    """
    pitched = [t for t in range(N_TRACKS) if t != DRUMS]
    used = np.flatnonzero(phrase[..., pitched].any(axis=(0, 1, 3)))
    if max_semitones == 0 or used.size == 0:
        return 0
    low = max(-max_semitones, -int(used[0]))
    high = min(max_semitones, N_PITCHES - 1 - int(used[-1]))
    shift = int(rng.integers(low, high + 1))
    if shift:
        phrase[..., pitched] = np.roll(phrase[..., pitched], shift, axis=2)
    return shift


#: Largest interval of a modulation, semitones up or down: a tritone reaches every pitch class.
MODULATION_SEMITONES = 6


def modulate_phrase(phrase: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A key change at a random bar line of ``phrase`` (bool[4, 48, 84, 5], in place).

    A bar ``b`` in 1..3 (0-based) is drawn, then bars ``b..3`` of every pitched track move
    together as :func:`transpose_phrase` moves a phrase (up to ``MODULATION_SEMITONES``; 0 may be
    drawn). Returns ``(b, shift in semitones)``.
    """
    bar = int(rng.integers(1, N_BARS))
    return bar, transpose_phrase(phrase[bar:], MODULATION_SEMITONES, rng)


def compact(data: SparseDataset) -> SparseDataset:
    """The same dataset with 8 bytes per note cell instead of 40.

    ``load_sparse_npz`` gives int64 coordinates; a phrase index fits int32 and every other axis
    (4 bars, 48 steps, 84 pitches, 5 tracks) fits uint8, which matters for corpora with tens of
    millions of note cells (62M for POP909 x MMA: 2.5 GB -> 0.5 GB).
    """
    first = data.nonzero[0].astype(np.int32 if len(data) < 2**31 else np.int64)
    rest = tuple(axis.astype(np.uint8) for axis in data.nonzero[1:])
    return SparseDataset(shape=data.shape, nonzero=(first, *rest))


def _track_presence(data: SparseDataset) -> np.ndarray:
    """``bool[N, 5]``: which tracks of each phrase hold at least one note."""
    present = np.zeros((len(data), N_TRACKS), dtype=bool)
    if data.nonzero and data.nonzero[0].size:
        present[data.nonzero[0], data.nonzero[4]] = True
    return present


class PhraseSampler:
    """Draws :class:`Batch` es from weighted LPD-5 sparse files.

    ``sources`` is a list of ``(path, weight)`` or ``(path, weight, transpose_semitones)``;
    ``condition_track`` a track index; ``transpose_semitones`` applies to sources without their own;
    ``modulation_share`` of the examples change key at a bar line (:func:`modulate_phrase`).
    """

    def __init__(
        self,
        sources: list[tuple[str | Path, float] | tuple[str | Path, float, int | None]],
        condition_track: int,
        condition_dropout: float,
        now: NowDistribution | None = None,
        transpose_semitones: int = 0,
        modulation_share: float = 0.0,
    ) -> None:
        if not sources:
            raise DataFileError(
                "no training data: set data.train in the config to one or more LPD-5 .npz files"
            )
        self.condition_track = condition_track
        self.condition_dropout = float(condition_dropout)
        self.modulation_share = float(modulation_share)
        self.now = now or NowDistribution()
        others = [t for t in range(N_TRACKS) if t != condition_track]
        self.sources: list[_Source] = []
        for path, weight, *own in sources:
            transpose = int(transpose_semitones if not own or own[0] is None else own[0])
            data = compact(load_sparse_npz(path))
            present = _track_presence(data)
            has_accompaniment = present[:, others].any(axis=1)
            conditioned = np.flatnonzero(has_accompaniment & present[:, condition_track])
            free = np.flatnonzero(has_accompaniment)
            logger.info("%s: %d phrases, %d with a condition, %d usable without", path, len(data),
                        conditioned.size, free.size)
            offsets = np.searchsorted(data.nonzero[0], np.arange(len(data) + 1))
            self.sources.append(_Source(str(path), float(weight), data, conditioned, free, offsets,
                                        transpose))
        if not any(s.free.size for s in self.sources):
            raise DataFileError(
                f"none of {[s.path for s in self.sources]} has a phrase with a note outside the "
                "condition track; check the files (or the model's condition_track)"
            )
        if self.condition_dropout < 1.0 and not any(s.conditioned.size for s in self.sources):
            raise DataFileError(
                f"none of {[s.path for s in self.sources]} has a phrase with notes in the "
                f"condition track {condition_track}; use data with that instrument, or set "
                "data.condition_dropout=1 to train generation from scratch only"
            )

    def __len__(self) -> int:
        return sum(len(s.data) for s in self.sources)

    def _pick(self, rng: np.random.Generator, dropped: bool) -> tuple[int, int]:
        pools = [s.free if dropped else s.conditioned for s in self.sources]
        weights = np.array(
            [s.weight if p.size else 0.0 for s, p in zip(self.sources, pools, strict=True)]
        )
        source = int(rng.choice(len(self.sources), p=weights / weights.sum()))
        pool = pools[source]
        return source, int(pool[rng.integers(pool.size)])

    def sample(
        self, batch_size: int, rng: np.random.Generator, condition_dropout: float | None = None
    ) -> Batch:
        """A batch of ``batch_size`` examples drawn with ``rng`` (all randomness comes from it).

        ``condition_dropout`` overrides the sampler's share of dropped conditions.
        """
        share = self.condition_dropout if condition_dropout is None else condition_dropout
        dropped = rng.random(batch_size) < share
        now = self.now.draw(rng, batch_size)
        now[dropped] = 0
        modulated = rng.random(batch_size) < self.modulation_share
        phrases = np.empty((batch_size, *PHRASE_SHAPE), dtype=bool)
        for i in range(batch_size):
            source, index = self._pick(rng, bool(dropped[i]))
            drawn = self.sources[source]
            drawn.phrase_into(index, phrases[i])
            if drawn.transpose_semitones:
                transpose_phrase(phrases[i], drawn.transpose_semitones, rng)
            if modulated[i]:
                modulate_phrase(phrases[i], rng)
        return Batch(phrases=phrases, known_mask=known_mask_from_now(now), dropped=dropped)


def synthetic_phrases(n: int, seed: int = 0) -> np.ndarray:
    """A code-made toy corpus ``bool[n, 4, 48, 84, 5]`` for tests, benchmarks and smoke runs.

    Each phrase is a random major key with one diatonic triad per bar, played by all five
    tracks in the styles of a band: block chords on the beats (piano), eighth-note strums
    (guitar), roots on beats 1 and 3 (bass), whole-bar pads (strings), and a rock beat (drums:
    kick 36, snare 38, closed hi-hat 42). About a tenth of the phrases have no piano, so the
    no-condition pool differs from the conditioned one.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((n, *PHRASE_SHAPE), dtype=bool)
    major = np.array([0, 2, 4, 5, 7, 9, 11])
    beat = STEPS_PER_BEAT
    for i in range(n):
        key = int(rng.integers(12))
        degrees = rng.choice(7, size=N_BARS)
        for bar in range(N_BARS):
            d = int(degrees[bar])
            triad = [key + major[(d + k) % 7] + 12 * ((d + k) // 7) for k in (0, 2, 4)]

            cells = out[i, bar]  # [48, 84, 5] view of this bar

            def put(track: int, pitches: list[int], start: int, length: int, cells=cells) -> None:
                for p in pitches:
                    if 0 <= p - LOWEST_PITCH < N_PITCHES:
                        cells[start : start + length, p - LOWEST_PITCH, track] = True

            for b in range(4):  # piano: block chords, one per beat, held 3/4 of it
                put(1, [60 + p for p in triad], b * beat, 9)
            for e in range(8):  # guitar: eighth-note strums
                put(2, [48 + p for p in triad], e * beat // 2, 4)
            for b in (0, 2):  # bass: root on beats 1 and 3
                put(3, [36 + triad[0]], b * beat, 2 * beat - 2)
            put(4, [72 + p for p in triad], 0, STEPS_PER_BAR)  # strings: whole-bar pad
            for e in range(8):  # drums: hi-hat eighths, kick on 1 and 3, snare on 2 and 4
                put(0, [42], e * beat // 2, DRUM_NOTE_STEPS)
            for b, drum in enumerate((36, 38, 36, 38)):
                put(0, [drum], b * beat, DRUM_NOTE_STEPS)
        if rng.random() < 0.1:
            out[i, ..., 1] = False
    return out
