"""The daemon as a user runs it (``python -m musegan_live.cli --in ... --out ...``) in a real
JACK graph: jack_midi_clock as clock master, a player client, a frame-exact recording client.

Behaviour checked (``docs/DESIGN.md``, "Timing" and "Testing with real MIDI"): four tracks on
their channels, every note-on ended, onsets on clock step boundaries, silence (only note-offs /
CC123 / CC64) after Stop, re-sync after Stop -> Start and after a Song Position jump, all notes
off on SIGTERM, the
``--record`` file, and the faults: the clock dying mid-bar, a 20 % jittered clock, the JACK
server killed under the daemon.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from dataclasses import dataclass

import mido
import numpy as np
import pytest

from harness.jack_clients import RecordedEvent
from harness.jack_rig import (
    ClockMaster,
    DaemonProcess,
    JackServer,
    jack_connect,
    wait_for_jack_ports,
    wait_until,
)
from harness.piano_part import BEAT_FRAMES_120, play_piano
from musegan_live.clock.follower import MidiClockFollower

# Timing on a shared machine: an xrun swallows events or delays a tick now and then (measured:
# about one integration run in four has one such failure, before and after the changes of
# 2026-11-21). A test is run again up to twice; one that keeps failing still fails.
pytestmark = [pytest.mark.jack, pytest.mark.flaky(reruns=2)]

#: 0-based output channels of the default configuration: Drums 10, Guitar 2, Bass 3, Strings 4
OUTPUT_CHANNELS = {9, 1, 2, 3}
PANIC_CCS = {123, 64}
TICK_FRAMES_120 = 1_000


def daemon_args(model_dir, player, recorder, *extra: str) -> list[str]:
    return [
        "--model", str(model_dir), "--backend", "jack",
        "--in", player.port_name, "--out", recorder.port_name("in"),
        "--seed", "1", "--clock-loss-timeout", "0.25", "--clock", "external", *extra,
    ]


def start_daemon(server, args, tmp_path, player, clock: ClockMaster | None) -> DaemonProcess:
    daemon = DaemonProcess(server, args, tmp_path)
    if not daemon.wait_for_log("musegan-live ready", 30.0):
        daemon.close()
        pytest.fail(f"daemon did not start:\n{daemon.log()}")
    if clock is not None:  # the clock comes in on the same input as the player
        clock.connect(player.peer_of("musegan-live"))
    return daemon


@dataclass
class Tick:
    frame: int
    position: int  # song position in ticks, as a clock follower counts it


def ticks_with_positions(clock_events: list[RecordedEvent], rate: int) -> list[Tick]:
    """The clock as the recorder heard it, each tick with its song position (counted by frame
    gaps, as the daemon counts on JACK: ticks the recorder missed are counted all the same)."""
    follower = MidiClockFollower(lost_timeout_seconds=1e9, frame_stamps=True)
    ticks = []
    for event in clock_events:
        for clock_event in follower.feed(event.data, event.frame / rate):
            if clock_event.kind == "tick":
                ticks.append(Tick(event.frame, clock_event.position_ticks))
    return ticks


def note_ons(events):
    return [e for e in events if e.data[0] & 0xF0 == 0x90 and e.data[2] > 0]


def is_note_off(event: RecordedEvent) -> bool:
    kind = event.data[0] & 0xF0
    return kind == 0x80 or (kind == 0x90 and event.data[2] == 0)


def is_panic_cc(event: RecordedEvent) -> bool:
    return event.data[0] & 0xF0 == 0xB0 and event.data[1] in PANIC_CCS and event.data[2] == 0


def unended_notes(events) -> set[tuple[int, int]]:
    """(channel, pitch) of notes still sounding after ``events``: a note ends with its note-off
    or with All Notes Off (CC123) on its channel."""
    sounding: set[tuple[int, int]] = set()
    for event in events:
        if len(event.data) < 3:
            continue
        channel = event.data[0] & 0x0F
        if is_note_off(event):
            sounding.discard((channel, event.data[1]))
        elif event.data[0] & 0xF0 == 0x90:
            sounding.add((channel, event.data[1]))
        elif event.data[0] & 0xF0 == 0xB0 and event.data[1] == 123:
            sounding = {(c, p) for c, p in sounding if c != channel}
    return sounding


def notes_without_note_off(events) -> int:
    """How many note-ons were never followed by a note-off of their own (CC123 not counted)."""
    sounding: Counter = Counter()
    for event in events:
        if len(event.data) == 3 and event.data[0] & 0xE0 == 0x80:
            key = (event.data[0] & 0x0F, event.data[1])
            if is_note_off(event):
                sounding[key] = 0
            else:
                sounding[key] = 1
    return sum(sounding.values())


def onset_bursts(onsets, ticks: list[Tick], gap_frames: int = 900):
    """Group onsets into the bursts the daemon sends per step; each burst as
    (first onset frame, the tick at or before it). A burst spread over cycles (16 notes per
    cycle) with a missed cycle in it has gaps of two 256-frame periods; two steps' bursts are
    two ticks apart (1,600 frames at 150 BPM and more at slower tempi)."""
    bursts = []
    last = None
    tick_frames = [t.frame for t in ticks]
    for onset in onsets:
        if last is None or onset.frame - last > gap_frames:
            index = int(np.searchsorted(tick_frames, onset.frame, side="right")) - 1
            if index >= 0:
                bursts.append((onset.frame, ticks[index]))
        last = onset.frame
    return bursts


def assert_onsets_on_step_ticks(onsets, ticks, period_frames, what="", p95_periods=8):
    """Bursts of onsets start right after step boundaries (even ticks), typically within a
    JACK period of the cycle that carried the tick. Returns the lags in frames."""
    bursts = onset_bursts(onsets, ticks)
    assert bursts, f"no notes {what}"
    # A burst after an odd tick is one that lagged more than a tick behind its step, or
    # one whose tick was lost in a JACK xrun (the daemon counts it when the next tick shows
    # it was missing, a tick late). A daemon that counts ticks wrong puts nearly every burst
    # there; a loaded machine (xruns) a few.
    odd = [(f, t.position) for f, t in bursts if t.position % 2]
    assert len(odd) <= max(3, 0.1 * len(bursts)), f"onsets after odd ticks {what}: {odd[:5]}"
    # Notes of an external clock's tick leave in a cycle after the one that carried it, so the
    # usual lag is at most two periods; a step with many notes or an inference running beside
    # it on a loaded machine may take a few periods more.
    lags = np.array([f - t.frame for f, t in bursts if t.position % 2 == 0])
    summary = f"lags {what} (frames): median {np.median(lags)}, p95 {np.quantile(lags, 0.95)}"
    assert np.all(lags >= 0), summary
    assert np.median(lags) <= 2 * period_frames, summary
    assert np.quantile(lags, 0.95) <= p95_periods * period_frames, summary
    return lags


def transport_frames(clock_events, status: int) -> list[int]:
    return [e.frame for e in clock_events if e.data[0] == status]


# --- the main session -------------------------------------------------------------------------
def test_accompaniment_follows_the_clock_through_stop_start_and_sigterm(
    jack_server, playing_model, recorder, player, clock_master, tmp_path
):
    record_path = tmp_path / "session.mid"
    args = daemon_args(playing_model, player, recorder,
                       "--record", str(record_path))
    daemon = start_daemon(jack_server, args, tmp_path, player, clock_master)
    try:
        played = play_piano(player, 6.0)
        clock_master.play()
        time.sleep(3.0)
        clock_master.stop()
        time.sleep(0.5)
        clock_master.locate(0)  # back to 1|1|0: the next play sends Start
        time.sleep(0.3)
        clock_master.play()
        time.sleep(2.0)
        sigterm_frame = recorder.now_frame()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0, daemon.log()
        time.sleep(0.1)
    finally:
        daemon.close()
        clock_master.stop()
    log = daemon.log()
    assert "Traceback" not in log
    out = recorder.events("in")
    clock = recorder.events("clock")
    ticks = ticks_with_positions(clock, recorder.rate)
    starts = transport_frames(clock, 0xFA)
    stops = transport_frames(clock, 0xFC)
    transport = [(e.frame, e.data.hex()) for e in clock if e.data[0] != 0xF8]
    tick_frames = np.array([e.frame for e in clock if e.data[0] == 0xF8])
    gaps = np.diff(tick_frames)
    transport.append(("gaps", sorted(Counter(gaps.tolist()).items())[-5:]))
    assert len(starts) == 2 and len(stops) >= 1, transport

    # Four tracks, each on its configured channel, and no note left sounding. (Every note-on's
    # own note-off is checked on what the daemon sent, in the recording below: an xrun on this
    # shared machine may swallow events on their way through JACK; CC123 still ends them.)
    ons = note_ons(out)
    assert {e.data[0] & 0x0F for e in ons} == OUTPUT_CHANNELS
    assert not unended_notes(out)
    assert notes_without_note_off(out) <= 0.03 * len(ons)

    # Onsets on step boundaries, within a period, in both takes.
    period = recorder.period_frames
    first_take = [e for e in ons if starts[0] <= e.frame < stops[0]]
    second_take = [e for e in ons if starts[1] <= e.frame < sigterm_frame]
    assert_onsets_on_step_ticks(first_take, ticks, period, f"in the first take {transport}")
    assert_onsets_on_step_ticks(second_take, ticks, period, f"after Stop -> Start {transport}")
    # Re-synced: the second take starts again at bar 1 (the first step's tick is position 0).
    first_burst = onset_bursts(second_take, ticks)[0]
    assert first_burst[1].position < 24, "the second take did not restart from the top"

    # After Stop: nothing but note-offs / CC123 / CC64 until the next Start.
    after_stop = [e for e in out if stops[0] < e.frame < starts[1]]
    assert after_stop, "Stop should end the sounding notes"
    assert all(is_note_off(e) or is_panic_cc(e) for e in after_stop), after_stop[:5]

    # SIGTERM: all notes off on every channel, nothing else.
    after_term = [e for e in out if e.frame >= sigterm_frame]
    assert all(is_note_off(e) or is_panic_cc(e) for e in after_term)
    cc = {(e.data[0] & 0x0F, e.data[1]) for e in after_term if is_panic_cc(e)}
    assert cc == {(ch, n) for ch in OUTPUT_CHANNELS for n in PANIC_CCS}

    # The recording holds what was played in and what was sent out.
    # (what JACK delivered can only be less, by events an xrun swallowed)
    recorded = [m for m in mido.MidiFile(record_path) if not m.is_meta]
    recorded_on = Counter(m.channel for m in recorded if m.type == "note_on" and m.velocity)
    assert 0.95 * played <= recorded_on[0] <= played  # the player, channel 1
    recorded_out = sum(recorded_on[ch] for ch in OUTPUT_CHANNELS)
    assert len(ons) <= recorded_out <= len(ons) / 0.97
    sent = [RecordedEvent(0, bytes(m.bytes()), "out") for m in recorded
            if getattr(m, "channel", None) in OUTPUT_CHANNELS]
    assert notes_without_note_off(sent) == 0, "a note-on the daemon sent was never ended"


def spp_bytes(position_16ths: int) -> list[int]:
    return [0xF2, position_16ths & 0x7F, position_16ths >> 7]


def test_song_position_jumps_resync(
    jack_server, playing_model, recorder, player, clock_master, tmp_path
):
    """Stop, Song Position to bar 5, Continue; later, while running, Song Position back to
    bar 1 (a DAW loop). jack_midi_clock sends Song Position only with a timecode master, so
    the test's player client sends them, on the same input as the clock."""
    jack_connect(jack_server, player.port_name, recorder.port_name("clock"))
    args = daemon_args(playing_model, player, recorder)
    daemon = start_daemon(jack_server, args, tmp_path, player, clock_master)
    try:
        play_piano(player, 6.0)
        clock_master.play()
        time.sleep(1.2)
        clock_master.stop()
        time.sleep(0.3)
        player.send_now(spp_bytes(64))  # 64 sixteenths = bar 5
        time.sleep(0.2)
        clock_master.play()  # not at the top: Continue
        time.sleep(1.5)
        # Back to bar 1 while running, half-way between two ticks: the Song Position comes
        # from another client than the clock, and JACK only orders events of one cycle.
        last_tick = [e.frame for e in recorder.events("clock") if e.data[0] == 0xF8][-1]
        ahead = (player.now_frame() + 2 * recorder.period_frames - last_tick) // 1000 + 1
        player.send_at(last_tick + ahead * 1000 + 500, spp_bytes(0))
        time.sleep(1.5)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0, daemon.log()
    finally:
        daemon.close()
    log = daemon.log()
    clock_events = recorder.events("clock")
    transport = [(e.frame, e.data.hex()) for e in clock_events if e.data[0] not in (0xF8,)
                 and e.data[0] >= 0xF0]
    continues = transport_frames(clock_events, 0xFB)
    assert continues, f"jack_midi_clock sent no Continue: {transport}"
    assert "clock jump at 5:1" in log and "clock continue at 5:1" in log, log
    assert "clock jump at 1:1" in log, log
    ticks = ticks_with_positions([e for e in clock_events if e.data[0] >= 0xF0], recorder.rate)
    ons = note_ons(recorder.events("in"))
    loop_spp = [e.frame for e in clock_events
                if e.data == bytes(spp_bytes(0)) and e.frame > continues[0]]
    assert loop_spp, f"the recorder missed the Song Position 0: {transport}"
    at_bar_5 = [e for e in ons if continues[0] < e.frame < loop_spp[0]]
    assert_onsets_on_step_ticks(at_bar_5, ticks, recorder.period_frames, "after the jump")
    assert onset_bursts(at_bar_5, ticks)[0][1].position >= 96 * 4
    # the notes of the last tick before the jump may leave after it (a period or two later):
    # after the loop means after the first tick that follows it
    first_looped_tick = min(t.frame for t in ticks if t.frame > loop_spp[0])
    looped = [e for e in ons if e.frame >= first_looped_tick]
    assert_onsets_on_step_ticks(looped, ticks, recorder.period_frames, "after the loop")
    assert onset_bursts(looped, ticks)[0][1].position < 96


