"""The player's notes on the step grid: quantization, velocity 0, pedal, channel, dynamics."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from musegan_live.live.player import Player, quantize_step
from musegan_live.representation import DRUM_NOTE_STEPS, LOWEST_PITCH, STEPS_PER_BAR


def on(note: int, velocity: int = 90, channel: int = 0) -> mido.Message:
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def off(note: int, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", note=note, channel=channel)


def pedal(down: bool, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", control=64, value=127 if down else 0, channel=channel)


def notes_of(player: Player, pitch: int, n_steps: int = 2 * STEPS_PER_BAR, now: int | None = None):
    """Steps where ``pitch`` sounds in the player's roll."""
    roll, _ = player.window(0, n_steps, n_steps if now is None else now)
    return np.flatnonzero(roll[:, pitch - LOWEST_PITCH]).tolist()


def running_player(**kwargs) -> Player:
    player = Player(**kwargs)
    player.start(0)
    return player


@pytest.mark.parametrize(
    ("position", "step"),
    [(10.0, 10), (9.6, 10), (9.5, 10), (9.49, 9), (10.4, 10), (-0.3, 0), (47.7, 48)],
)
def test_onsets_go_to_the_nearest_step(position, step):
    assert quantize_step(position) == step


def test_a_note_played_just_before_a_step_belongs_to_it():
    player = running_player()
    player.handle(on(60), 11.8)  # a hair early for the beat at step 12
    player.handle(off(60), 17.9)
    assert notes_of(player, 60) == list(range(12, 18))


def test_velocity_zero_is_a_note_off_and_notes_last_at_least_a_step():
    player = running_player()
    player.handle(on(64), 3.0)
    player.handle(on(64, velocity=0), 7.2)
    player.handle(on(67), 20.0)
    player.handle(off(67), 20.1)  # released at once: still one step
    assert notes_of(player, 64) == [3, 4, 5, 6]
    assert notes_of(player, 67) == [20]


def test_a_repeated_note_on_ends_the_sounding_note_first():
    player = running_player()
    player.handle(on(60), 0.0)
    player.handle(on(60), 6.0)  # no note-off in between
    player.handle(off(60), 9.0)
    roll, _ = player.window(0, 12, 12)
    assert roll[:9, 60 - LOWEST_PITCH].all() and not roll[9:, 60 - LOWEST_PITCH].any()
    assert player.sounding == frozenset()


def test_sustain_pedal_holds_released_notes_until_it_goes_up():
    player = running_player()
    player.handle(pedal(True), 0.0)
    player.handle(on(60), 0.0)
    player.handle(off(60), 4.0)
    assert player.sounding == {60}
    player.handle(on(62), 6.0)
    player.handle(pedal(False), 10.0)  # 60 ends here; 62 is still held by its key
    assert player.sounding == {62}
    player.handle(off(62), 14.0)
    assert notes_of(player, 60) == list(range(0, 10))
    assert notes_of(player, 62) == list(range(6, 14))


def test_replaying_a_pedalled_note_restarts_it():
    player = running_player()
    player.handle(pedal(True), 0.0)
    player.handle(on(60), 0.0)
    player.handle(off(60), 2.0)
    player.handle(on(60), 5.0)
    player.handle(pedal(False), 7.0)
    assert 60 in player.sounding  # the key still holds the new note
    player.handle(off(60), 8.0)
    assert notes_of(player, 60) == list(range(0, 8))
    assert player.sounding == frozenset()


def test_channel_filter():
    player = running_player(channel=2)
    assert not player.handle(on(60, channel=0), 0.0)
    assert player.handle(on(62, channel=2), 0.0)
    assert not player.handle(mido.Message("sysex", data=[1, 2, 3]), 0.0)
    assert not player.handle(mido.Message("clock"), 0.0)
    player.handle(off(62, channel=2), 3.0)
    assert notes_of(player, 60) == [] and notes_of(player, 62) == [0, 1, 2]
    any_channel = running_player(channel=None)
    assert any_channel.handle(on(60, channel=15), 0.0)


def test_held_notes_sound_up_to_now_and_only_heard_steps_are_known():
    player = running_player()
    player.handle(on(60), 2.0)
    player.advance(5)
    roll, known = player.window(0, 12, 5)
    assert roll[:, 60 - LOWEST_PITCH].tolist() == [False] * 2 + [True] * 3 + [False] * 7
    assert known.tolist() == [True] * 5 + [False] * 7
    # a window reaching before the song: those steps are unknown
    _, known = player.window(-STEPS_PER_BAR, 2 * STEPS_PER_BAR, 5)
    assert not known[:STEPS_PER_BAR].any() and known[STEPS_PER_BAR:].sum() == 5


def test_notes_while_stopped_do_not_enter_the_roll_and_held_keys_start_with_the_transport():
    player = Player()
    player.handle(on(60), None)
    player.handle(on(64), None)
    player.handle(off(64), None)
    player.start(0)
    player.advance(4)
    player.handle(off(60), 4.0)
    assert notes_of(player, 60) == [0, 1, 2, 3]
    assert notes_of(player, 64) == []


def test_stop_ends_held_notes_at_the_stop_and_rewind_forgets_what_follows():
    player = running_player()
    player.handle(on(60), 0.0)
    player.handle(on(48), 50.0)
    player.handle(off(48), 60.0)
    player.advance(70)
    player.stop(70)
    assert notes_of(player, 60) == list(range(70))
    player.rewind(48)  # continue from bar 2: what was played there will be played again
    _, known = player.window(0, 96, 96)
    assert known[:48].all() and not known[48:].any()
    assert notes_of(player, 48) == []
    assert notes_of(player, 60, now=48) == list(range(48))  # held through: sounds again from 48
    player.advance(50)
    assert notes_of(player, 60, now=50) == list(range(50))


def test_drum_player_notes_are_short_hits():
    player = running_player(drums=True)
    player.handle(on(36), 0.0)
    player.handle(off(36), 20.0)  # a long press is still one hit
    assert notes_of(player, 36) == list(range(DRUM_NOTE_STEPS))


def test_recent_dynamics_and_out_of_range_notes():
    player = running_player()
    assert player.recent_velocity() is None
    for i, velocity in enumerate([40, 60, 80, 100]):
        player.handle(on(10 + i, velocity), float(i))  # below pitch 24: dynamics only
    assert player.recent_velocity() == 70
    for i in range(8):
        player.handle(on(60 + i, 120), 10.0 + i)
    assert player.recent_velocity() == 120  # only the last 8 notes count
    assert notes_of(player, 10) == []


def test_song_roll_keeps_the_whole_take_with_velocities():
    player = running_player()
    player.handle(on(60, 77), 100.0)
    player.handle(off(60), 110.0)
    player.advance(150)
    roll, velocity = player.song_roll()
    assert roll.shape == (3 * STEPS_PER_BAR, 84)
    assert np.flatnonzero(roll[:, 60 - LOWEST_PITCH]).tolist() == list(range(100, 110))
    assert set(velocity[100:110, 60 - LOWEST_PITCH]) == {77}


def test_bars_far_behind_the_clock_are_forgotten_when_not_recording():
    player = running_player(keep_bars=2)
    player.handle(on(60), 0.0)
    player.handle(off(60), 4.0)
    player.advance(10 * STEPS_PER_BAR)
    assert player.song_roll()[0].sum() == 0
