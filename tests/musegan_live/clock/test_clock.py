"""MIDI clock following and the internal clock, on injected time (one real-time thread test)."""

from __future__ import annotations

import queue
import random
import time

import mido
import numpy as np
import pytest

from musegan_live.clock.follower import ClockEvent, MidiClockFollower
from musegan_live.clock.internal import InternalClock, InternalClockThread, clock_event_to_midi
from musegan_live.clock.tempo import TempoEstimator, seconds_per_tick_for_bpm
from musegan_live.errors import ClockError

TICK = [0xF8]
START = [0xFA]
CONTINUE = [0xFB]
STOP = [0xFC]
SPT_120 = seconds_per_tick_for_bpm(120.0)  # 1/48 s


def spp(position_16ths: int) -> list[int]:
    return [0xF2, position_16ths & 0x7F, position_16ths >> 7]


def feed_ticks(follower: MidiClockFollower, n: int, t0: float, spt: float = SPT_120):
    events: list[ClockEvent] = []
    for i in range(n):
        events += follower.feed(TICK, t0 + i * spt)
    return events, t0 + n * spt


def test_start_then_ticks_count_from_zero():
    f = MidiClockFollower()
    assert f.feed(START, 1.0) == [ClockEvent("start", 0, 1.0, SPT_120)]
    events, _ = feed_ticks(f, 100, 1.0)
    assert [e.kind for e in events] == ["tick"] * 100
    assert [e.position_ticks for e in events] == list(range(100))
    assert events[96].time_seconds == pytest.approx(1.0 + 96 * SPT_120)  # bar 2 downbeat
    assert f.position_ticks == 100


def test_ticks_before_start_move_nothing_but_set_the_tempo():
    f = MidiClockFollower(initial_bpm=90.0)
    events, t = feed_ticks(f, 30, 0.0)
    assert events == []
    assert f.position_ticks == 0
    assert f.tempo.bpm == pytest.approx(120.0, rel=1e-6)  # learnt while stopped
    assert f.feed(START, t)[0].seconds_per_tick == pytest.approx(SPT_120)


def test_stop_freezes_and_continue_resumes_position():
    f = MidiClockFollower()
    f.feed(START, 0.0)
    _, t = feed_ticks(f, 50, 0.0)
    assert f.feed(STOP, t) == [ClockEvent("stop", 50, t, pytest.approx(SPT_120))]
    # Ticks while stopped: no events, no movement.
    events, t = feed_ticks(f, 10, t + 0.1)
    assert events == []
    assert f.feed(STOP, t) == []  # a second Stop changes nothing
    assert [e.kind for e in f.feed(CONTINUE, t)] == ["continue"]
    assert f.feed(CONTINUE, t) == []  # already running
    events, t = feed_ticks(f, 3, t)
    assert [e.position_ticks for e in events] == [50, 51, 52]
    # Start always goes back to the top.
    assert f.feed(START, t)[0].position_ticks == 0
    events, _ = feed_ticks(f, 1, t)
    assert events[0].position_ticks == 0


@pytest.mark.parametrize("position_16ths", [0, 5, 16, 200, 16383])
def test_song_position_pointer_is_six_ticks_per_unit(position_16ths):
    f = MidiClockFollower()
    f.feed(START, 0.0)
    feed_ticks(f, 10, 0.0)
    f.feed(STOP, 1.0)
    (jump,) = f.feed(spp(position_16ths), 1.1)
    assert jump.kind == "jump"
    assert jump.position_ticks == 6 * position_16ths
    (cont,) = f.feed(CONTINUE, 1.2)
    assert cont.position_ticks == 6 * position_16ths
    events, _ = feed_ticks(f, 2, 1.3)
    assert [e.position_ticks for e in events] == [6 * position_16ths, 6 * position_16ths + 1]


def test_song_position_while_running_jumps_in_place():
    f = MidiClockFollower()
    f.feed(START, 0.0)
    feed_ticks(f, 10, 0.0)
    (jump,) = f.feed(mido.Message("songpos", pos=32), 0.5)  # mido messages work too
    assert (jump.kind, jump.position_ticks) == ("jump", 192)
    events, _ = feed_ticks(f, 1, 0.5)
    assert events[0].position_ticks == 192