# --- faults -----------------------------------------------------------------------------------
def test_clock_dying_mid_bar_silences_within_a_beat(
    jack_server, playing_model, recorder, player, clock_master, tmp_path
):
    args = daemon_args(playing_model, player, recorder)
    daemon = start_daemon(jack_server, args, tmp_path, player, clock_master)
    try:
        play_piano(player, 4.0)
        clock_master.play()
        time.sleep(1.6)  # 3.2 beats: mid-bar
        clock_master.kill_clock()  # no Stop: the ticks just end
        time.sleep(1.0)
        assert "MIDI clock lost" in daemon.log()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        daemon.close()
    out = recorder.events("in")
    ticks = [e.frame for e in recorder.events("clock") if e.data[0] == 0xF8]
    last_tick = ticks[-1]
    assert note_ons([e for e in out if e.frame <= last_tick]), "nothing played before the loss"
    late = [e for e in out if e.frame > last_tick + BEAT_FRAMES_120]
    # Within a beat of the last tick every note was ended; later only the SIGTERM's CCs.
    assert not note_ons(late)
    assert not unended_notes([e for e in out if e.frame <= last_tick + BEAT_FRAMES_120])


def test_jittered_clock_keeps_the_accompaniment_locked(
    jack_server, playing_model, recorder, player, tmp_path
):
    clock = ClockMaster(jack_server, bpm=120, jitter_percent=20)
    clock.connect(recorder.port_name("clock"))
    args = daemon_args(playing_model, player, recorder)
    daemon = start_daemon(jack_server, args, tmp_path, player, clock)
    try:
        play_piano(player, 4.0)
        clock.play()
        time.sleep(3.0)
        clock.stop()
        time.sleep(0.3)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        daemon.close()
        clock.close()
    log = daemon.log()
    assert "MIDI clock lost" not in log
    clock_events = recorder.events("clock")
    ticks = ticks_with_positions(clock_events, recorder.rate)
    intervals = np.diff([t.frame for t in ticks])
    assert intervals.std() > 0.05 * TICK_FRAMES_120, "the clock was not jittered"
    ons = note_ons(recorder.events("in"))
    lags = assert_onsets_on_step_ticks(ons, ticks, recorder.period_frames, "with jitter")
    # Locked: the steps that sounded are the clock's steps, none skipped in a row of bursts.
    bursts = [(frame, t.frame, t.position) for frame, t in onset_bursts(ons, ticks)]
    positions = [position for _, _, position in bursts]
    repeated = [b for b in bursts if positions.count(b[2]) > 1]
    assert positions == sorted(positions) and not repeated, repeated
    assert np.median(lags) <= 2 * recorder.period_frames


