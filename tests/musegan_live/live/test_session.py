"""Session: clock events + the player's notes in, timed MIDI out (all on injected time)."""

from __future__ import annotations

import math
import threading

import mido
import numpy as np
import pytest

from musegan_live.clock.follower import ClockEvent
from musegan_live.config.live import load_config
from musegan_live.errors import ConfigError
from musegan_live.live.planner import InlinePlanner, ThreadedPlanner
from musegan_live.live.session import Session
from musegan_live.representation import (
    GUITAR,
    LOWEST_PITCH,
    PIANO,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    TICKS_PER_BAR,
    TICKS_PER_BEAT,
    bar_beat,
)
from tests.musegan_live.fakes import KICK, DelayedPlanner, Receiver, RuleAccompanist

BPM = 120.0
SPT = 60.0 / (BPM * TICKS_PER_BEAT)  # seconds per tick
STEP = 2 * SPT


class Rig:
    """A session on a simulated clock that keeps everything it sent."""

    def __init__(self, overrides=None, planner=None, model=None, now=None, keep_take=True):
        self.config = load_config(None, {"seed": "5", **(overrides or {})})
        self.model = model or RuleAccompanist()
        self.session = Session(
            self.config,
            self.model,
            planner=planner or InlinePlanner(),
            now=now,
            keep_take=keep_take,
        )
        self.out = list(self.session.start_messages())
        self.position = 0
        self.time = 0.0
        self.spt = SPT

    def event(self, kind, position=None):
        position = self.position if position is None else position
        sent = self.session.handle_clock(ClockEvent(kind, position, self.time, self.spt))
        self.out += sent
        return sent

    def start(self):
        self.position = 0
        return self.event("start", 0)

    def ticks(self, n):
        sent = []
        for _ in range(n):
            sent += self.event("tick")
            self.position += 1
            self.time += self.spt
        return sent

    def play(self, message, at_ticks=None):
        when = self.time if at_ticks is None else at_ticks * self.spt
        sent = self.session.handle_player(message, when)
        self.out += sent
        return sent


def note_ons(outgoing, channel=None, note=None):
    return [
        o
        for o in outgoing
        if o.message.type == "note_on"
        and o.message.velocity > 0
        and (channel is None or o.message.channel == channel)
        and (note is None or o.message.note == note)
    ]


def note_offs(outgoing, channel=None, note=None):
    return [
        o
        for o in outgoing
        if o.message.type == "note_off"
        and (channel is None or o.message.channel == channel)
        and (note is None or o.message.note == note)
    ]


def test_start_messages_are_the_programs_of_the_four_tracks():
    rig = Rig()
    programs = {(o.message.channel, o.message.program) for o in rig.out}
    assert programs == {(9, 0), (1, 25), (2, 33), (3, 48)}


def test_the_first_downbeat_sounds_at_its_tick_with_a_fresh_phrase():
    rig = Rig()
    rig.start()
    sent = rig.ticks(1)
    kicks = note_ons(sent, channel=9, note=KICK)
    assert len(kicks) == 1 and kicks[0].due_seconds == 0.0
    assert bar_beat(rig.session.stats.position_ticks) == "1:1"
    # the sender may send it at most one tick (half a step) late at this tempo
    assert kicks[0].late_limit_seconds == pytest.approx(SPT)


def test_player_notes_map_to_steps_through_the_tick_times():
    rig = Rig()
    rig.start()
    rig.ticks(23)  # the last tick seen is tick 22 (step 11)
    rig.play(mido.Message("note_on", note=60, velocity=80), at_ticks=23.6)  # 11.8 steps
    rig.ticks(13)  # the last tick seen is 35
    rig.play(mido.Message("note_off", note=60), at_ticks=35.9)  # step 17.95 -> ends at 18
    roll, _ = rig.session.player.window(0, 48, 48)
    assert np.flatnonzero(roll[:, 60 - LOWEST_PITCH]).tolist() == list(range(12, 18))


