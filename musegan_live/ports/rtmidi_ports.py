"""MIDI ports through python-rtmidi: the ALSA sequencer (JACK has its own, ``jack_ports``).

The port classes follow mido's pattern (``musegan_live.ports.base``: the public method validates
and locks, the backend implements one private method). Port names match case-insensitively by
substring (an exact name wins); a name that matches nothing becomes a virtual port of that name
that other programs connect to; a name that matches several ports is an error that lists them.
python-rtmidi bundles a libjack of its own, so it is imported only when ALSA is used.
"""

from __future__ import annotations

import logging
import os
import queue
from typing import Any

from musegan_live.config.options import CLIENT_NAME
from musegan_live.errors import PortError
from musegan_live.ports.base import InputPort, OutputPort, match_port

logger = logging.getLogger(__name__)


START_ALSA = "load the ALSA sequencer (`sudo modprobe snd-seq`) so that /dev/snd/seq exists"
ALSA_MISSING = f"the ALSA sequencer is not available (no /dev/snd/seq): {START_ALSA}"


# --- rtmidi backend ---------------------------------------------------------------------------
def _rtmidi() -> Any:
    try:
        import rtmidi
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise PortError(
            "python-rtmidi is not installed; install it with `pip install python-rtmidi`"
        ) from err
    return rtmidi


def alsa_available() -> bool:
    return os.path.exists("/dev/snd/seq")


def _new_rtmidi(direction: str, client_name: str) -> Any:
    """An rtmidi MidiIn/MidiOut on ALSA; PortError with what to start if impossible."""
    if not alsa_available():
        raise PortError(ALSA_MISSING)
    rtmidi = _rtmidi()
    cls = rtmidi.MidiIn if direction == "in" else rtmidi.MidiOut
    try:
        return cls(rtmidi.API_LINUX_ALSA, name=client_name)
    except rtmidi.RtMidiError as err:
        raise PortError(f"{ALSA_MISSING} ({err})") from err


def _foreign_ports(midi: Any, client_name: str) -> list[tuple[int, str]]:
    """(rtmidi index, name) of ports that do not belong to this program's own clients (named
    ``client_name`` or starting with ``CLIENT_NAME``), so it never connects to itself."""
    own = (client_name.casefold(), CLIENT_NAME.casefold())
    return [
        (index, name)
        for index, name in enumerate(midi.get_ports())
        if not name.casefold().startswith(own)
    ]


class RtMidiOutputPort(OutputPort):
    """An output through python-rtmidi, connected to a port or virtual (sends at once)."""

    def __init__(self, name: str, midi: Any) -> None:
        super().__init__(name)
        self._midi = midi

    def _send(self, data: list[int]) -> None:
        try:
            self._midi.send_message(data)
        except _rtmidi().RtMidiError as err:
            raise PortError(f"MIDI output {self.name!r} failed: {err}") from err

    def _close(self) -> None:
        self._midi.close_port()
        self._midi.delete()


class RtMidiInputPort(InputPort):
    """An input through python-rtmidi; clock bytes are let through (``timing=False``)."""

    def __init__(
        self, name: str, midi: Any, message_queue: queue.SimpleQueue[Any] | None = None
    ) -> None:
        super().__init__(name, message_queue)
        self._midi = midi
        midi.ignore_types(sysex=True, timing=False, active_sense=True)
        midi.set_callback(self._callback)

    def _callback(self, event: tuple[list[int], float], _data: object = None) -> None:
        self._enqueue(event[0])

    def _close(self) -> None:
        self._midi.cancel_callback()
        self._midi.close_port()
        self._midi.delete()


def _open(
    direction: str, name: str | None, client_name: str, own_port_name: str
) -> tuple[Any, str]:
    """Open rtmidi ``direction`` ("in"/"out") for ``name``; return (rtmidi object, port name)."""
    midi = _new_rtmidi(direction, client_name)
    kind = "input" if direction == "in" else "output"
    try:
        if name is None or not name.strip():
            midi.open_virtual_port(own_port_name)
            logger.info("MIDI %s: created virtual port %r (ALSA)", kind, own_port_name)
            return midi, own_port_name
        candidates = _foreign_ports(midi, client_name)
        index = match_port(name, [n for _, n in candidates], kind)
        if index is None:
            midi.open_virtual_port(name)
            logger.info("MIDI %s: no port matches %r, created a virtual port named %r for other "
                        "programs to connect to (ALSA)", kind, name, name)
            return midi, name
        rt_index, port_name = candidates[index]
        midi.open_port(rt_index, own_port_name)
        logger.info("MIDI %s: connected to %r (ALSA)", kind, port_name)
        return midi, port_name
    except PortError:
        midi.delete()
        raise
    except _rtmidi().RtMidiError as err:
        midi.delete()
        raise PortError(f"cannot open MIDI {kind} {name!r} on ALSA: {err}") from err


def open_alsa_input(
    name: str | None,
    *,
    client_name: str = CLIENT_NAME,
    message_queue: queue.SimpleQueue[Any] | None = None,
) -> InputPort:
    """Open an ALSA MIDI input named like ``name`` (None: a virtual port called "in")."""
    midi, port_name = _open("in", name, client_name, "in")
    return RtMidiInputPort(port_name, midi, message_queue)


def open_alsa_output(
    name: str | None, *, client_name: str = CLIENT_NAME, own_port_name: str = "out"
) -> OutputPort:
    """Open an ALSA MIDI output named like ``name`` (None: a virtual port ``own_port_name``)."""
    midi, port_name = _open("out", name, client_name, own_port_name)
    return RtMidiOutputPort(port_name, midi)


def list_alsa_ports() -> tuple[list[str], list[str]]:
    """(input port names, output port names) visible to this program on ALSA."""
    lists = []
    for direction in ("in", "out"):
        midi = _new_rtmidi(direction, f"{CLIENT_NAME}-list")
        try:
            lists.append([name for _, name in _foreign_ports(midi, CLIENT_NAME)])
        finally:
            midi.delete()
    return lists[0], lists[1]
