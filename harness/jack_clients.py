"""The tests' own JACK MIDI clients: a recorder and a player, each in a process of its own.

Both talk to ``harness/client_process.py`` over pipes; the test process holds no JACK client
(a Python process callback there waits for a busy test's GIL and misses cycles; libjack can
crash a process whose server went away). Frames are JACK's sample clock, the same for every
client of a server, so latencies and onset deviations are exact to the sample.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.jack_rig import JackServer, end_process, environment, popen

_SCRIPT = Path(__file__).with_name("client_process.py")


@dataclass(frozen=True)
class RecordedEvent:
    frame: int  # absolute JACK frame
    data: bytes
    port: str  # short name of the recorder port it came in on


class _ClientProcess:
    """One ``client_process.py``: starts it, reads its lines on a thread, asks it things."""

    def __init__(self, server: JackServer, name: str, args: Sequence[str],
                 inputs: Sequence[str] = ()) -> None:
        self.server = server
        self.name = name
        self.inputs = list(inputs)  # before the reader starts: it names events by input
        self._events: list[RecordedEvent] = []
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._answers: dict[str, list[str]] = {}
        self._ended = False
        self.server_gone = False
        self.process = popen([sys.executable, str(_SCRIPT), server.name, name, *args],
                             env=server.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, bufsize=1)
        ready = self.process.stdout.readline().split()
        if not ready or ready[0] != "READY":
            end_process(self.process)
            raise RuntimeError(f"the JACK client process {name!r} did not start ({ready!r})")
        self.rate, self.period_frames = int(ready[1]), int(ready[2])
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            with self._lock:
                if kind == "E":
                    frame, index, data = rest.split()
                    self._events.append(RecordedEvent(int(frame), bytes.fromhex(data),
                                                      self.inputs[int(index)]))
                elif kind == "GONE":
                    self.server_gone = True
                else:
                    self._answers.setdefault(kind, []).append(rest)
                    self._answered.notify_all()
        with self._lock:  # the process ended: nobody waits for an answer any more
            self._ended = True
            self._answered.notify_all()

    def _tell(self, command: str) -> bool:
        try:
            self.process.stdin.write(f"{command}\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def _ask(self, command: str, answer: str, timeout_seconds: float = 2.0) -> str | None:
        """Send ``command`` and wait for the next ``answer`` line (None: no answer came)."""
        with self._lock:
            if self._ended:
                return None
            self._answers.pop(answer, None)
        if not self._tell(command):
            return None
        with self._lock:
            self._answered.wait_for(lambda: self._ended or answer in self._answers,
                                    timeout_seconds)
            got = self._answers.pop(answer, None)
        return None if got is None else got[-1]

    def now_frame(self) -> int:
        """JACK's current frame, as the client process reads it."""
        got = self._ask("now", "NOW")
        if got is None:
            raise RuntimeError(f"the JACK client process {self.name!r} did not say the frame")
        return int(got)

    def close(self) -> None:
        self._tell("quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(3.0)  # it leaves the server itself
        end_process(self.process)
        self._reader.join(timeout=2.0)


class JackMidiRecorder(_ClientProcess):
    """A JACK client with MIDI inputs that records every event with its absolute frame."""

    def __init__(self, server: JackServer, name: str = "pytest-recorder",
                 inputs: Sequence[str] = ("in",)) -> None:
        super().__init__(server, name, [arg for short in inputs for arg in ("--in", short)],
                         inputs)

    def _sync(self) -> None:
        """Wait until every event the process heard so far has arrived here."""
        self._ask("sync", "SYNC")

    def port_name(self, short: str = "in") -> str:
        return f"{self.name}:{short}"

    def events(self, port: str | None = None) -> list[RecordedEvent]:
        self._sync()
        with self._lock:
            events = list(self._events)
        if port is not None:
            events = [e for e in events if e.port == port]
        return sorted(events, key=lambda e: e.frame)

    def clear(self) -> None:
        self._sync()
        with self._lock:
            self._events.clear()

    def drain(self, *, sort: bool = True) -> list[RecordedEvent]:
        """Everything recorded so far (by frame unless ``sort=False``), forgetting it."""
        self._sync()
        with self._lock:
            events, self._events = self._events, []
        return sorted(events, key=lambda e: e.frame) if sort else events

    def seconds(self, frames: int) -> float:
        return frames / self.rate


class JackMidiPlayer(_ClientProcess):
    """A JACK client with one MIDI output that sends events at chosen absolute frames."""

    def __init__(self, server: JackServer, name: str = "pytest-player") -> None:
        super().__init__(server, name, ["--out", "out"])

    @property
    def port_name(self) -> str:
        return f"{self.name}:out"

    def send_at(self, frame: int, data: Iterable[int]) -> None:
        """Queue an event for JACK frame ``frame`` (one already past: the next cycle)."""
        self._tell(f"at {frame} {bytes(data).hex()}")

    def send_now(self, data: Iterable[int]) -> None:
        self.send_at(0, data)

    def pending(self) -> int:
        """Events queued and not yet written (-1: the process did not answer)."""
        got = self._ask("pending", "PENDING")
        return -1 if got is None else int(got)

    def connect(self, destination: str) -> None:
        got = self._ask(f"connect {destination}", "CONNECTED")
        if got is None or not got.startswith("yes"):
            raise RuntimeError(f"cannot connect {self.port_name} to {destination!r}: {got}")

    def peers(self) -> list[str]:
        """The ports the output is connected to."""
        got = self._ask("peers", "PEERS")
        return [] if not got else got.split("\t")

    def peer_of(self, client: str) -> str:
        """The one port of JACK client ``client`` the output is connected to (the daemon's
        input, for a clock master to join)."""
        ports = [port for port in self.peers() if port.startswith(f"{client}:")]
        if len(ports) != 1:
            raise RuntimeError(f"{self.port_name} is connected to {ports} of {client!r}")
        return ports[0]


class StallingClient:
    """A JACK client in this process whose process callback sleeps ``stall_ms`` every
    ``every_cycles`` cycles: the server misses its deadline and xruns, as a badly behaved plug-in
    does (``every_cycles`` 0: it never stalls). Close it before the server stops."""

    def __init__(self, server: JackServer, stall_ms: float, every_cycles: int,
                 name: str = "staller") -> None:
        with environment(server.env):
            import jack

            self._client = jack.Client(name, no_start_server=True, servername=server.name)
        self.cycles = 0

        @self._client.set_process_callback
        def process(_frames: int) -> None:
            self.cycles += 1
            if every_cycles and self.cycles % every_cycles == 0:
                time.sleep(stall_ms / 1000)

        self._client.activate()

    def close(self) -> None:
        self._client.deactivate()
        self._client.close()