def test_the_accompaniment_follows_the_player_within_a_step():
    rig = Rig()
    rig.start()
    rig.ticks(2)
    rig.play(mido.Message("note_on", note=64, velocity=80))  # at tick 1: step 0.5 -> 1
    rig.ticks(TICKS_PER_BAR)
    guitar = note_ons(rig.out, channel=1, note=64)
    # heard once the clock passed step 1; the plan made then applies from step 2
    # (yesterday: from beat 3, step 24, after the plan of beat 2)
    assert [o.due_seconds for o in guitar] == [pytest.approx(2 * STEP)]
    assert guitar[0].message.velocity == 80  # 'follow' the player's dynamics


def test_notes_a_new_plan_drops_end_at_the_step_the_plan_takes_effect():
    rig = Rig()
    rig.start()
    rig.ticks(2)
    rig.play(mido.Message("note_on", note=64, velocity=80))
    rig.ticks(30 * 2)  # to step 30
    rig.play(mido.Message("note_off", note=64))  # at tick 61: step 30.5 -> ends at 31
    rig.ticks(TICKS_PER_BAR)
    (off,) = note_offs(rig.out, channel=1, note=64)
    # heard once the clock passed step 31: the plan made at 32 takes effect at 32
    assert off.due_seconds == pytest.approx(32 * STEP)
    synth = Receiver()
    synth.play(rig.out)
    assert (0, 1, 64) not in synth.sounding


def test_stop_ends_every_note_and_nothing_sounds_until_start():
    rig = Rig({"input.thru": "true"})
    rig.start()
    rig.ticks(4)
    rig.play(mido.Message("note_on", note=60, velocity=90))  # forwarded by thru
    rig.ticks(60)
    stop = rig.event("stop")
    kinds = [o.message.type for o in stop]
    first_control = kinds.index("control_change")
    assert set(kinds[:first_control]) == {"note_off"} and "note_off" not in kinds[first_control:]
    assert {(o.message.control, o.message.value) for o in stop[first_control:]} == {
        (123, 0),
        (64, 0),
    }
    assert {o.message.channel for o in stop[first_control:]} == {0, 1, 2, 3, 9}
    synth = Receiver()
    synth.play(rig.out)
    assert synth.sounding == set()
    # ticks while stopped (a master that keeps clocking) and playing make no accompaniment
    after = rig.ticks(200)
    after += rig.play(mido.Message("note_on", note=62, velocity=90))
    assert not note_ons(after, channel=9) and not note_ons(after, channel=1)
    assert note_ons(after, channel=0)  # thru still forwards the player's own notes
    assert rig.session.stats.running is False


def test_thru_only_forwards_the_chosen_input_channel():
    rig = Rig({"input.thru": "true", "input.channel": "2"})
    assert rig.play(mido.Message("note_on", note=60, velocity=90, channel=0)) == []
    (sent,) = rig.play(mido.Message("note_on", note=60, velocity=90, channel=1))
    assert sent.message.channel == 0  # the Piano track's channel 1


def test_thru_uses_the_players_track_channel_and_ends_its_notes_on_stop():
    rig = Rig({"input.thru": "true", "tracks.Piano.channel": "6"})
    rig.start()
    sent = rig.play(mido.Message("note_on", note=60, velocity=90, channel=3))
    assert [(o.message.channel, o.message.note) for o in sent] == [(5, 60)]
    # the player's own notes are never dropped as late
    assert all(o.late_limit_seconds == math.inf for o in sent)
    bend = rig.play(mido.Message("pitchwheel", pitch=300, channel=3))
    assert [(o.message.type, o.message.channel, o.message.pitch) for o in bend] == [
        ("pitchwheel", 5, 300)
    ]
    assert rig.play(mido.Message("sysex", data=[1, 2])) == []
    stop = rig.event("stop")
    assert [(o.message.channel, o.message.note) for o in note_offs(stop, channel=5)] == [(5, 60)]


