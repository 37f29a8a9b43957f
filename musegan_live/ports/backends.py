"""Which MIDI backend, and the daemon's ports on it: JACK (native) or ALSA (python-rtmidi).

``auto`` is JACK when a JACK server runs, else the ALSA sequencer. Only the chosen backend's
module is imported: on JACK, python-rtmidi (which bundles a second libjack) never loads.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from musegan_live.config.options import BACKENDS, CLIENT_NAME
from musegan_live.errors import PortError
from musegan_live.ports.base import InputPort, OutputPort
from musegan_live.ports.jack_server import (
    START_JACK,
    jack_server_name,
    jack_server_running,
    no_jack_server_message,
)


def _alsa_available() -> bool:
    from musegan_live.ports.rtmidi_ports import alsa_available

    return alsa_available()


def resolve_backend(backend: str = "auto") -> str:
    """The concrete backend ("jack" or "alsa") for ``backend``; PortError if it is not usable."""
    if backend not in BACKENDS:
        raise PortError(f"unknown MIDI backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend in ("auto", "jack") and jack_server_running():
        return "jack"
    if backend == "jack":
        raise PortError(no_jack_server_message())
    if _alsa_available():
        return "alsa"
    from musegan_live.ports.rtmidi_ports import ALSA_MISSING, START_ALSA

    if backend == "alsa":
        raise PortError(ALSA_MISSING)
    raise PortError("no MIDI backend is available: neither a JACK server nor the ALSA "
                    f"sequencer. Either {START_JACK}; or {START_ALSA}")


@dataclass
class DaemonPorts:
    """The daemon's input and outputs on one backend; ``close()`` releases them all."""

    backend: str
    input: InputPort
    outputs: list[OutputPort]
    jack_client: Any = None  # the JackMidiClient on JACK (its counters)

    def stats(self) -> dict[str, int]:
        return self.jack_client.stats() if self.jack_client is not None else {}

    def close(self) -> None:
        """Idempotent: the client and the ports each close once."""
        if self.jack_client is not None:
            self.jack_client.close()  # its ports too; left alone if the server went away
            return
        for port in (self.input, *self.outputs):
            port.close()


def open_daemon_ports(
    backend: str,
    input_name: str | None,
    output_names: Sequence[str | None],
    message_queue: queue.SimpleQueue[Any],
    on_jack_shutdown: Callable[[str], None] | None = None,
) -> DaemonPorts:
    """Open the daemon's ports on ``backend`` (resolved here when "auto")."""
    concrete = resolve_backend(backend)
    if concrete == "jack":
        from musegan_live.ports.jack_ports import open_jack_ports

        client, port, outputs = open_jack_ports(input_name, output_names, message_queue,
                                                on_jack_shutdown)
        return DaemonPorts("jack", port, list(outputs), client)
    from musegan_live.ports.rtmidi_ports import open_alsa_input, open_alsa_output

    opened: list[OutputPort] = []
    try:
        for index, name in enumerate(output_names):
            suffix = "" if index == 0 else str(index + 1)
            opened.append(open_alsa_output(name, client_name=f"{CLIENT_NAME}-out{suffix}"))
        port = open_alsa_input(input_name, client_name=f"{CLIENT_NAME}-in",
                               message_queue=message_queue)
    except BaseException:
        for output in opened:
            output.close()
        raise
    return DaemonPorts("alsa", port, opened)


def describe_ports(backend: str = "auto") -> str:
    """Human-readable listing of MIDI inputs and outputs and the backend in use."""
    concrete = resolve_backend(backend)
    if concrete == "jack":
        from musegan_live.ports.jack_ports import list_jack_ports

        inputs, outputs = list_jack_ports()
        lines = [f"MIDI backend: jack (JACK server {jack_server_name()!r})"]
    else:
        from musegan_live.ports.rtmidi_ports import list_alsa_ports

        inputs, outputs = list_alsa_ports()
        lines = ["MIDI backend: alsa (ALSA sequencer, python-rtmidi)"]
    for title, names in (
        ("Inputs (sources for --in)", inputs),
        ("Outputs (destinations for --out)", outputs),
    ):
        lines.append(f"{title}:")
        lines.extend(f"  {name}" for name in names)
        if not names:
            lines.append("  (none; a name that matches nothing becomes a virtual port)")
    return "\n".join(lines)
