"""A real JACK world for tests and benchmarks: server, clock master, player, recorder, daemon.

- ``JackServer``: ``jackd -n NAME -R -d dummy -r 48000 -p 64`` (``--no-realtime`` where ``-R``
  is refused), private name, clients get ``JACK_DEFAULT_SERVER`` / ``JACK_NO_START_SERVER=1``.
- ``ClockMaster``: ``jack_midi_clock -b BPM [-J PERCENT]`` driven by ``jack_transport``
  (play / stop / locate, optionally as timebase master so that it sends Song Position).
- ``JackMidiRecorder``: a JACK-Client input that stamps each event with its absolute frame.
- ``JackMidiPlayer``: a JACK-Client output that emits events at given absolute frames.
- ``DaemonProcess``: ``python -m musegan_live.cli ...`` as a subprocess with its log captured.

Frames are JACK's sample clock (``client.last_frame_time + offset``), the same for every
client of a server, so latencies and onset deviations are exact to the sample.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
JACK_TOOLS = ("jackd", "jack_midi_clock", "jack_transport", "jack_connect", "jack_lsp")
_names = itertools.count()


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the test process dies, so that a crashed test
    run leaves no jackd or daemon behind (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def _popen(args: Sequence[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(list(args), preexec_fn=_die_with_parent, **kwargs)


def end_process(process: subprocess.Popen, timeout_seconds: float = 5.0) -> None:
    """Terminate ``process`` if it still runs; kill it if it does not end in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout_seconds)


def missing_jack_tools() -> list[str]:
    """The JACK programs (and the JACK-Client package) this harness needs that are missing."""
    missing = [tool for tool in JACK_TOOLS if shutil.which(tool) is None]
    try:
        import jack  # noqa: F401
    except (ImportError, OSError):
        missing.append("python package JACK-Client (with libjack)")
    return missing


def unique_server_name(prefix: str = "mglt") -> str:
    return f"{prefix}{os.getpid()}x{next(_names)}"


