"""A real JACK world for tests and benchmarks: server, clock master, daemon (every one a
process of its own; the recorder and player are in ``harness.jack_clients``).

- ``JackServer``: ``jackd -n NAME -R -d dummy -r 48000 -p PERIOD`` (``--no-realtime`` where
  ``-R`` is refused), private name, clients get ``JACK_DEFAULT_SERVER`` /
  ``JACK_NO_START_SERVER=1``.
- ``ClockMaster``: ``jack_midi_clock -b BPM [-J PERCENT]`` driven by ``jack_transport``
  (play / stop / locate, optionally as timebase master so that it sends Song Position).
- ``DaemonProcess``: ``python -m musegan_live.cli ...`` as a subprocess with its log captured.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
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


def popen(args: Sequence[str], **kwargs) -> subprocess.Popen:
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
            self.process = popen(
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
        deadline = time.monotonic() + timeout_seconds
        socket = Path(f"/dev/shm/jack_{self.name}_{os.getuid()}_0")
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            if not socket.exists():  # probing earlier only makes libjack print errors
                time.sleep(0.02)
                continue
            probe = subprocess.run(["jack_lsp"], env=self.env, capture_output=True, timeout=10)
            if probe.returncode == 0:  # a client got in: the server serves
                return True
            time.sleep(0.05)
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
        self.clock = popen(args, env=server.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
        self.transport = popen(["jack_transport"], env=server.env,
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
        self.process = popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=env,
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