def test_a_jump_panics_and_music_resumes_within_a_beat():
    rig = Rig()
    rig.start()
    rig.ticks(TICKS_PER_BAR + 10)
    target = 4 * TICKS_PER_BAR + 6 * 5  # SPP 69: bar 5, 5 sixteenths in
    jump = rig.event("jump", target)
    assert note_offs(jump, channel=3)  # the strings were holding a note
    assert rig.session.ledger.open_notes == frozenset()
    rig.position = target
    jumped_at = rig.time
    sent = rig.ticks(TICKS_PER_BEAT)
    kicks = note_ons(sent, channel=9, note=KICK)
    # the next kick of the new bar is on its beat 3 (tick 48), 18 ticks after the jump
    assert [o.due_seconds for o in kicks] == [pytest.approx(jumped_at + 18 * SPT)]
    # the strings (a held note) sound again from the very first tick after the jump
    (strings,) = note_ons(sent, channel=3)
    assert strings.due_seconds == pytest.approx(jumped_at)
    assert bar_beat(rig.session.stats.position_ticks) == "5:3"


def test_continue_from_elsewhere_resyncs_at_once():
    rig = Rig()
    rig.start()
    rig.ticks(30)
    rig.event("stop")
    rig.event("jump", 2 * TICKS_PER_BAR)
    rig.position = 2 * TICKS_PER_BAR
    rig.event("continue")
    sent = rig.ticks(1)
    assert note_ons(sent, channel=9, note=KICK)  # the downbeat of bar 3 is played


def test_ticks_without_start_join_in_and_a_skip_backwards_is_a_jump():
    rig = Rig()
    rig.position = 3 * TICKS_PER_BAR  # the daemon started while the DAW was playing
    sent = rig.ticks(TICKS_PER_BEAT)
    assert note_ons(sent, channel=9)
    rig.position = TICKS_PER_BAR  # a loop without a Song Position Pointer
    sent = rig.ticks(4)
    assert note_offs(sent, channel=3)  # a panic: the held strings note ends
    assert rig.session.stats.position_ticks == TICKS_PER_BAR + 3
    synth = Receiver()
    synth.play(rig.out + rig.event("stop"))
    assert synth.sounding == set() and synth.double_note_ons == 0


def test_latency_offsets_move_due_times_and_negative_ones_send_a_step_early():
    rig = Rig({"tracks.Drums.latency_ms": "30", "tracks.Strings.latency_ms": "-10"})
    rig.start()
    rig.ticks(2 * TICKS_PER_BEAT + 1)
    kicks = note_ons(rig.out, channel=9, note=KICK)
    assert [o.due_seconds for o in kicks] == pytest.approx([0.03, 0.53, 1.03])
    (strings,) = note_ons(rig.out, channel=3)  # held all phrase long: one note-on, at step 0
    assert strings.due_seconds == pytest.approx(-0.010)
    # a too-large negative offset is limited to one step: the beat-2 kick is sent at the tick
    # of the step before it, due one step early
    rig2 = Rig({"tracks.Drums.latency_ms": "-500"})
    rig2.start()
    sent = rig2.ticks(TICKS_PER_BEAT - 2)
    assert not [o for o in note_ons(sent, channel=9) if o.due_seconds > 0.1]
    (kick,) = note_ons(rig2.ticks(1), channel=9)  # tick 22 = step 11
    assert kick.due_seconds == pytest.approx(0.5 - STEP)


def test_steps_produced_late_lose_their_note_ons_but_not_their_note_offs():
    lag = [0.0]
    rig = Rig(now=lambda: rig.time + lag[0])
    rig.start()
    rig.ticks(4)
    assert note_ons(rig.out, channel=9)
    lag[0] = 0.25  # the timing thread fell a quarter second behind (6 steps)
    sent = rig.ticks(TICKS_PER_BEAT + 4)
    assert not note_ons(sent)
    assert note_offs(sent, channel=9)  # the kick from step 0 still ends
    assert rig.session.stats.late_messages >= 1
    lag[0] = 0.0
    assert note_ons(rig.ticks(TICKS_PER_BEAT), channel=9)


