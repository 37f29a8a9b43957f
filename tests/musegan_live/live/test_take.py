"""``Take``: sent note starts and ends drawn into a roll."""

from __future__ import annotations

import numpy as np

from musegan_live.live.take import Take


def draw(take: Take, n_steps: int, end_step: int) -> tuple[np.ndarray, np.ndarray]:
    roll = np.zeros((n_steps, 84, 5), dtype=bool)
    velocity = np.zeros(roll.shape, dtype=np.uint8)
    take.draw(roll, velocity, end_step)
    return roll, velocity


def test_notes_run_from_start_to_end_and_keep_their_velocity() -> None:
    take = Take()
    take.started(2, 3, [10, 14], 90)
    take.ended(6, 3, [10])
    take.started(6, 3, [10], 60)  # struck again where it ended
    take.ended(8, 3, [10, 14])
    roll, velocity = draw(take, 12, end_step=12)
    assert np.flatnonzero(roll[:, 14, 3]).tolist() == [2, 3, 4, 5, 6, 7]
    assert np.flatnonzero(roll[:, 10, 3]).tolist() == [2, 3, 4, 5, 6, 7]
    assert velocity[5, 10, 3] == 90 and velocity[6, 10, 3] == 60
    assert take.last_step == 8 and roll.sum() == 12


def test_a_restruck_open_note_ends_the_first_and_open_notes_end_at_the_end_step() -> None:
    take = Take()
    take.started(0, 0, [5], 100)
    take.started(3, 0, [5], 80)  # no end in between: the first one stops at step 3
    take.started(9, 4, [40], 70)
    take.ended(9, 4, [41])  # an end for a note that never started changes nothing
    roll, velocity = draw(take, 16, end_step=11)
    assert velocity[:3, 5, 0].tolist() == [100, 100, 100]
    assert velocity[3:11, 5, 0].tolist() == [80] * 8 and not roll[11:, 5, 0].any()
    assert np.flatnonzero(roll[:, 40, 4]).tolist() == [9, 10]
    assert not roll[:, 41, 4].any()


def test_a_note_ended_where_it_started_still_lasts_one_step() -> None:
    take = Take()
    take.started(4, 2, [7], 64)
    take.ended(4, 2, [7])
    roll, _ = draw(take, 8, end_step=8)
    assert np.flatnonzero(roll[:, 7, 2]).tolist() == [4]