def test_non_clock_messages_are_ignored():
    f = MidiClockFollower()
    assert f.feed([0x90, 60, 100], 0.0) == []
    assert f.feed(mido.Message("note_on", note=60), 0.0) == []
    assert f.feed([], 0.0) == []
    assert f.feed([0xF2, 1], 0.0) == []  # truncated SPP


def _jittered_ticks(f, n, t0, spt, jitter, rng):
    """Feed n ticks with each timestamp moved by up to +-jitter * spt; return bpm after each."""
    bpms = []
    for i in range(n):
        f.feed(TICK, t0 + i * spt + rng.uniform(-jitter, jitter) * spt)
        bpms.append(f.tempo.bpm)
    return bpms, t0 + n * spt


@pytest.mark.parametrize("seed", range(5))
def test_tempo_estimate_under_20_percent_jitter(seed):
    rng = random.Random(seed)
    f = MidiClockFollower(initial_bpm=100.0)
    f.feed(START, 0.0)
    bpms, _ = _jittered_ticks(f, 400, 0.0, SPT_120, 0.20, rng)
    # After one window the estimate stays within 3 % although single intervals vary by 40 %.
    assert max(abs(b - 120.0) for b in bpms[48:]) < 0.03 * 120.0


@pytest.mark.parametrize("jitter", [0.0, 0.05])
def test_tempo_jump_120_to_180_is_followed_within_a_beat(jitter):
    rng = random.Random(7)
    f = MidiClockFollower()
    f.feed(START, 0.0)
    _, t = _jittered_ticks(f, 96, 0.0, SPT_120, jitter, rng)
    assert f.tempo.bpm == pytest.approx(120.0, rel=0.01)
    bpms, _ = _jittered_ticks(f, 48, t, seconds_per_tick_for_bpm(180.0), jitter, rng)
    tolerance = 0.01 + jitter / 4
    assert abs(bpms[23] - 180.0) < tolerance * 180.0  # within 24 ticks
    assert max(abs(b - 180.0) for b in bpms[23:]) < tolerance * 180.0


def test_tempo_slowdown_is_followed_too():
    f = MidiClockFollower()
    f.feed(START, 0.0)
    _, t = feed_ticks(f, 96, 0.0)
    feed_ticks(f, 24, t, seconds_per_tick_for_bpm(80.0))
    assert f.tempo.bpm == pytest.approx(80.0, rel=0.01)


def test_lost_ticks_are_counted_from_the_timing():
    f = MidiClockFollower()
    f.feed(START, 0.0)
    events = []
    dropped = {5, 16, 27, 40, 41, 60, 61, 83, 100, 131, 132, 170, 205, 206, 250}  # 1 or 2
    arrived = [i for i in range(300) if i not in dropped]
    for i in arrived:
        events += f.feed(TICK, i * SPT_120)
    assert [e.position_ticks for e in events] == list(range(300))
    assert f.missed_ticks == 300 - len(arrived)
    synthesized = [e for e in events if e.position_ticks not in set(arrived)]
    for e in synthesized:  # stamped with the time the tick should have had
        assert e.time_seconds == pytest.approx(e.position_ticks * SPT_120)
    assert f.tempo.bpm == pytest.approx(120.0, rel=1e-6)


@pytest.mark.parametrize("slower_bpm", [80.0, 60.0, 45.0])
def test_a_sudden_slowdown_is_not_taken_for_lost_ticks(slower_bpm):
    f = MidiClockFollower()
    f.feed(START, 0.0)
    events, t = feed_ticks(f, 96, 0.0)
    more, _ = feed_ticks(f, 48, t, seconds_per_tick_for_bpm(slower_bpm))
    events += more
    assert f.missed_ticks == 0
    assert len(events) >= 96 + 48 - 1  # the last one may be held, waiting for the next
    assert [e.position_ticks for e in events] == list(range(len(events)))
    assert f.tempo.bpm == pytest.approx(slower_bpm, rel=0.01)


def test_ticks_delayed_together_are_not_taken_for_lost_ones():
    f = MidiClockFollower()
    f.feed(START, 0.0)
    events, t = feed_ticks(f, 48, 0.0)
    # Tick 48 is held up for a whole interval and arrives just before tick 49 (a busy
    # machine delivering two at once): a long gap, then a tiny one. Nothing was lost.
    events += f.feed(TICK, t + SPT_120 * 0.98)
    events += f.feed(TICK, t + SPT_120)
    more, _ = feed_ticks(f, 10, t + 2 * SPT_120)
    events += more
    assert f.missed_ticks == 0
    assert [e.position_ticks for e in events] == list(range(48 + 2 + 10))


