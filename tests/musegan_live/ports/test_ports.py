"""MIDI port base classes, fakes, name matching and backend errors (no MIDI system needed)."""

from __future__ import annotations

import queue
import threading
import time

import mido
import pytest

from musegan_live.errors import PortError
from musegan_live.ports import backends, jack_server, rtmidi_ports
from musegan_live.ports.base import InputPort, OutputPort, ReceivedMidi, match_port, message_bytes
from tests.musegan_live.port_fakes import FakeInputPort, FakeOutputPort


@pytest.mark.parametrize(
    "message",
    [
        mido.Message("note_on", channel=9, note=36, velocity=100),
        mido.Message("note_off", channel=0, note=60),
        mido.Message("control_change", channel=15, control=123, value=0),
        mido.Message("program_change", channel=3, program=48),
        mido.Message("pitchwheel", channel=1, pitch=-8192),
        mido.Message("clock"),
        mido.Message("start"),
        mido.Message("stop"),
        mido.Message("songpos", pos=16383),
    ],
)
def test_valid_messages_reach_the_backend_as_bytes(message):
    port = FakeOutputPort()
    port.send(message)
    assert port.messages == [message]
    assert message_bytes(message) == message.bytes()


def test_invalid_messages_are_refused_before_the_backend():
    port = FakeOutputPort()
    with pytest.raises(PortError, match="meta messages"):
        port.send(mido.MetaMessage("set_tempo", tempo=500000))
    with pytest.raises(PortError, match="sysex"):
        port.send(mido.Message("sysex", data=[1, 2, 3]))
    with pytest.raises(PortError, match="only mido.Message"):
        port.send([0x90, 60, 100])  # type: ignore[arg-type]
    assert port.sent == []


def test_send_after_close_says_the_port_is_closed():
    port = FakeOutputPort("DAW")
    port.close()
    port.close()  # idempotent
    with pytest.raises(PortError, match="'DAW'.*closed"):
        port.send(mido.Message("note_on", note=60))


def test_send_holds_the_lock_so_backends_never_see_two_sends_at_once():
    class SlowPort(OutputPort):
        def __init__(self):
            super().__init__("slow")
            self.inside = 0
            self.max_inside = 0
            self.count = 0

        def _send(self, data):
            self.inside += 1
            self.max_inside = max(self.max_inside, self.inside)
            time.sleep(0.0005)
            self.count += 1
            self.inside -= 1

    port = SlowPort()
    message = mido.Message("note_on", note=60)
    threads = [
        threading.Thread(target=lambda: [port.send(message) for _ in range(20)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert port.count == 80
    assert port.max_inside == 1


def test_input_callback_only_timestamps_and_enqueues():
    shared: queue.SimpleQueue = queue.SimpleQueue()
    a = FakeInputPort("keys", shared)
    b = FakeInputPort("clock", shared)
    before = time.monotonic()
    a.inject(mido.Message("note_on", note=60, velocity=90))
    b.inject([0xF8])
    after = time.monotonic()
    first, second = shared.get_nowait(), shared.get_nowait()
    assert isinstance(first, ReceivedMidi)
    assert (list(first.data), first.port_name) == ([0x90, 60, 90], "keys")
    assert (list(second.data), second.port_name) == ([0xF8], "clock")
    assert before <= first.time_seconds <= second.time_seconds <= after
    assert a.receive(timeout_seconds=0.01) is None  # the shared queue is empty now


def test_base_classes_need_a_backend():
    with pytest.raises(NotImplementedError):
        OutputPort("x").send(mido.Message("clock"))
    assert InputPort("x").receive(0.0) is None


# --- name matching ----------------------------------------------------------------------------
NAMES = [
    "Midi Through:Midi Through Port-0 14:0",
    "USB Keyboard:USB Keyboard MIDI 1 20:0",
    "DAW:in",
    "DAW 2:in",
]


def test_match_is_case_insensitive_substring():
    assert match_port("usb keyboard", NAMES, "input") == 1
    assert match_port("THROUGH", NAMES, "input") == 0


def test_exact_name_wins_over_substrings():
    assert match_port("daw:in", NAMES, "output") == 2


def test_no_match_is_none():
    assert match_port("Reaper", NAMES, "output") is None


def test_ambiguous_name_lists_the_candidates():
    with pytest.raises(PortError) as info:
        match_port("DAW", NAMES, "output")
    text = str(info.value)
    assert "ambiguous" in text and "'DAW:in'" in text and "'DAW 2:in'" in text
    assert "more of the name" in text


# --- backends ---------------------------------------------------------------------------------
def test_unknown_backend_names_the_choices():
    with pytest.raises(PortError, match="auto, jack, alsa"):
        backends.resolve_backend("coremidi")


def test_no_jack_server_says_how_to_start_one(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "musegan-test-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with pytest.raises(PortError) as info:
        backends.resolve_backend("jack")
    assert "musegan-test-no-such-server" in str(info.value)
    assert "jackd -d dummy" in str(info.value)


def test_no_backend_at_all_says_what_to_start(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "musegan-test-no-such-server")
    monkeypatch.setattr(jack_server.os.path, "exists", lambda path: False)
    with pytest.raises(PortError) as info:
        backends.resolve_backend("auto")
    text = str(info.value)
    assert "jackd -d dummy" in text and "snd-seq" in text
    with pytest.raises(PortError, match="/dev/snd/seq"):
        rtmidi_ports.open_alsa_output("DAW")
    with pytest.raises(PortError, match="snd-seq"):
        backends.describe_ports("alsa")


def test_the_jack_path_never_loads_rtmidi():
    """python-rtmidi bundles a libjack of its own: with JACK-Client's that made two in one
    process (the shared segment mapped twice, and a crash in jack_deactivate in CI)."""
    import subprocess
    import sys

    code = ("import sys; import musegan_live.daemon.run, musegan_live.ports.jack_ports, "
            "musegan_live.ports.backends as b; "
            "print('rtmidi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
