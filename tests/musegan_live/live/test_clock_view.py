"""The session's view of the clock: the last tick and the tempo."""

import pytest

from musegan_live.live.clock_view import ClockView


def test_positions_between_ticks_are_placed_by_the_tempo_and_clamped():
    clock = ClockView(0.02)
    assert clock.step_position_at(1.0) is None and clock.next_step() is None
    clock.heard_tick(10, 1.0)
    assert clock.step_position_at(1.01) == pytest.approx(5.25)  # half a tick after tick 10
    assert clock.step_position_at(9.0) == pytest.approx(6.0)  # at most a step past the tick
    assert clock.step_position_at(-9.0) == pytest.approx(-7.0)  # at most a beat before it
    assert clock.next_step() == 6
    clock.expect_tick(0, 2.0)  # Start: tick 0 comes next, one tick after "tick -1"
    assert (clock.last_tick, clock.last_tick_seconds) == (-1, pytest.approx(1.98))
    clock.hear_tempo(0.0)  # no estimate: keep the tempo
    assert clock.seconds_per_step == pytest.approx(0.04) and clock.bpm == pytest.approx(125.0)