def test_a_lost_tick_is_found_even_when_the_next_two_arrive_together():
    f = MidiClockFollower()
    f.feed(START, 0.0)
    events, t = feed_ticks(f, 48, 0.0)
    # Tick 48 is lost; tick 49 is held up and arrives just before tick 50; tick 51 on time
    # says how many should have come.
    events += f.feed(TICK, t + SPT_120 * 1.97)
    events += f.feed(TICK, t + SPT_120 * 2.0)
    events += f.feed(TICK, t + SPT_120 * 3.0)
    assert f.missed_ticks == 1
    assert [e.position_ticks for e in events] == list(range(52))
    # the burst was counted as it came; the lost tick is found when the clock is on time again
    assert [e.time_seconds for e in events[48:50]] == [t + SPT_120 * 1.97, t + SPT_120 * 2.0]
    assert t + SPT_120 * 2.0 < events[50].time_seconds < t + SPT_120 * 3.0


@pytest.mark.parametrize("burst", [2, 3, 5, 12])
def test_a_burst_of_ticks_an_xrun_delayed_is_counted_once(burst):
    f = MidiClockFollower()
    f.feed(START, 0.0)
    events, t = feed_ticks(f, 48, 0.0)
    # Ticks 48 .. 48+burst-1 are held up by an xrun and arrive together, just before the
    # next one, on time again.
    late = t + (burst - 0.4) * SPT_120
    for k in range(burst):
        events += f.feed(TICK, late + k * 1e-5)
    more, _ = feed_ticks(f, 10, t + burst * SPT_120)
    events += more
    assert f.missed_ticks == 0
    assert [e.position_ticks for e in events] == list(range(48 + burst + 10))


@pytest.mark.parametrize("seed", range(4))
def test_xruns_that_lose_or_delay_ticks_leave_the_position_right(seed):
    # 200 BPM for 4 minutes; about 1 % of ticks start an xrun of 5-40 ms whose ticks are either
    # lost or delivered together at its end; other ticks arrive on a 64-frame period grid.
    rng = random.Random(seed)
    spt = seconds_per_tick_for_bpm(200.0)
    period = 64 / 48000
    f = MidiClockFollower(initial_bpm=200.0)
    f.feed(START, 0.0)
    n, i, arrivals, calm = 24 * 200 * 4, 0, [], False
    while i < n:
        t = 1.0 + i * spt
        if not calm and rng.random() < 0.01:
            window = rng.uniform(0.005, 0.04)
            first = i
            while i < n and 1.0 + i * spt < t + window:
                i += 1
            if rng.random() < 0.5:  # delayed, not lost
                arrivals += [t + window + (k - first) * 1e-5 for k in range(first, i)]
            calm = True  # at least one tick on time between two xruns
            continue
        calm = False
        arrivals.append((int(t / period) + 1) * period + rng.uniform(0, 2e-4))
        i += 1
    for arrival in sorted(arrivals):
        f.feed(TICK, arrival)
    assert n - len(arrivals) > 100  # ticks were lost
    # A tick about half an interval late sits between "on time" and "held": a few such ticks
    # over the run can still be miscounted (counting every burst as lost ticks was off by 60+).
    assert abs(f.position_ticks - n) <= 3


def test_losses_one_after_another_are_all_counted():
    f = MidiClockFollower()
    f.feed(START, 0.0)
    events = []
    arrived = [i for i in range(80) if i not in (48, 50, 53, 54)]  # lost in a row of xruns
    for i in arrived:
        events += f.feed(TICK, i * SPT_120)
    assert f.missed_ticks == 4
    assert [e.position_ticks for e in events] == list(range(80))


