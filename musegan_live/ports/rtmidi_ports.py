"""MIDI ports: the rtmidi backend (JACK or ALSA), opening by name, listing, the JACK watch.

The port classes follow mido's pattern (``musegan_live.ports.base``: the public method validates
and locks, the backend implements one private method).

Backends: ``"jack"`` and ``"alsa"`` through python-rtmidi, ``"auto"`` = JACK when a JACK server
is running, else ALSA. Port names match case-insensitively by substring (an exact name wins);
a name that matches nothing becomes a virtual port of that name that other programs connect
to; a name that matches several ports is an error that lists them.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from musegan_live.config.options import BACKENDS, CLIENT_NAME
from musegan_live.errors import PortError
from musegan_live.ports.base import InputPort, OutputPort, match_port

logger = logging.getLogger(__name__)


_START_JACK = (
    "start a JACK server, e.g. `jackd -d dummy -r 48000 -p 64 &` (or `-d alsa` with a sound "
    "card), and make sure JACK_DEFAULT_SERVER names it if it is not 'default'"
)
_START_ALSA = "load the ALSA sequencer (`sudo modprobe snd-seq`) so that /dev/snd/seq exists"


# --- rtmidi backend ---------------------------------------------------------------------------
def _rtmidi() -> Any:
    try:
        import rtmidi
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise PortError(
            "python-rtmidi is not installed; install it with `pip install python-rtmidi`"
        ) from err
    return rtmidi


def _api(backend: str) -> int:
    rtmidi = _rtmidi()
    return {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA}[backend]


def jack_server_name() -> str:
    """The JACK server clients connect to: ``$JACK_DEFAULT_SERVER`` or 'default'."""
    return os.environ.get("JACK_DEFAULT_SERVER") or "default"


def _jack_server_socket_exists() -> bool:
    """Cheap look for a running JACK server (jackd2 and jackd1 socket paths)."""
    server, uid = jack_server_name(), os.getuid()
    candidates = (
        f"/dev/shm/jack_{server}_{uid}_0",  # jackd2
        f"/dev/shm/jack-{uid}/{server}/jack_0",  # jackd1
        f"/tmp/jack_{server}_{uid}_0",
    )
    return any(os.path.exists(path) for path in candidates)


def _new_rtmidi(direction: str, backend: str, client_name: str) -> Any:
    """An rtmidi MidiIn/MidiOut on ``backend``; PortError with what to start if impossible."""
    rtmidi = _rtmidi()
    cls = rtmidi.MidiIn if direction == "in" else rtmidi.MidiOut
    if backend == "jack" and not _jack_server_socket_exists():
        raise PortError(_backend_missing_message("jack"))
    if backend == "alsa" and not os.path.exists("/dev/snd/seq"):
        raise PortError(_backend_missing_message("alsa"))
    try:
        return cls(_api(backend), name=client_name)
    except rtmidi.RtMidiError as err:
        raise PortError(f"{_backend_missing_message(backend)} ({err})") from err


def _backend_missing_message(backend: str) -> str:
    if backend == "jack":
        return f"no JACK server {jack_server_name()!r} is running: {_START_JACK}"
    return f"the ALSA sequencer is not available (no /dev/snd/seq): {_START_ALSA}"


def resolve_backend(backend: str = "auto") -> str:
    """The concrete backend ("jack" or "alsa") for ``backend``; PortError if none is usable."""
    if backend not in BACKENDS:
        raise PortError(f"unknown MIDI backend {backend!r}; use one of {', '.join(BACKENDS)}")
    order = ("jack", "alsa") if backend == "auto" else (backend,)
    problems = []
    for candidate in order:
        try:
            probe = _new_rtmidi("out", candidate, f"{CLIENT_NAME}-probe")
        except PortError as err:
            problems.append(str(err))
            continue
        probe.delete()
        return candidate
    if backend == "auto":
        raise PortError(
            "no MIDI backend is available: neither a JACK server nor the ALSA sequencer. Either "
            f"{_START_JACK}; or {_START_ALSA}"
        )
    raise PortError(problems[0])


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
    """An output through python-rtmidi, connected to a port or virtual.

    ``burst_messages`` / ``burst_window_seconds``: at most that many messages per window; a
    send beyond it waits (a fraction of a millisecond at JACK's usual periods) until the oldest
    one is a window old. rtmidi's JACK output hands everything queued since the last cycle to
    JACK at once, and a JACK MIDI buffer holds a few hundred events per period: beyond that,
    events (note-offs too) are silently lost. With one window = one period and the limit at
    about a quarter of that capacity, a burst (say, a panic ending 300 notes) is spread over a
    few periods instead.
    """

    def __init__(
        self,
        name: str,
        midi: Any,
        *,
        burst_messages: int | None = None,
        burst_window_seconds: float = 0.0,
    ) -> None:
        super().__init__(name)
        self._midi = midi
        self._burst_window = burst_window_seconds
        self._recent: deque[float] | None = (
            deque(maxlen=burst_messages) if burst_messages else None
        )

    def send_delay_seconds(self) -> float:
        recent = self._recent
        if recent is None or len(recent) < (recent.maxlen or 0):
            return 0.0
        return max(0.0, self._burst_window - (time.monotonic() - recent[0]))

    def _send(self, data: list[int]) -> None:
        recent = self._recent
        if recent is not None:
            delay = self.send_delay_seconds()
            if delay > 0:  # only callers that did not ask first (the exit panic) wait here
                time.sleep(delay)
            recent.append(time.monotonic())
        try:
            self._midi.send_message(data)
        except _rtmidi().RtMidiError as err:
            raise PortError(f"MIDI output {self.name!r} failed: {err}") from err

    def _close(self) -> None:
        if self._recent:
            # rtmidi's JACK output hands messages over in JACK's next cycle; give the last ones
            # (a panic, say) a few cycles to leave before the port disappears.
            idle = time.monotonic() - self._recent[-1]
            time.sleep(max(0.0, 4 * self._burst_window + 0.01 - idle))
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
    direction: str, name: str | None, backend: str, client_name: str, own_port_name: str
) -> tuple[Any, str, str]:
    """Open rtmidi ``direction`` ("in"/"out") for ``name``; return (rtmidi object, port name,
    concrete backend)."""
    concrete = resolve_backend(backend) if backend == "auto" else backend
    if concrete not in ("jack", "alsa"):
        raise PortError(f"unknown MIDI backend {backend!r}; use one of {', '.join(BACKENDS)}")
    midi = _new_rtmidi(direction, concrete, client_name)
    kind = "input" if direction == "in" else "output"
    try:
        if name is None or not name.strip():
            midi.open_virtual_port(own_port_name)
            logger.info("MIDI %s: created virtual port %r (%s)", kind, own_port_name, concrete)
            return midi, own_port_name, concrete
        candidates = _foreign_ports(midi, client_name)
        index = match_port(name, [n for _, n in candidates], kind)
        if index is None:
            midi.open_virtual_port(name)
            logger.info(
                "MIDI %s: no port matches %r, created a virtual port named %r for other "
                "programs to connect to (%s)",
                kind,
                name,
                name,
                concrete,
            )
            return midi, name, concrete
        rt_index, port_name = candidates[index]
        midi.open_port(rt_index, own_port_name)
        logger.info("MIDI %s: connected to %r (%s)", kind, port_name, concrete)
        return midi, port_name, concrete
    except PortError:
        midi.delete()
        raise
    except _rtmidi().RtMidiError as err:
        midi.delete()
        raise PortError(f"cannot open MIDI {kind} {name!r} on {concrete}: {err}") from err


def open_input(
    name: str | None,
    *,
    backend: str = "auto",
    client_name: str = CLIENT_NAME,
    message_queue: queue.SimpleQueue[Any] | None = None,
) -> InputPort:
    """Open a MIDI input named like ``name`` (None: a virtual port called "in")."""
    midi, port_name, _ = _open("in", name, backend, client_name, "in")
    return RtMidiInputPort(port_name, midi, message_queue)


def open_output(
    name: str | None,
    *,
    backend: str = "auto",
    client_name: str = CLIENT_NAME,
    own_port_name: str = "out",
) -> OutputPort:
    """Open a MIDI output named like ``name`` (None: a virtual port ``own_port_name``)."""
    midi, port_name, concrete = _open("out", name, backend, client_name, own_port_name)
    if concrete != "jack":
        return RtMidiOutputPort(port_name, midi)
    period_frames, rate = jack_period()
    return RtMidiOutputPort(
        port_name, midi, burst_messages=period_frames, burst_window_seconds=period_frames / rate
    )


def jack_period() -> tuple[int, int]:
    """(frames per period, sample rate) of the JACK server; (64, 48000) if it cannot be
    asked (no JACK-Client package), the small period being the cautious guess."""
    try:
        import jack
    except ImportError:
        return 64, 48000
    try:
        client = jack.Client(
            f"{CLIENT_NAME}-period", no_start_server=True, servername=jack_server_name()
        )
    except jack.JackError as err:
        raise PortError(_backend_missing_message("jack") + f" ({err})") from err
    try:
        return int(client.blocksize), int(client.samplerate)
    finally:
        client.close()


def list_ports(backend: str = "auto") -> tuple[str, list[str], list[str]]:
    """(concrete backend, input port names, output port names) visible to this program."""
    concrete = resolve_backend(backend)
    lists = []
    for direction in ("in", "out"):
        midi = _new_rtmidi(direction, concrete, f"{CLIENT_NAME}-list")
        try:
            lists.append([name for _, name in _foreign_ports(midi, CLIENT_NAME)])
        finally:
            midi.delete()
    return concrete, lists[0], lists[1]


def describe_ports(backend: str = "auto") -> str:
    """Human-readable listing of MIDI inputs and outputs and the backend in use."""
    concrete, inputs, outputs = list_ports(backend)
    where = f"JACK server {jack_server_name()!r}" if concrete == "jack" else "ALSA sequencer"
    lines = [f"MIDI backend: {concrete} ({where}, python-rtmidi)"]
    for title, names in (
        ("Inputs (sources for --in)", inputs),
        ("Outputs (destinations for --out)", outputs),
    ):
        lines.append(f"{title}:")
        lines.extend(f"  {name}" for name in names)
        if not names:
            lines.append("  (none; a name that matches nothing becomes a virtual port)")
    return "\n".join(lines)


# --- JACK server watch ------------------------------------------------------------------------
class JackServerWatch:
    """Calls ``on_shutdown(reason)`` (from a JACK thread) if the JACK server goes away.

    python-rtmidi does not report a vanished server, so a tiny JACK client of our own
    (the JACK-Client package) registers a shutdown callback. ``close()`` detaches it.
    """

    def __init__(self, on_shutdown: Callable[[str], None], client_name: str) -> None:
        import jack  # JACK-Client; ImportError handled by watch_jack_server

        self._fired = False
        self._client = jack.Client(
            f"{client_name}-watch", no_start_server=True, servername=jack_server_name()
        )

        def shutdown(_status: object, reason: str) -> None:
            self._fired = True
            on_shutdown(reason)

        self._client.set_shutdown_callback(shutdown)
        self._client.activate()

    @property
    def fired(self) -> bool:
        return self._fired

    def close(self) -> None:
        """Detach from the server. After the server went away the client is left alone:
        libjack can crash closing a client whose server died (or was restarted meanwhile)."""
        if self._fired:
            return
        try:
            self._client.deactivate()
        except Exception:  # the server may be half gone; closing anyway
            logger.debug("JACK watch client deactivate failed", exc_info=True)
        self._client.close()


def watch_jack_server(
    on_shutdown: Callable[[str], None], client_name: str = CLIENT_NAME
) -> JackServerWatch | None:
    """Start a ``JackServerWatch``; None (with a warning) if JACK-Client is missing."""
    try:
        return JackServerWatch(on_shutdown, client_name)
    except ImportError:
        logger.warning(
            "the JACK-Client package is not installed, so a JACK server shutdown will not be "
            "noticed; install it with `pip install JACK-Client`"
        )
        return None
    except Exception as err:  # jack.JackError, or the server vanished meanwhile
        raise PortError(f"cannot watch JACK server {jack_server_name()!r}: {err}") from err