def test_jack_server_killed_under_the_daemon(jack_tools, live_model_dir, tmp_path):
    """The server dies and comes back: the daemon says so, tries its note-offs, exits 1.

    Only subprocesses are clients of this server: libjack can crash an in-process client whose
    server is killed and restarted, which would take pytest down with it.
    """
    server = JackServer(period_frames=64).start()
    try:
        clock = ClockMaster(server, bpm=120)
        args = ["--model", str(live_model_dir), "--backend", "jack", "--in", "kill-test in",
                "--out", "kill-test out", "--threshold", "0.5", "--clock", "external"]
        daemon = DaemonProcess(server, args, tmp_path)
        try:
            assert daemon.wait_for_log("musegan-live ready", 30.0), daemon.log()
            jack_connect(server, clock.port, "musegan-live:kill-test in")
            clock.play()
            assert daemon.wait_for_log("clock start", 5.0), daemon.log()
            time.sleep(0.5)
            server.kill()
            server.start()  # a new server of the same name: the old connections are gone
            assert wait_until(lambda: daemon.process.poll() is not None, 10.0), daemon.log()
            code = daemon.process.returncode
        finally:
            daemon.close()
            clock.close()
    finally:
        server.stop()
    log = daemon.log()
    assert code == 1, log
    assert f"the JACK server {server.name!r} went away" in log
    assert "restart musegan-live once JACK runs again" in log
    assert "all notes off" not in log or "stopping" in log
    assert "Traceback" not in log


