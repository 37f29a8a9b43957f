"""``Take``: the notes a session sent, kept as step events and drawn into a song roll.

The session records each generated note's start and end at the step it was sent (velocity 0 =
an end); :meth:`Take.draw` turns them into the ``bool[n_steps, 84, 5]`` roll and ``uint8``
velocities of ``Session.recording`` (the player's own part comes from the player's roll).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


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
