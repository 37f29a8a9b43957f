"""The rtmidi ports against a real JACK server: listing, matching, virtual ports, clock bytes."""

from __future__ import annotations

import logging
import time

import mido
import pytest

from harness.jack_rig import (
    JackMidiPlayer,
    JackMidiRecorder,
    environment,
    wait_until,
)
from musegan_live.errors import PortError
from musegan_live.ports import rtmidi_ports as ports

pytestmark = pytest.mark.jack


@pytest.fixture
def jack_env(jack_server):
    with environment(jack_server.env):
        yield jack_server


def test_auto_backend_is_jack_when_a_server_runs(jack_env):
    assert ports.resolve_backend("auto") == "jack"


def test_describe_lists_inputs_and_outputs(jack_env, player, recorder):
    text = ports.describe_ports("jack")
    assert f"JACK server {jack_env.name!r}" in text
    inputs, outputs = text.split("Outputs")
    assert "pytest-player:out" in inputs and "pytest-player:out" not in outputs
    assert "pytest-recorder:in" in outputs and "pytest-recorder:in" not in inputs


def test_output_reaches_the_matched_port_byte_exact(jack_env, recorder):
    out = ports.open_output("PYTEST-RECORDER:IN", backend="jack", client_name="musegan-live-t1")
    try:
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
    finally:
        out.close()


def test_input_receives_notes_and_clock_with_timestamps(jack_env, player):
    port = ports.open_input("pytest-player", backend="jack", client_name="musegan-live-t2")
    try:
        time.sleep(0.05)
        before = time.monotonic()
        now = player.now_frame()
        player.send_at(now + 480, [0xFA])
        player.send_at(now + 5280, [0xF8])  # dropped by rtmidi unless timing is enabled
        player.send_at(now + 5280, [0x90, 60, 99])
        player.send_at(now + 5760, [0xF2, 0x10, 0x00])
        got = []
        deadline = time.monotonic() + 2.0
        while len(got) < 4 and time.monotonic() < deadline:
            item = port.receive(timeout_seconds=0.1)
            if item is not None:
                got.append(item)
        assert [list(item.data) for item in got] == [
            [0xFA],
            [0xF8],
            [0x90, 60, 99],
            [0xF2, 0x10, 0x00],
        ]
        assert all(item.port_name == "pytest-player:out" for item in got)
        times = [item.time_seconds for item in got]
        assert before <= times[0] <= times[1] <= times[2] <= times[3] <= time.monotonic()
        # stamped on arrival: 4800 frames at 48 kHz = 100 ms between Start and the tick
        # (give or take a period each, and whatever a loaded machine adds)
        assert times[1] - times[0] == pytest.approx(0.100, abs=0.03)
    finally:
        port.close()


def test_unmatched_name_becomes_a_virtual_port_and_says_so(jack_env, caplog):
    with caplog.at_level(logging.INFO, logger="musegan_live.ports.rtmidi_ports"):
        out = ports.open_output("My Synth", backend="jack", client_name="musegan-live-t3")
    try:
        assert out.name == "My Synth"
        assert "created a virtual port named 'My Synth'" in caplog.text
        lister = JackMidiRecorder(jack_env, name="pytest-lister", inputs=())
        try:
            names = [p.name for p in lister.client.get_ports(is_midi=True, is_output=True)]
        finally:
            lister.close()
        assert "musegan-live-t3:My Synth" in names
    finally:
        out.close()


def test_ambiguous_name_lists_the_candidates(jack_env):
    a = JackMidiPlayer(jack_env, name="pytest-synth-a")
    b = JackMidiPlayer(jack_env, name="pytest-synth-b")
    try:
        with pytest.raises(PortError) as info:
            ports.open_input("pytest-synth", backend="jack", client_name="musegan-live-t4")
        assert "pytest-synth-a:out" in str(info.value) and "pytest-synth-b:out" in str(info.value)
    finally:
        a.close()
        b.close()


def test_own_ports_are_never_matched(jack_env):
    first = ports.open_output("loop back", backend="jack", client_name="musegan-live-t5")
    try:
        # "loop back" exists now, but as our own port: an input must not connect to it.
        second = ports.open_input("loop back", backend="jack", client_name="musegan-live-t6")
        assert second.name == "loop back"  # a new virtual port, not a connection to ourselves
        second.close()
    finally:
        first.close()


def test_server_watch_reports_a_vanished_server(private_jack_server):
    fired = []
    with environment(private_jack_server.env):
        watch = ports.watch_jack_server(fired.append, "musegan-live-t7")
    assert watch is not None
    private_jack_server.stop()  # (a SIGKILL is covered by test_daemon_jack, in a subprocess)
    assert wait_until(lambda: bool(fired), 3.0)
    assert watch.fired
    watch.close()
