"""The JACK-native ports against a real JACK server: matching, virtual ports, frame stamps,
frame-timed output, full buffers, a vanished server."""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import time

import mido
import pytest

from harness.jack_clients import JackMidiPlayer
from harness.jack_rig import REPO_ROOT, end_process, environment, wait_for_jack_ports, wait_until
from musegan_live.errors import PortError
from musegan_live.ports import backends
from musegan_live.ports.jack_ports import MAX_EVENTS_PER_CYCLE, JackMidiClient

# Timing on a shared machine without realtime scheduling: a JACK client (ours, or the recorder)
# misses a cycle now and then, and the events in it. A test is run again up to twice.
pytestmark = [pytest.mark.jack, pytest.mark.flaky(reruns=2)]


@pytest.fixture
def jack_env(jack_server):
    with environment(jack_server.env):
        yield jack_server


@pytest.fixture
def client(jack_env):
    c = JackMidiClient("musegan-live-test")
    yield c
    c.close()


def receive_all(port, count: int, timeout_seconds: float = 2.0) -> list:
    got = []
    deadline = time.monotonic() + timeout_seconds
    while len(got) < count and time.monotonic() < deadline:
        item = port.receive(timeout_seconds=0.05)
        if item is not None:
            got.append(item)
    return got


def test_auto_backend_is_jack_when_a_server_runs(jack_env):
    assert backends.resolve_backend("auto") == "jack"


def test_describe_lists_inputs_and_outputs(jack_env, player, recorder):
    text = backends.describe_ports("jack")
    assert f"JACK server {jack_env.name!r}" in text
    inputs, outputs = text.split("Outputs")
    assert "pytest-player:out" in inputs and "pytest-player:out" not in outputs
    assert "pytest-recorder:in" in outputs and "pytest-recorder:in" not in inputs


def test_output_reaches_the_matched_port_byte_exact(client, recorder):
    out = client.open_output("PYTEST-RECORDER:IN")
    assert out.name == "pytest-recorder:in"
    sent = [
        mido.Message("program_change", channel=9, program=0),
        mido.Message("note_on", channel=9, note=36, velocity=100),
        mido.Message("control_change", channel=9, control=123, value=0),
    ]
    for message in sent:
        out.send(message)
    assert wait_until(lambda: len(recorder.events("in")) == 3, 2.0)
    assert [e.data for e in recorder.events("in")] == [bytes(m.bytes()) for m in sent]


def test_input_stamps_are_the_frames_of_the_events(client, player, recorder):
    """Each event's stamp is its JACK frame (the frame another client saw it at), however late
    Python got to it (yesterday's rtmidi input stamped arrival on the wall clock)."""
    port = client.open_input("pytest-player", queue.SimpleQueue())
    player.connect(recorder.port_name("in"))
    time.sleep(0.05)
    now = player.now_frame()
    sent = [[0xFA], [0xF8], [0x90, 60, 99], [0xF2, 0x10, 0x00]]
    for frame, data in zip([480, 5280, 5280, 5777], sent, strict=True):
        player.send_at(now + frame, data)
    got = receive_all(port, 4)
    assert [list(item.data) for item in got] == sent
    assert all(item.port_name == "pytest-player:out" for item in got)
    assert wait_until(lambda: len(recorder.events("in")) == 4, 2.0)
    heard = [e.frame for e in recorder.events("in")]
    stamps = [round(item.time_seconds * client.rate) & 0xFFFFFFFF for item in got]
    assert stamps == heard
    # the daemon's clock on JACK is this frame clock: the events are in its recent past (JACK
    # labels a cycle's input with the frames of the period being processed, so up to one period
    # ahead of the frame clock's estimate of "now")
    assert -client.period_seconds <= client.now_seconds() - got[-1].time_seconds < 1.0


def test_send_at_places_messages_at_their_frames(client, recorder):
    out = client.open_output("pytest-recorder:in")
    time.sleep(0.05)
    due = client.now_seconds() + 0.05
    offsets = [0.0, 0.0107, 0.0213]
    for k, offset in enumerate(offsets):
        out.send_at(mido.Message("note_on", note=60 + k, velocity=90), due + offset)
    assert wait_until(lambda: len(recorder.events("in")) == 3, 2.0)
    frames = [e.frame for e in recorder.events("in")]
    rate = client.rate
    for frame, offset in zip(frames, offsets, strict=True):
        assert frame - frames[0] == pytest.approx(offset * rate, abs=1.0)
    expected = client.frame_for_seconds(due) & 0xFFFFFFFF
    assert abs(frames[0] - expected) <= 2  # the frame of its due time
    assert out.late_messages == 0