def jack_env(server_name: str, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["JACK_DEFAULT_SERVER"] = server_name
    env["JACK_NO_START_SERVER"] = "1"
    return env


@contextlib.contextmanager
def environment(env: dict[str, str]):
    """Temporarily use ``env`` as this process's environment (for in-process JACK clients)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class JackServer:
    """A private ``jackd`` with the dummy driver."""

    def __init__(
        self,
        name: str | None = None,
        *,
        period_frames: int = 64,
        rate: int = 48000,
        realtime: bool = True,
    ) -> None:
        self.name = name or unique_server_name()
        self.period_frames = period_frames
        self.rate = rate
        self.want_realtime = realtime
        self.realtime = realtime
        self.env = jack_env(self.name)
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"jackd-{self.name}.log"
        self._killed = False

    @property
    def period_seconds(self) -> float:
        return self.period_frames / self.rate

    def _command(self, realtime: bool) -> list[str]:
        mode = "-R" if realtime else "--no-realtime"
        return ["jackd", "-n", self.name, mode, "-d", "dummy",
                "-r", str(self.rate), "-p", str(self.period_frames)]

    def start(self, timeout_seconds: float = 10.0) -> JackServer:
        self._killed = False
        modes = [True, False] if self.want_realtime else [False]
        errors = []
        for realtime in modes:
            log = self.log_path.open("w")
            self.process = _popen(
                self._command(realtime), stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
            log.close()
            if self._wait_ready(timeout_seconds):
                self.realtime = realtime
                return self
            errors.append(self.log_path.read_text(errors="replace")[-800:])
            self.stop()
        raise RuntimeError(f"jackd {self.name!r} did not start:\n" + "\n---\n".join(errors))

    def _wait_ready(self, timeout_seconds: float) -> bool:
        import jack

        deadline = time.monotonic() + timeout_seconds
        socket = Path(f"/dev/shm/jack_{self.name}_{os.getuid()}_0")
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            if not socket.exists():  # probing earlier only makes libjack print errors
                time.sleep(0.02)
                continue
            try:
                client = jack.Client("harness-probe", no_start_server=True, servername=self.name)
            except jack.JackError:
                time.sleep(0.05)
                continue
            client.close()
            return True
        return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (then SIGKILL), wait, and remove semaphores the server's clients left.

        A server that was killed left its entry in JACK's registry of servers (which holds
        eight); only a server of the same name reclaims it, so one is started and stopped."""
        if self.process is None and self._killed:
            self._killed = False
            with contextlib.suppress(RuntimeError):
                self.start()
        if self.process is not None:
            end_process(self.process)
        self.process = None
        self._cleanup_shm()
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def kill(self) -> None:
        """SIGKILL the server (a crash, for the fault tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None
            self._killed = True

    def _cleanup_shm(self) -> None:
        shm = Path("/dev/shm")
        if shm.is_dir():
            leftovers = [*shm.glob(f"jack_sem.*_{self.name}_*"), *shm.glob(f"jack_{self.name}_*")]
            for path in leftovers:
                with contextlib.suppress(OSError):
                    path.unlink()

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> str:
        mode = "-R" if self.realtime else "--no-realtime"
        return f"jackd -n {self.name} {mode} -d dummy -r {self.rate} -p {self.period_frames}"


def jack_connect(server: JackServer, source: str, destination: str, attempts: int = 5) -> None:
    """``jack_connect`` (a port registered a moment ago may need another try)."""
    for _ in range(attempts):
        done = subprocess.run(["jack_connect", source, destination], env=server.env,
                              capture_output=True, text=True, timeout=10)
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"jack_connect {source} {destination} failed: "
                       f"{done.stdout.strip()} {done.stderr.strip()}")


def wait_for_jack_ports(server: JackServer, wanted: set[str], timeout_seconds: float,
                        process: subprocess.Popen | None = None) -> bool:
    """Whether all ``wanted`` port names showed up in ``jack_lsp`` within ``timeout_seconds``
    (False at once if ``process``, the program that registers them, ends first)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        ports = subprocess.run(["jack_lsp"], env=server.env, capture_output=True,
                               text=True, timeout=10).stdout.split("\n")
        if wanted <= set(ports):
            return True
        if process is not None and process.poll() is not None:
            return False
        time.sleep(0.05)
    return False


class ClockMaster:
    """``jack_midi_clock`` sending MIDI clock while the JACK transport rolls.

    ``timebase_master=True`` makes ``jack_transport`` the timebase master so that
    ``jack_midi_clock`` also sends Song Position Pointer after a ``locate``.
    """

    def __init__(
        self,
        server: JackServer,
        *,
        bpm: float = 120.0,
        jitter_percent: int = 0,
        timebase_master: bool = False,
        resync_delay_seconds: float = 0.1,
        destinations: Sequence[str] = (),
    ) -> None:
        self.server = server
        args = ["jack_midi_clock", "-b", f"{bpm:g}", "-d", f"{resync_delay_seconds:g}"]
        if jitter_percent:
            args += ["-J", str(jitter_percent)]
        args += list(destinations)
        self.clock = _popen(args, env=server.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
        self.transport = _popen(["jack_transport"], env=server.env,
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, text=True)
        self.port = "jack_midi_clock:mclk_out"
        self._wait_for_port()
        if timebase_master:
            self.command("master")
        self.command("stop")
        self.command("locate 0")

    def _wait_for_port(self, timeout_seconds: float = 5.0) -> None:
        if not wait_for_jack_ports(self.server, {self.port}, timeout_seconds, self.clock):
            raise RuntimeError("jack_midi_clock did not register its port")

    def command(self, text: str) -> None:
        assert self.transport.stdin is not None
        self.transport.stdin.write(text + "\n")
        self.transport.stdin.flush()

    def connect(self, destination: str) -> None:
        jack_connect(self.server, self.port, destination)

    def play(self) -> None:
        self.command("play")

    def stop(self) -> None:
        self.command("stop")

    def locate(self, frame: int) -> None:
        self.command(f"locate {frame}")

    def kill_clock(self) -> None:
        """The clock master dies (no Stop is sent): ticks simply end."""
        self.clock.kill()
        self.clock.wait(5)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.command("stop")
            self.command("exit")
        for process in (self.transport, self.clock):
            end_process(process)


@dataclass(frozen=True)
class RecordedEvent:
    frame: int  # absolute JACK frame
    data: bytes
    port: str  # short name of the recorder port it came in on


class JackMidiRecorder:
    """A JACK client with MIDI inputs that records every event with its absolute frame.

    The client runs in a process of its own (``harness/recorder_process.py``): a Python process
    callback in the test's process waits for that process's GIL and, under load, missed cycles
    and the events in them. The test process holds no JACK client for it.
    """

    def __init__(self, server: JackServer, name: str = "pytest-recorder",
                 inputs: Sequence[str] = ("in",)) -> None:
        self.server = server
        self.inputs = list(inputs)
        self.name = name
        self._events: list[RecordedEvent] = []
        self._lock = threading.Lock()
        self._synced = threading.Condition(self._lock)
        self._syncs = 0
        self._now_frames: list[int] = []
        self.server_gone = False
        script = Path(__file__).with_name("recorder_process.py")
        self.process = _popen([sys.executable, str(script), server.name, name, *self.inputs],
                              env=server.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, bufsize=1)
        ready = self.process.stdout.readline().split()
        if not ready or ready[0] != "READY":
            end_process(self.process)
            raise RuntimeError(f"the recorder process did not start ({ready!r})")
        self.rate, self.period_frames = int(ready[1]), int(ready[2])
        self._reader = threading.Thread(target=self._read, name="recorder-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            kind, *rest = line.split()
            with self._lock:
                if kind == "E":
                    frame, index, data = rest
                    self._events.append(RecordedEvent(int(frame), bytes.fromhex(data),
                                                      self.inputs[int(index)]))
                elif kind == "SYNC":
                    self._syncs += 1
                    self._synced.notify_all()
                elif kind == "NOW":
                    self._now_frames.append(int(rest[0]))
                    self._synced.notify_all()
                elif kind == "GONE":
                    self.server_gone = True
        with self._lock:  # the process ended: nobody waits for a sync any more
            self._syncs = -1
            self._synced.notify_all()

    def _ask(self, command: str) -> bool:
        try:
            self.process.stdin.write(f"{command}\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def _sync(self, timeout_seconds: float = 2.0) -> None:
        """Wait until every event the process captured so far has arrived here."""
        with self._lock:
            if self._syncs < 0 or self.process.poll() is not None:
                return
            wanted = self._syncs + 1
        if self._ask("sync"):
            with self._lock:
                self._synced.wait_for(lambda: self._syncs < 0 or self._syncs >= wanted,
                                      timeout_seconds)

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

    def now_frame(self, timeout_seconds: float = 2.0) -> int:
        """JACK's current frame, as the recorder's client reads it."""
        with self._lock:
            self._now_frames.clear()
        if not self._ask("now"):
            raise RuntimeError("the recorder process has ended")
        with self._lock:
            if not self._synced.wait_for(lambda: self._now_frames or self._syncs < 0,
                                         timeout_seconds) or not self._now_frames:
                raise RuntimeError("the recorder process did not say the frame")
            return self._now_frames[-1]

    def seconds(self, frames: int) -> float:
        return frames / self.rate

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(3.0)  # it leaves the server itself
        end_process(self.process)
        self._reader.join(timeout=2.0)


class JackMidiPlayer:
    """A JACK client with one MIDI output that sends events at chosen absolute frames."""

    def __init__(self, server: JackServer, name: str = "pytest-player") -> None:
        import jack

        self.server = server
        self.client = jack.Client(name, no_start_server=True, servername=server.name)
        self.port = self.client.midi_outports.register("out")
        self._heap: list[tuple[int, int, bytes]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self.server_gone = False
        self.client.set_shutdown_callback(self._on_shutdown)
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.rate = self.client.samplerate

    def _on_shutdown(self, _status: object, _reason: str) -> None:
        self.server_gone = True

    @property
    def port_name(self) -> str:
        return self.port.name

    def _process(self, frames: int) -> None:
        self.port.clear_buffer()
        start = self.client.last_frame_time
        end = start + frames
        with self._lock:
            while self._heap and self._heap[0][0] < end:
                frame, _, data = heapq.heappop(self._heap)
                self.port.write_midi_event(max(0, frame - start), data)

    def send_at(self, frame: int, data: Iterable[int]) -> None:
        with self._lock:
            heapq.heappush(self._heap, (frame, next(self._seq), bytes(data)))

    def send_now(self, data: Iterable[int]) -> None:
        self.send_at(0, data)

    def now_frame(self) -> int:
        return self.client.frame_time

    def pending(self) -> int:
        with self._lock:
            return len(self._heap)

    def close(self) -> None:
        if self.server_gone:  # libjack may crash closing a client of a dead server: leave it
            return
        with contextlib.suppress(Exception):
            self.client.deactivate()
        self.client.close()


def wait_until(predicate, timeout_seconds: float, interval_seconds: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_seconds)
    return bool(predicate())


class DaemonProcess:
    """``python -m musegan_live.cli ARGS`` against a JACK server, log captured to a file."""

    def __init__(self, server: JackServer, args: Sequence[str], log_dir: Path,
                 *, module: str = "musegan_live.cli") -> None:
        self.server = server
        self.log_path = Path(log_dir) / f"daemon-{next(_names)}.log"
        env = dict(server.env)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self._log = self.log_path.open("w")
        self.args = [sys.executable, "-m", module, *args]
        self.started_seconds = time.monotonic()
        self.process = _popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                              cwd=REPO_ROOT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_seconds: float) -> bool:
        return wait_until(lambda: text in self.log() or self.process.poll() is not None,
                          timeout_seconds) and text in self.log()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout_seconds: float = 10.0) -> int:
        return self.process.wait(timeout_seconds)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._log.close()

    def rss_kib(self) -> int:
        """Resident set size of the daemon now (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def private_kib(self) -> int:
        """Private memory of the daemon now: resident pages no other process maps (RSS less
        shared memory such as JACK's segment and shared libraries), from smaps_rollup."""
        total = 0
        for line in Path(f"/proc/{self.process.pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
        return total


# --- the piano part the tests and benchmarks play ---------------------------------------------
#: one chord per bar, struck on every beat (MIDI pitches, channel 1)
CHORDS = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
BEAT_FRAMES_120 = 24_000  # one beat at 120 BPM and 48 kHz


def play_piano(player: JackMidiPlayer, seconds: float, *, bpm: float = 120.0,
               start_delay_frames: int = 4_800, first_frame: int | None = None) -> int:
    """Schedule the chords on every beat for ``seconds``; returns how many note-ons."""
    beat_frames = round(player.rate * 60.0 / bpm)
    first = player.now_frame() + start_delay_frames if first_frame is None else first_frame
    count = 0
    for beat in range(int(seconds * bpm / 60.0)):
        frame = first + beat * beat_frames
        for pitch in CHORDS[(beat // 4) % 4]:
            player.send_at(frame, [0x90, pitch, 80 + beat % 20])
            player.send_at(frame + beat_frames * 9 // 10, [0x80, pitch, 0])
            count += 1
    return count


def piano_part_thresholds(model_dir: Path) -> dict[str, float]:
    """Per output track, a start threshold at which a (barely trained) model plays it to
    ``CHORDS``: the track's 90th percentile of probabilities over the steps that sound live,
    i.e. the steps of the planned bar not heard yet, planned as the engine plans (bars 1-3
    heard, the bar itself heard for 0, 1, 2 or 3 beats), with a few latent vectors.

    Tiny test models' probabilities sit far apart per track, and apart between heard and
    unheard steps: at one common threshold some tracks never sound while others sound on
    every pitch."""
    import numpy as np

    from musegan_live.model.inference import Accompanist
    from musegan_live.representation import (
        LOWEST_PITCH,
        STEPS_PER_BAR,
        STEPS_PER_BEAT,
        TRACK_NAMES,
    )

    accompanist = Accompanist.from_dir(model_dir)
    condition = np.zeros((4, 48, 84), np.float32)
    for bar in range(4):
        for beat in range(4):
            start = beat * STEPS_PER_BEAT
            for pitch in CHORDS[bar]:
                condition[bar, start : start + 10, pitch - LOWEST_PITCH] = 1.0
    rng = np.random.default_rng(0)
    unheard = []
    for beats_heard in range(4):
        mask = np.zeros((4, 4, 48), np.float32)
        mask.reshape(4, -1)[:, : 3 * STEPS_PER_BAR + beats_heard * STEPS_PER_BEAT] = 1.0
        z = accompanist.sample_z(rng, 4).astype(np.float32)
        probabilities = accompanist.probabilities(np.repeat(condition[None], 4, 0), mask, z)
        unheard.append(probabilities[:, 3, beats_heard * STEPS_PER_BEAT :].reshape(
            -1, probabilities.shape[-1]))
    cells = np.concatenate(unheard)
    return {TRACK_NAMES[track]: float(np.quantile(cells[:, k], 0.9))
            for k, track in enumerate(accompanist.output_tracks)}


def model_playing_every_track(model_dir: Path, dest: Path) -> Path:
    """A copy of ``model_dir`` in ``dest`` whose ``model.yaml`` starts each track at its
    :func:`piano_part_thresholds` (for tests and benchmarks with barely trained models)."""
    from musegan_live.model.model_dir import write_track_thresholds

    copy = dest / f"{Path(model_dir).name}-playing"
    shutil.copytree(model_dir, copy, dirs_exist_ok=True)
    write_track_thresholds(copy, piano_part_thresholds(model_dir))
    return copy