@pytest.mark.parametrize("seed", range(5))
def test_lost_ticks_under_20_percent_jitter(seed):
    # jack_midi_clock -J 20: each interval 0.8..1.2 of the tempo's; some ticks lost on top.
    # (Single ticks: two in a row, jittered, can look like one; see the docstring.)
    rng = random.Random(seed)
    f = MidiClockFollower()
    f.feed(START, 0.0)
    t, events, lost, previous_lost = 0.0, [], 0, False
    for i in range(2000):
        t += SPT_120 * rng.uniform(0.8, 1.2)
        if i > 50 and not previous_lost and rng.random() < 0.03:
            lost += 1
            previous_lost = True
            continue
        previous_lost = False
        events += f.feed(TICK, t)
    events += f.feed(TICK, t + SPT_120)  # releases a tick held at the very end
    assert lost > 30
    assert f.missed_ticks == lost
    assert [e.position_ticks for e in events] == list(range(2001))


def test_a_held_tick_is_released_by_a_transport_message_or_loss():
    f = MidiClockFollower(lost_timeout_seconds=0.25)
    f.feed(START, 0.0)
    _, t = feed_ticks(f, 10, 0.0)
    assert f.feed(TICK, t + SPT_120) == []  # two intervals after the last: held
    stop = f.feed(STOP, t + 2 * SPT_120)
    assert [(e.kind, e.position_ticks) for e in stop] == [("tick", 10), ("stop", 11)]
    f.feed(CONTINUE, 5.0)
    feed_ticks(f, 10, 5.0)
    t = 5.0 + 9 * SPT_120
    assert f.feed(TICK, t + 2 * SPT_120) == []
    lost = f.check_lost(t + 2 * SPT_120 + 0.3)
    assert [(e.kind, e.position_ticks) for e in lost] == [("tick", 21), ("lost", 22)]


@pytest.mark.parametrize("seed", range(3))
def test_jitter_is_never_taken_for_lost_ticks(seed):
    rng = random.Random(seed)
    f = MidiClockFollower()
    f.feed(START, 0.0)
    events = []
    for i in range(5000):
        events += f.feed(TICK, (i + rng.uniform(-0.2, 0.2)) * SPT_120)
    assert f.missed_ticks == 0
    assert [e.position_ticks for e in events] == list(range(5000))


def test_a_pause_in_the_clock_is_not_a_tempo_change():
    f = MidiClockFollower()
    f.feed(START, 0.0)
    _, t = feed_ticks(f, 48, 0.0)
    f.feed(STOP, t)
    f.feed(CONTINUE, t + 3.0)
    feed_ticks(f, 3, t + 3.0)
    assert f.tempo.bpm == pytest.approx(120.0, rel=1e-6)


def test_clock_loss_after_the_timeout_only_while_running():
    f = MidiClockFollower(lost_timeout_seconds=0.25)
    assert f.check_lost(100.0) == []  # stopped: never lost
    f.feed(START, 0.0)
    _, t = feed_ticks(f, 30, 0.0)
    last_tick = t - SPT_120
    assert f.next_loss_check_seconds() == pytest.approx(last_tick + 0.25)
    assert f.check_lost(last_tick + 0.24) == []
    (lost,) = f.check_lost(last_tick + 0.26)
    assert (lost.kind, lost.position_ticks) == ("lost", 30)
    assert not f.running
    assert f.check_lost(last_tick + 1.0) == []  # reported once
    # Ticks come back without any transport message: the master kept running; join in.
    events, _ = feed_ticks(f, 2, last_tick + 2.0)
    assert [(e.kind, e.position_ticks) for e in events] == [
        ("continue", 30),
        ("tick", 30),
        ("tick", 31),
    ]


def test_after_loss_an_explicit_stop_keeps_ticks_silent():
    f = MidiClockFollower(lost_timeout_seconds=0.25)
    f.feed(START, 0.0)
    _, t = feed_ticks(f, 10, 0.0)
    assert f.check_lost(t + 1.0)[0].kind == "lost"
    assert f.feed(STOP, t + 1.1) == []  # already stopped
    events, t2 = feed_ticks(f, 5, t + 2.0)
    assert events == []
    f.feed(CONTINUE, t2)
    events, _ = feed_ticks(f, 1, t2)
    assert events[0].position_ticks == 10


def test_clock_loss_when_start_is_never_followed_by_ticks():
    f = MidiClockFollower(lost_timeout_seconds=0.5)
    f.feed(START, 10.0)
    assert f.check_lost(10.4) == []
    assert [e.kind for e in f.check_lost(10.6)] == ["lost"]