def test_a_burst_larger_than_a_cycle_leaves_over_several_cycles(client, recorder):
    """Ten cycles' worth of events due at once (a panic of many notes): written over the next
    cycles, at most MAX_EVENTS_PER_CYCLE each, and the queue empties. (What the recorder hears
    is the machine's business too: under xruns JACK hands a late client a cycle's events twice
    or not at all, seen here as repeats and gaps in the recorder's stream, so order and
    completeness are not asserted on it.)"""
    out = client.open_output("pytest-recorder:in")
    due = client.now_seconds() + 0.03
    notes = [mido.Message("note_on", note=k % 128, velocity=1 + k % 127)
             for k in range(10 * MAX_EVENTS_PER_CYCLE)]
    for message in notes:
        out.send_at(message, due)
    assert wait_until(lambda: out.queued() == 0, 5.0), out.queued()
    time.sleep(0.05)
    events = recorder.events("in")
    sent = {bytes(m.bytes()) for m in notes}
    assert len({e.data for e in events} & sent) >= len(sent) // 2
    per_cycle: dict[int, set[bytes]] = {}
    for e in events:  # (distinct messages: a cycle JACK delivered twice counts once)
        per_cycle.setdefault(e.frame // client.period_frames, set()).add(e.data)
    assert max(len(v) for v in per_cycle.values()) <= MAX_EVENTS_PER_CYCLE
    assert len(per_cycle) >= 5


def test_clock_ticks_leave_on_their_frames_through_a_burst_of_notes(client, recorder):
    """Ticks due inside a backlog of notes (the first step of a busy band) leave at their own
    frames: the per-cycle budget holds notes back, never the clock (yesterday the ticks
    waited behind the notes, and a DAW's tempo wobbled at every busy step)."""
    out = client.open_output("pytest-recorder:in")
    due = client.now_seconds() + 0.03
    for k in range(8 * MAX_EVENTS_PER_CYCLE):
        out.send_at(mido.Message("note_on", note=k % 128, velocity=1 + k % 127), due)
    tick_offsets = [0.002 * (k + 1) for k in range(5)]
    for offset in tick_offsets:
        out.send_at(mido.Message("clock"), due + offset)
    assert wait_until(lambda: out.queued() == 0, 5.0), out.queued()
    time.sleep(0.05)
    ticks = [e.frame for e in recorder.events("in") if e.data == b"\xf8"]
    expected = [client.frame_for_seconds(due + offset) & 0xFFFFFFFF for offset in tick_offsets]
    assert sorted(set(ticks)) == expected


def test_discard_returns_what_has_not_left_and_keeps_what_was_sent(client, recorder):
    out = client.open_output("pytest-recorder:in")
    later = client.now_seconds() + 2.0
    out.send_at(mido.Message("note_on", note=61, velocity=9), later)
    out.send_at(mido.Message("note_off", note=61, velocity=0), later + 0.1)
    out.send(mido.Message("stop"))  # sent, not scheduled: it leaves even when discard follows
    assert out.discard_queued() == [[0x90, 61, 9], [0x80, 61, 0]]
    assert wait_until(lambda: out.queued() == 0, 1.0)
    time.sleep(0.05)
    assert [e.data for e in recorder.events("in")] == [b"\xfc"]


def test_unmatched_name_becomes_a_port_of_that_name_and_says_so(client, jack_env, caplog):
    with caplog.at_level(logging.INFO, logger="musegan_live.ports.jack_ports"):
        out = client.open_output("My Synth")
    assert out.name == "musegan-live-test:My Synth"
    assert "no port matches 'My Synth'" in caplog.text
    assert wait_for_jack_ports(jack_env, {"musegan-live-test:My Synth"}, 2.0)


def test_ambiguous_name_lists_the_candidates(client, jack_env):
    a = JackMidiPlayer(jack_env, name="pytest-synth-a")
    b = JackMidiPlayer(jack_env, name="pytest-synth-b")
    try:
        with pytest.raises(PortError) as info:
            client.open_input("pytest-synth")
        assert "pytest-synth-a:out" in str(info.value) and "pytest-synth-b:out" in str(info.value)
    finally:
        a.close()
        b.close()


def test_own_ports_are_never_matched(client):
    client.open_output("loop back")
    # "loop back" exists now, but as our own port: an input must not connect to it.
    second = client.open_input("loop back in")
    assert second.name == "musegan-live-test:loop back in"  # its own port, not a loop
    with pytest.raises(PortError, match="must be unique"):
        client.open_output("loop back")


#: a JackMidiClient in a process of its own: says READY, GONE <reason> when the server goes,
#: closes the client on "close" and says CLOSED (libjack may crash a process whose server went
#: away; here that would fail the test, not end pytest)
WATCHER = """
import sys
from musegan_live.ports.jack_ports import JackMidiClient
client = JackMidiClient("musegan-live-watch", on_shutdown=lambda r: print("GONE", r, flush=True))
print("READY", flush=True)
sys.stdin.readline()
print("GONE?", client.server_gone, flush=True)
client.close()
print("CLOSED", flush=True)
"""


def test_a_vanished_server_is_reported(private_jack_server):
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER], env=private_jack_server.env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=REPO_ROOT)
    try:
        assert watcher.stdout.readline().strip() == "READY"
        private_jack_server.stop()  # (a SIGKILL is covered by test_daemon_jack)
        assert watcher.stdout.readline().startswith("GONE ")  # the callback fired
        out, _ = watcher.communicate("close\n", timeout=10)
    finally:
        end_process(watcher)
    assert out.split("\n")[:2] == ["GONE? True", "CLOSED"]  # closing a dead server's client
    assert watcher.returncode == 0
