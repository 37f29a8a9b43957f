"""Scheduler: steps of a plan -> note-ons/offs per track, drums as short hits."""

from __future__ import annotations

import numpy as np

from musegan_live.config.live import load_config
from musegan_live.live.ledger import NoteLedger
from musegan_live.live.scheduler import Scheduler, track_slots
from musegan_live.representation import DRUM_NOTE_STEPS, LOWEST_PITCH, N_PITCHES

OUTPUTS = [0, 2, 3, 4]  # Drums, Guitar, Bass, Strings


def make(overrides=None):
    config = load_config(None, overrides or {})
    ledger = NoteLedger()
    slots = track_slots(config, OUTPUTS)
    return Scheduler(slots, ledger), slots, ledger


def row(*pitches: int) -> np.ndarray:
    out = np.zeros(N_PITCHES, dtype=bool)
    out[[p - LOWEST_PITCH for p in pitches]] = True
    return out


def events(result):
    return [(m.type, m.note) for _, m, *_ in result.messages]


def test_pitched_notes_start_and_stop_with_the_plan():
    scheduler, slots, ledger = make()
    guitar = slots[1]
    assert events(scheduler.step_messages(guitar, 0, row(60, 64), 90)) == [
        ("note_on", 60),
        ("note_on", 64),
    ]
    assert events(scheduler.step_messages(guitar, 1, row(60, 64), 90)) == []  # held
    # a new plan drops 64 and adds 67: 64 ends at this very step, before 67 starts
    assert events(scheduler.step_messages(guitar, 2, row(60, 67), 90)) == [
        ("note_off", 64),
        ("note_on", 67),
    ]
    assert ledger.open_notes == {(0, 1, 60), (0, 1, 67)}
    assert events(scheduler.step_messages(guitar, 3, row(), 90)) == [
        ("note_off", 60),
        ("note_off", 67),
    ]


def test_drums_are_hits_that_end_after_a_fixed_length():
    scheduler, slots, ledger = make()
    drums = slots[0]
    plan = [row(36)] + [row()] * 5  # one step on, then silence
    sent = [events(scheduler.step_messages(drums, s, plan[s], 100)) for s in range(6)]
    assert sent[0] == [("note_on", 36)]
    assert sent[DRUM_NOTE_STEPS] == [("note_off", 36)]
    assert all(not sent[s] for s in range(1, 6) if s != DRUM_NOTE_STEPS)
    assert ledger.open_notes == frozenset()


def test_a_long_drum_run_is_restruck_like_lpd5_drums():
    scheduler, slots, _ = make()
    drums = slots[0]
    hits = []
    for step in range(10):
        notes = row(42) if step < 2 * DRUM_NOTE_STEPS else row()
        result = scheduler.step_messages(drums, step, notes, 100)
        hits += [step for kind, _ in events(result) if kind == "note_on"]
    assert hits == [0, DRUM_NOTE_STEPS]


def test_channels_programs_and_velocities_follow_the_config():
    scheduler, slots, _ = make(
        {"tracks.Bass.channel": "7", "tracks.Bass.velocity": "55", "tracks.Strings.program": "null"}
    )
    bass = slots[2]
    assert bass.channel == 6 and bass.velocity == 55
    result = scheduler.step_messages(bass, 0, row(40), bass.velocity)
    ((port, message, *_),) = result.messages
    assert (port, message.channel, message.velocity) == (0, 6, 55)
    programs = {(m.channel, m.program) for _, m, *_ in scheduler.program_changes()}
    assert programs == {(9, 0), (1, 25), (6, 33)}  # strings: program null -> none sent


def test_per_track_ports():
    scheduler, slots, _ = make({"output.ports": "per_track"})
    assert [slot.port_index for slot in slots] == [0, 1, 2, 3]
    result = scheduler.step_messages(slots[3], 0, row(70), 80)
    assert [port for port, *_ in result.messages] == [3]


def test_late_steps_send_note_offs_but_drop_note_ons():
    scheduler, slots, ledger = make()
    guitar = slots[1]
    scheduler.step_messages(guitar, 0, row(60), 90)
    late = scheduler.step_messages(guitar, 1, row(62, 64), 90, allow_note_ons=False)
    assert events(late) == [("note_off", 60)]
    assert late.dropped == 2
    assert ledger.open_notes == frozenset()
    # a dropped note stays dropped while the plan holds it: it is not played a step late
    # (yesterday both started here, at step 2, out of time)
    assert events(scheduler.step_messages(guitar, 2, row(62, 64), 90)) == []
    assert events(scheduler.step_messages(guitar, 3, row(64), 90)) == []  # 62 ends unheard
    # a new note of the same pitch is a new start
    assert events(scheduler.step_messages(guitar, 4, row(62, 64), 90)) == [("note_on", 62)]
    assert ledger.open_notes == frozenset({(0, 1, 62)})


def test_reset_forgets_sounding_notes_after_a_panic():
    scheduler, slots, ledger = make()
    guitar = slots[1]
    scheduler.step_messages(guitar, 0, row(60), 90)
    ledger.all_off()
    scheduler.reset()
    # the plan still wants 60: it is struck again rather than assumed to be sounding
    assert events(scheduler.step_messages(guitar, 1, row(60), 90)) == [("note_on", 60)]
