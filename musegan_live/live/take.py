"""``Take``: the notes a session sent, kept as step events and drawn into a song roll.

The session records each generated note's start and end at the step it was sent (velocity 0 =
an end); :meth:`Take.roll` draws them, with the player's own part, into the ``bool[n_steps, 84,
5]`` roll and ``uint8`` velocities of ``Session.take_roll``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from musegan_live.representation import N_PITCHES, N_TRACKS, STEPS_PER_BAR


class Take:
    """Note starts and ends in song steps, per (track, pitch row), in the order they were sent."""

    def __init__(self) -> None:
        #: (step, track, pitch row 0..83, velocity 1..127 for a start or 0 for an end)
        self.events: list[tuple[int, int, int, int]] = []

    def started(self, step: int, track: int, rows: Iterable[int], velocity: int) -> None:
        """Notes of ``track`` at ``rows`` begin at ``step`` with ``velocity``."""
        self.events += [(step, track, row, velocity) for row in rows]

    def ended(self, step: int, track: int, rows: Iterable[int]) -> None:
        """Notes of ``track`` at ``rows`` end before ``step``."""
        self.events += [(step, track, row, 0) for row in rows]

    @property
    def last_step(self) -> int:
        """One past the last step any event touches (a start occupies its step); 0 if none."""
        return max([0] + [step + (1 if velocity else 0) for step, _, _, velocity in self.events])

    def draw(self, roll: np.ndarray, velocity: np.ndarray, end_step: int) -> None:
        """Write every note into ``roll`` / ``velocity`` (``[n_steps, 84, tracks]``); notes still
        open end at ``end_step``. A note lasts at least one step."""
        open_notes: dict[tuple[int, int], tuple[int, int]] = {}

        def close(track: int, row: int, step: int) -> None:
            onset, note_velocity = open_notes.pop((track, row))
            roll[onset : max(step, onset + 1), row, track] = True
            velocity[onset : max(step, onset + 1), row, track] = note_velocity

        for step, track, row, note_velocity in self.events:
            if (track, row) in open_notes:
                close(track, row, step)
            if note_velocity:
                open_notes[(track, row)] = (step, note_velocity)
        for track, row in list(open_notes):
            close(track, row, end_step)

    def roll(
        self,
        player_roll: np.ndarray,
        player_velocity: np.ndarray,
        condition_track: int,
        end_step: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The take as a song: ``bool[n_steps, 84, 5]`` and ``uint8`` velocities, whole bars,
        with the player's ``player_roll`` / ``player_velocity`` (``[steps, 84]``) on
        ``condition_track``. Notes still open end at ``end_step`` (default: the last step)."""
        last_step = max(player_roll.shape[0], self.last_step)
        n_steps = -(-last_step // STEPS_PER_BAR) * STEPS_PER_BAR
        roll = np.zeros((n_steps, N_PITCHES, N_TRACKS), dtype=bool)
        velocity = np.zeros(roll.shape, dtype=np.uint8)
        roll[: player_roll.shape[0], :, condition_track] = player_roll
        velocity[: player_roll.shape[0], :, condition_track] = player_velocity
        self.draw(roll, velocity, last_step if end_step is None else end_step)
        return roll, velocity