def test_invalid_settings_are_refused_with_the_fix():
    with pytest.raises(ClockError, match="timeout"):
        MidiClockFollower(lost_timeout_seconds=0)
    with pytest.raises(ClockError, match="BPM"):
        InternalClock(bpm=1000)
    with pytest.raises(ClockError, match="window_intervals"):
        TempoEstimator(window_intervals=2)


# --- internal clock -----------------------------------------------------------------------
def test_internal_clock_deadlines_do_not_drift_over_10k_ticks():
    clock = InternalClock(bpm=200.0)
    spt = seconds_per_tick_for_bpm(200.0)
    t0 = 1234.5
    assert clock.start(t0).kind == "start"
    rng = random.Random(3)
    now = t0
    events: list[ClockEvent] = []
    while len(events) < 10_000:
        # Wake-ups are late by up to two ticks, as a loaded machine would be.
        now = clock.next_deadline_seconds() + rng.uniform(0.0, 2.0 * spt)
        events += clock.due_events(now)
    assert [e.position_ticks for e in events[:10_000]] == list(range(10_000))
    for n in (0, 1, 999, 9_999):
        assert events[n].time_seconds == pytest.approx(t0 + n * spt, abs=1e-9)
    assert all(e.kind == "tick" for e in events)


def test_internal_clock_returns_nothing_before_the_deadline_and_all_missed_ticks_after():
    clock = InternalClock(bpm=120.0)
    assert clock.due_events(5.0) == []  # not started
    clock.start(0.0)
    assert len(clock.due_events(0.0)) == 1  # tick 0 is due at the start
    assert clock.due_events(SPT_120 * 0.99) == []
    late = clock.due_events(SPT_120 * 10.5)
    assert [e.position_ticks for e in late] == list(range(1, 11))
    stop = clock.stop(1.0)
    assert (stop.kind, stop.position_ticks) == ("stop", 11)
    assert clock.due_events(100.0) == []
    cont = clock.start(2.0, position_ticks=11)
    assert (cont.kind, cont.position_ticks) == ("continue", 11)
    assert clock.due_events(2.0)[0].position_ticks == 11


def test_internal_clock_tempo_change_keeps_the_next_deadline():
    clock = InternalClock(bpm=120.0)
    clock.start(0.0)
    clock.due_events(10 * SPT_120)  # ticks 0..10 done, tick 11 due at 11 * SPT_120
    clock.set_bpm(240.0)
    assert clock.next_deadline_seconds() == pytest.approx(11 * SPT_120)
    events = clock.due_events(11 * SPT_120 + 4 * SPT_120 / 2)
    assert [e.position_ticks for e in events] == [11, 12, 13, 14, 15]
    assert events[-1].time_seconds == pytest.approx(11 * SPT_120 + 4 * SPT_120 / 2)
    assert events[-1].seconds_per_tick == pytest.approx(SPT_120 / 2)


def test_clock_events_become_midi_for_a_daw():
    assert clock_event_to_midi(ClockEvent("tick", 5, 0.0, SPT_120)) == [mido.Message("clock")]
    assert clock_event_to_midi(ClockEvent("start", 0, 0.0, SPT_120)) == [mido.Message("start")]
    assert clock_event_to_midi(ClockEvent("lost", 3, 0.0, SPT_120)) == [mido.Message("stop")]
    assert clock_event_to_midi(ClockEvent("continue", 96, 0.0, SPT_120)) == [
        mido.Message("songpos", pos=16),
        mido.Message("continue"),
    ]


def test_internal_clock_thread_ticks_in_real_time_and_sends_midi_clock():
    events: queue.SimpleQueue[ClockEvent] = queue.SimpleQueue()
    midi: list[mido.Message] = []
    runner = InternalClockThread(InternalClock(bpm=300.0), events.put,
                                 midi_sink=lambda message, _due: midi.append(message))
    spt = seconds_per_tick_for_bpm(300.0)  # 8.3 ms
    runner.start()
    time.sleep(0.2)
    runner.stop()
    got = []
    while not events.empty():
        got.append(events.get())
    assert got[0].kind == "start" and got[-1].kind == "stop"
    ticks = [e for e in got if e.kind == "tick"]
    assert 10 <= len(ticks) <= 30  # ~24 expected; generous for a loaded machine
    t0 = got[0].time_seconds
    for e in ticks:  # stamped with their deadlines, not with the wake-up time
        assert e.time_seconds == pytest.approx(t0 + e.position_ticks * spt, abs=1e-9)
    assert midi[0] == mido.Message("start") and midi[-1] == mido.Message("stop")
    assert sum(m.type == "clock" for m in midi) == len(ticks)
    assert not runner.running