def test_plans_that_come_back_late_are_counted_and_music_goes_on():
    rig = Rig(planner=DelayedPlanner([0, 200, 0, 200]))
    rig.start()
    rig.ticks(3 * TICKS_PER_BAR)
    stats = rig.session.stats
    assert stats.late_plans > 0 and stats.plans_made > 0
    assert len(note_ons(rig.out, channel=9, note=KICK)) == 12  # every beat still has its kick


def test_stats_report_position_and_tempo():
    rig = Rig()
    rig.spt = 60.0 / (90 * TICKS_PER_BEAT)
    rig.start()
    rig.ticks(TICKS_PER_BAR + 2 * TICKS_PER_BEAT + 5)
    stats = rig.session.stats
    assert bar_beat(stats.position_ticks) == "2:3"
    assert stats.bpm == pytest.approx(90.0)
    assert stats.plans_made == 1 + 7  # the opening + one per beat started (steps 0..72)
    assert stats.last_inference_ms is not None


def test_the_model_must_accompany_the_players_track():
    with pytest.raises(ConfigError, match="input.track is Piano but the model accompanies Guitar"):
        Rig(model=RuleAccompanist(condition_track=GUITAR))
    rig = Rig(
        {"input.track": "Guitar", "tracks.Guitar.channel": "9"},
        model=RuleAccompanist(condition_track=GUITAR),
    )
    assert [slot.track for slot in rig.session.slots] == [0, PIANO, 3, 4]


def test_changing_the_model_ends_notes_and_plans_with_the_new_one():
    rig = Rig()
    rig.start()
    rig.ticks(TICKS_PER_BAR)
    new_model = RuleAccompanist()
    sent = rig.session.change_model(new_model)
    assert rig.session.ledger.open_notes == frozenset()
    assert any(o.message.type == "control_change" for o in sent)
    rig.ticks(TICKS_PER_BEAT * 2)
    assert new_model.calls


def test_recording_holds_what_was_sent():
    rig = Rig()
    rig.start()
    rig.ticks(2)
    rig.play(mido.Message("note_on", note=64, velocity=80))
    rig.ticks(2 * TICKS_PER_BAR - 2)
    rig.play(mido.Message("note_off", note=64))
    rig.event("stop")
    roll, velocity = rig.session.take_roll()
    assert roll.shape == (2 * STEPS_PER_BAR, 84, 5)
    guitar = np.flatnonzero(roll[:, 64 - LOWEST_PITCH, GUITAR]).tolist()
    on = note_ons(rig.out, channel=1, note=64)[0].due_seconds
    assert guitar[0] == round(on / STEP) and guitar[-1] == 2 * STEPS_PER_BAR - 1
    assert set(velocity[guitar, 64 - LOWEST_PITCH, GUITAR]) == {80}
    assert np.flatnonzero(roll[:, 64 - LOWEST_PITCH, PIANO]).tolist()[0] == 1
    kicks = roll[:, KICK - LOWEST_PITCH, 0]
    assert kicks.sum() == 8 * 3 and all(kicks[s] for s in range(0, 96, STEPS_PER_BEAT))


def test_wait_ready_puts_the_first_downbeat_on_time_with_a_worker_thread():
    rig = Rig(planner=ThreadedPlanner())
    try:
        assert rig.session.wait_ready(5.0)
        rig.start()  # an internal clock: Start and the first tick at the same instant
        assert note_ons(rig.ticks(1), channel=9, note=KICK)
        assert rig.session.stats.late_plans == 0
    finally:
        rig.session.close()


def test_wait_ready_gives_up_after_its_timeout():
    class Stuck(RuleAccompanist):
        def accompany(self, *args, **kwargs):
            release.wait(10.0)
            return super().accompany(*args, **kwargs)

    release = threading.Event()
    rig = Rig(planner=ThreadedPlanner(), model=Stuck())
    try:
        assert rig.session.wait_ready(0.05) is False
    finally:
        release.set()
        rig.session.close()