def test_with_no_ports_named_the_daemon_opens_an_input_and_an_output_of_its_own(
    jack_server, live_model_dir, tmp_path
):
    """``musegan-live --clock internal`` and nothing else: a port to play into and one to
    listen to, for other programs to connect (yesterday both were named musegan-live and the
    second one's registration failed)."""
    args = ["--model", str(live_model_dir), "--backend", "jack", "--clock", "internal"]
    daemon = DaemonProcess(jack_server, args, tmp_path)
    try:
        assert wait_for_jack_ports(jack_server, {"musegan-live:in", "musegan-live:musegan-live"},
                                   30.0, daemon.process), daemon.log()
        assert daemon.wait_for_log("musegan-live ready", 10.0), daemon.log()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0, daemon.log()
    finally:
        daemon.close()


def test_internal_clock_when_no_external_clock_comes(
    jack_server, playing_model, recorder, player, tmp_path
):
    """clock auto: no clock on the input, so after a second the daemon plays on its own clock
    and (with --send-clock) sends that clock for a DAW to follow."""
    args = daemon_args(playing_model, player, recorder,
                       "--clock", "auto", "--bpm", "150", "--send-clock",
                       "--no-clock-sync-start")
    daemon = start_daemon(jack_server, args, tmp_path, player, None)
    try:
        assert daemon.wait_for_log("internal clock at 150 BPM", 5.0), daemon.log()
        time.sleep(2.0)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        daemon.close()
    out = recorder.events("in")
    ticks_out = [e for e in out if e.data[0] == 0xF8]
    assert [e.data[0] for e in out if e.data[0] in (0xFA, 0xFC)] == [0xFA, 0xFC]
    # The clock leaves on its deadlines' frames: 800 frames apart at 150 BPM, to the frame's
    # rounding (yesterday each tick left at the next period start: 768 or 1,024 at -p 256).
    # Gaps of 1,600 are ticks an xrun swallowed on the way to the recorder.
    intervals = np.diff([e.frame for e in ticks_out])
    exact = np.abs(intervals - 48_000 * 60 / 150 / 24) <= 1
    assert exact.mean() >= 0.9, sorted(Counter(intervals.tolist()).items())[:8]
    follower_ticks = ticks_with_positions([e for e in out if e.data[0] >= 0xF0], recorder.rate)
    ons = note_ons(out)
    assert {e.data[0] & 0x0F for e in ons} == OUTPUT_CHANNELS
    # Tick and notes both come from the daemon here: the clock hands each tick over a port
    # lead early, so a step's notes leave with its tick, on a loaded machine within a tick.
    assert_onsets_on_step_ticks(ons, follower_ticks, recorder.period_frames, "internal clock",
                                p95_periods=16)