def test_internal_clock_hands_each_tick_over_its_lead_early_due_on_its_deadline():
    """With a lead (a JACK port's), each tick reaches the session and the MIDI sink that much
    before its deadline, stamped with and due at the deadline (yesterday: at wake-up, so the
    clock and the notes of its steps left a JACK period or two after the deadline)."""
    lead, spt = 0.03, seconds_per_tick_for_bpm(300.0)
    midi: list[tuple[float, mido.Message, float]] = []  # handed over at, message, due
    session: list[tuple[float, ClockEvent]] = []  # received at, event
    runner = InternalClockThread(
        InternalClock(bpm=300.0), lambda event: session.append((time.monotonic(), event)),
        midi_sink=lambda message, due: midi.append((time.monotonic(), message, due)),
        lead_seconds=lead)
    started = time.monotonic()
    runner.start(at_seconds=started - 0.01)  # (sync start: the note came a moment ago)
    time.sleep(0.3)
    runner.stop()
    t0 = session[0][1].time_seconds
    assert t0 >= started + lead  # so that Start and tick 0 leave on time too
    assert [m.type for _, m, _ in midi][0] == "start" and midi[-1][1].type == "stop"
    last_tick_due = max(due for _, m, due in midi if m.type == "clock")
    assert midi[-1][2] in (0.0, last_tick_due)  # at once, or right after the ticks handed over
    ticks = [(at, e) for at, e in session if e.kind == "tick"]
    assert [e.position_ticks for _, e in ticks] == list(range(len(ticks)))
    for _, e in ticks:  # stamped with their deadlines
        assert e.time_seconds == pytest.approx(t0 + e.position_ticks * spt, abs=1e-9)
    assert [due for _, m, due in midi if m.type == "clock"] == [e.time_seconds for _, e in ticks]
    early = np.array([e.time_seconds - at for at, e in ticks])
    assert np.median(early) > lead / 2, early  # ahead (handed over at the deadline: <= 0)
    assert np.all(early <= lead + 1e-3), early  # but never more than the lead


def frame_stamped_ticks(n: int, bpm: float, rng: random.Random, jitter: float = 0.0):
    """Stamps of ``n`` ticks as a JACK input gives them: each tick's frame / rate (48 kHz),
    with runs of 1-6 ticks lost (about 3 % of ticks start one), ticks repeated at the same
    frame (a late cycle delivered twice, 0.5 %) and ticks a 64-frame period late (1 %);
    ``jitter`` moves each tick by up to that share of an interval (a jittery clock master)."""
    rate, spt = 48000, seconds_per_tick_for_bpm(bpm)
    stamps, i = [], 0
    while i < n:
        if rng.random() < 0.03:
            i += rng.randint(1, 6)
            continue
        frame = round((1.0 + i * spt + rng.uniform(-jitter, jitter) * spt) * rate)
        if rng.random() < 0.01:
            frame += 64
        stamps.append(frame / rate)
        if rng.random() < 0.005:
            stamps.append(frame / rate)
        i += 1
    return stamps, 1.0 + n * spt  # and when the next tick would come


@pytest.mark.parametrize("jitter", [0.0, 0.1])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_frame_stamped_ticks_count_exactly_through_losses_and_repeats(seed, jitter):
    """JACK input: a tick is stamped with its frame, so losses and repeats are certain. Over
    4 minutes at 200 BPM the position is exact (the arrival-time rules, which cannot tell a
    lost tick from a delayed one, are not used on frame stamps)."""
    rng = random.Random(seed)
    n = 24 * 200 * 4
    stamps, next_due = frame_stamped_ticks(n, 200.0, rng, jitter)
    f = MidiClockFollower(initial_bpm=200.0, frame_stamps=True)
    f.feed(START, 0.999)
    for stamp in stamps:
        f.feed(TICK, stamp)
    f.feed(TICK, next_due)  # one more, on time, so that the last losses show
    assert len(stamps) < n  # ticks were lost ...
    assert f.repeated_ticks > 0  # ... and repeated
    assert f.position_ticks == n + 1
