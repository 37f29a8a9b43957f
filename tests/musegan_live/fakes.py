"""Test doubles for the live path: a deterministic accompanist and hand-driven planners.

``RuleAccompanist`` duck-types ``musegan_live.model.inference.Accompanist`` with rules simple enough
for a test to predict every note (output columns follow ``output_tracks`` = Drums, Guitar,
Bass, Strings when the player plays Piano):

- Drums: a kick (MIDI 36) on every beat, held ``DRUM_NOTE_STEPS`` steps as in LPD-5.
- Guitar: the chord of the last heard condition step, on every step (nothing before any).
- Bass: the lowest pitch of that chord an octave down, on every step.
- Strings: one pitch chosen by ``z`` (``48 + argmax(z[:12])``), held all phrase long, so a
  changed ``z`` is audible.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from musegan_live.live.planner import Planner, PlanRequest, PlanResult, run_request
from musegan_live.representation import (
    DRUM_NOTE_STEPS,
    LOWEST_PITCH,
    N_BARS,
    N_PITCHES,
    PIANO,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    TRACK_NAMES,
    other_tracks,
)

KICK = 36


def strings_pitch(z: np.ndarray) -> int:
    """The MIDI pitch the strings hold for latent ``z`` (``float32[latent]``)."""
    return 48 + int(np.argmax(np.asarray(z).reshape(-1)[:12]))


class RuleAccompanist:
    """A stand-in model with the rules in the module docstring; records every call."""

    def __init__(self, condition_track: int = PIANO, latent_dim: int = 16) -> None:
        self.condition_track = condition_track
        self.output_tracks = other_tracks(condition_track)
        self.latent_dim = latent_dim
        self.threshold = 0.5
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        #: the carry-in of every live plan (plan_last_bar), in order
        self.sounding_before: list[np.ndarray | None] = []

    def sample_z(self, rng: np.random.Generator, batch: int = 1) -> np.ndarray:
        return rng.standard_normal((batch, self.latent_dim), dtype=np.float32)

    def probabilities(self, condition, known_mask, z) -> np.ndarray:
        condition = np.asarray(condition) > 0.5
        known_mask = np.asarray(known_mask) > 0.5
        z = np.asarray(z)
        batch = condition.shape[0]
        self.calls.append((condition.copy(), known_mask.copy(), z.copy()))
        out = np.zeros((batch, N_BARS, STEPS_PER_BAR, N_PITCHES, 4), dtype=np.float32)
        for b in range(batch):
            heard = (condition[b] & known_mask[b][..., None]).reshape(-1, N_PITCHES)
            known_steps = np.flatnonzero(known_mask[b].reshape(-1))
            chord = heard[known_steps[-1]] if len(known_steps) else np.zeros(N_PITCHES, bool)
            for beat in range(4):
                start = beat * STEPS_PER_BEAT
                out[b, :, start : start + DRUM_NOTE_STEPS, KICK - LOWEST_PITCH, 0] = 1.0
            out[b, :, :, :, 1] = chord
            if chord.any():
                low = int(np.flatnonzero(chord)[0]) - 12
                if low >= 0:
                    out[b, :, :, low, 2] = 1.0
            out[b, :, :, strings_pitch(z[b]) - LOWEST_PITCH, 3] = 1.0
        return out

    def accompany(self, condition, known_mask, z, threshold=None, density=None) -> np.ndarray:
        limit = self.threshold if threshold is None else threshold
        names = [TRACK_NAMES[t] for t in self.output_tracks]
        limits = np.array([limit ** (density or {}).get(name, 1.0) for name in names])
        return self.probabilities(condition, known_mask, z) >= limits

    def plan_last_bar(self, condition, known_mask, z, threshold=None, density=None,
                      sounding_before=None) -> np.ndarray:
        self.sounding_before.append(sounding_before)
        return self.accompany(condition, known_mask, z, threshold, density)[0, -1]

    def warm_up(self, runs: int = 3) -> None:
        return None


class DenseAccompanist(RuleAccompanist):
    """Many notes that change every step (from a hash of the inputs), at most
    ``MAX_NOTES_PER_STEP`` per track and step: a stress test."""

    MAX_NOTES_PER_STEP = 8

    def probabilities(self, condition, known_mask, z) -> np.ndarray:
        seed = int(abs(float(np.asarray(z).sum())) * 1000) + int(np.asarray(known_mask).sum())
        rng = np.random.default_rng(seed)
        shape = (np.asarray(condition).shape[0], N_BARS, STEPS_PER_BAR, N_PITCHES, 4)
        notes = rng.random(shape) < 0.06
        notes &= np.cumsum(notes, axis=-2) <= self.MAX_NOTES_PER_STEP
        return notes.astype(np.float32)


class ManualPlanner(Planner):
    """Runs requests only when the test says so: ``finish(n)`` completes the oldest ``n``."""

    def __init__(self) -> None:
        self.queue: deque[PlanRequest] = deque()
        self._done: list[PlanResult] = []

    def submit(self, request: PlanRequest) -> None:
        self.queue.append(request)

    def finish(self, n: int | None = None) -> list[PlanRequest]:
        finished = []
        while self.queue and (n is None or len(finished) < n):
            request = self.queue.popleft()
            self._done.append(run_request(request))
            finished.append(request)
        return finished

    def poll(self, timeout_seconds: float = 0.0) -> list[PlanResult]:
        done, self._done = self._done, []
        return done


class DelayedPlanner(Planner):
    """Each result comes back after ``delays`` polls (cycled): some plans arrive late."""

    def __init__(self, delays: list[int]) -> None:
        self._delays = delays
        self._count = 0
        self._waiting: list[list] = []

    def submit(self, request: PlanRequest) -> None:
        delay = self._delays[self._count % len(self._delays)]
        self._count += 1
        self._waiting.append([delay, run_request(request)])

    def poll(self, timeout_seconds: float = 0.0) -> list[PlanResult]:
        ready = [item[1] for item in self._waiting if item[0] <= 0]
        self._waiting = [item for item in self._waiting if item[0] > 0]
        for item in self._waiting:
            item[0] -= 1
        return ready


class Receiver:
    """A synth's view of the output: applies messages in send order (due time, then the order
    they were produced, as the daemon's sender does) and tracks sounding notes. It ignores
    CC123 on purpose, so every note must get its own note-off."""

    def __init__(self) -> None:
        self.sounding: set[tuple[int, int, int]] = set()
        self.double_note_ons = 0
        self.orphan_note_offs = 0
        self.messages = 0

    def play(self, outgoing: list) -> None:
        order = sorted(range(len(outgoing)), key=lambda i: (outgoing[i].due_seconds, i))
        for i in order:
            self.apply(outgoing[i].port_index, outgoing[i].message)

    def apply(self, port: int, message) -> None:
        self.messages += 1
        if message.type == "note_on" and message.velocity > 0:
            key = (port, message.channel, message.note)
            if key in self.sounding:
                self.double_note_ons += 1
            self.sounding.add(key)
        elif message.type in ("note_on", "note_off"):
            key = (port, message.channel, message.note)
            if key not in self.sounding:
                self.orphan_note_offs += 1
            self.sounding.discard(key)
