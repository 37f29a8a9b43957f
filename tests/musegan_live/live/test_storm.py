"""A storm of ~10k mixed events through one Session on a simulated clock.

Notes on every channel, clock ticks with jitter and lost ticks, Start/Stop/Continue/Song Position
Pointer, clock loss, tempo jumps 40..300 BPM, SysEx and other junk, bursts of notes, stalls of
the timing thread, plans that come back late. Afterwards: no exception, no stuck note after the
final Stop, no note-on sent late, and never more than two steps' worth of notes at once.
"""

from __future__ import annotations

import mido
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musegan_live.clock.follower import ClockEvent
from musegan_live.config.live import load_config
from musegan_live.live.planner import InlinePlanner
from musegan_live.live.session import Session
from tests.musegan_live.fakes import DelayedPlanner, DenseAccompanist, Receiver

N_EVENTS = 10_000
KINDS = (
    "tick",
    "note",
    "control",
    "junk",
    "burst",
    "start",
    "stop",
    "continue",
    "jump",
    "lost",
    "tempo",
    "stall",
    "gap",
)
#: How often each kind comes, before hypothesis scales them.
BASE_WEIGHTS = (60, 12, 4, 2, 0.5, 0.3, 0.3, 0.3, 0.4, 0.1, 0.4, 0.3, 0.2)


def junk_message(rng: np.random.Generator) -> mido.Message:
    choice = rng.integers(5)
    if choice == 0:
        return mido.Message("sysex", data=rng.integers(0, 128, rng.integers(0, 40)).tolist())
    if choice == 1:
        return mido.Message(
            "pitchwheel", channel=int(rng.integers(16)), pitch=int(rng.integers(-8192, 8192))
        )
    if choice == 2:
        return mido.Message(
            "aftertouch", channel=int(rng.integers(16)), value=int(rng.integers(128))
        )
    if choice == 3:
        return mido.Message(
            "program_change", channel=int(rng.integers(16)), program=int(rng.integers(128))
        )
    return mido.Message(str(rng.choice(["clock", "start", "stop", "continue", "reset"])))


def note_message(rng: np.random.Generator) -> mido.Message:
    kind = "note_on" if rng.random() < 0.55 else "note_off"
    return mido.Message(
        kind,
        channel=int(rng.integers(16)),
        note=int(rng.integers(128)),
        velocity=int(rng.integers(128)),
    )


def control_message(rng: np.random.Generator) -> mido.Message:
    control = int(rng.choice([64, 64, 64, 123, 120, 1, 7, 11]))
    return mido.Message(
        "control_change",
        channel=int(rng.integers(16)),
        control=control,
        value=int(rng.integers(128)),
    )


@settings(
    max_examples=3, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    scales=st.lists(st.floats(0.25, 4.0), min_size=len(KINDS), max_size=len(KINDS)),
    replan=st.sampled_from(["bar", "beat", "step"]),
    latency_ms=st.sampled_from([0, 40, -15]),
    thru=st.booleans(),
    late_plans=st.booleans(),
)
def test_storm(seed, scales, replan, latency_ms, thru, late_plans):
    rng = np.random.default_rng(seed)
    weights = np.array(BASE_WEIGHTS) * np.array(scales)
    kinds = rng.choice(len(KINDS), size=N_EVENTS, p=weights / weights.sum())
    config = load_config(
        None,
        {
            "replan": replan,
            "input.thru": str(thru),
            "tracks.Guitar.latency_ms": str(latency_ms),
            "tracks.Strings.latency_ms": "-8",
            "tracks.Bass.latency_ms": "25",
        },
    )
    lag = [0.0]
    clock = [0.0]
    planner = DelayedPlanner([0, 1, 5, 40]) if late_plans else InlinePlanner()
    session = Session(
        config, DenseAccompanist(), planner=planner, seed=seed % 1000, now=lambda: clock[0] + lag[0]
    )
    outgoing = session.start_messages()
    position, spt, running = 0, 60.0 / (120 * 24), False
    worst_late = 0.0
    most_note_ons = 0

    def clock_event(kind: str) -> list:
        return session.handle_clock(ClockEvent(kind, position, clock[0], spt))

    for k in kinds:
        kind = KINDS[k]
        sent: list = []
        if kind == "tick":
            clock[0] += spt * float(rng.uniform(0.8, 1.2))
            sent = clock_event("tick")
            if running:
                position += 1
            lag[0] = 0.0
        elif kind == "gap":  # lost ticks: the position moves on by a few
            position += int(rng.integers(2, 30)) if running else 0
        elif kind == "stall":  # the timing thread is late by up to a few steps
            lag[0] = float(rng.uniform(0.0, 8 * spt))
        elif kind == "tempo":
            spt = 60.0 / (float(rng.uniform(40, 300)) * 24)
        elif kind in ("start", "continue", "stop", "lost"):
            if kind == "start":
                position = 0
            running = kind in ("start", "continue")
            sent = clock_event(kind)
        elif kind == "jump":
            position = int(rng.integers(0, 2000)) * 6
            sent = clock_event("jump")
        elif kind == "note":
            sent = session.handle_player(note_message(rng), clock[0])
        elif kind == "control":
            sent = session.handle_player(control_message(rng), clock[0])
        elif kind == "junk":
            sent = session.handle_player(junk_message(rng), clock[0])
        else:  # a burst: a chord smash, all at one instant
            for _ in range(int(rng.integers(10, 60))):
                sent += session.handle_player(note_message(rng), clock[0])
        outgoing += sent
        if kind in ("tick", "gap"):
            now = clock[0] + lag[0]
            ons = [o for o in sent if o.message.type == "note_on" and o.message.velocity]
            ons = [o for o in ons if o.message.channel in (9, 1, 2, 3)]  # generated tracks
            most_note_ons = max(most_note_ons, len(ons))
            half_step = spt
            worst_late = max([worst_late] + [now - o.due_seconds - half_step for o in ons])
    outgoing += session.handle_clock(ClockEvent("stop", position, clock[0], spt))

    synth = Receiver()
    synth.play(outgoing)
    assert synth.sounding == set(), f"{len(synth.sounding)} notes stuck after Stop"
    assert synth.double_note_ons == 0
    assert session.ledger.open_notes == frozenset()
    assert worst_late <= 1e-9, "a note-on was sent more than half a step late"
    # at most two steps (an early track's current and next step) of four tracks at once
    assert most_note_ons <= 2 * 4 * DenseAccompanist.MAX_NOTES_PER_STEP
    assert synth.messages > 1000  # the storm did make music
