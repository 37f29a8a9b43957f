"""``musegan-live --in ... --out ...``: real ports + clock + session + sender + status line.

Threads (``docs/ARCHITECTURE.md``, "Time in the live path"):

- the MIDI backend's callback (on JACK the process callback of the daemon's one JACK client,
  ``ports.jack_ports``; on ALSA rtmidi's) only stamps and enqueues into one
  ``queue.SimpleQueue`` (and on JACK writes the output due in its cycle);
- the **timing thread** is the queue's only consumer: clock bytes go through the
  ``MidiClockFollower`` and become ``ClockEvent``s for ``Session.handle_clock``; notes go to
  ``Session.handle_player``; it also checks for clock loss and owns the session;
- the session's ``ThreadedPlanner`` runs inference, so the timing thread never waits for it;
- the **sender** thread sends each ``Outgoing`` at its absolute ``due_seconds``;
- the internal clock thread (when it runs) enqueues its ticks like any input;
- the main thread handles signals, the status line and flushing the recording file.

Clock source (``musegan_live.clock.source.ClockSource``): ``external`` follows MIDI clock on
the input;
``internal`` runs its own clock at ``clock.bpm``; ``auto`` runs the internal clock when no
external one came within a second and hands over to an external clock for good once it shows up.
With ``clock.sync_start`` the internal clock waits for the player's first note and starts on
it (after ``clock.count_in_beats`` clicks); the keyboard's start/stop button
(``controls.stop_cc``) stops it (and sync start waits again) or starts it.

Ending: SIGINT/SIGTERM -> pending messages are dropped, every sounding note is ended (note-offs,
CC123, CC64 = 0), exit status 0. If the JACK server goes away the daemon logs it, still sends
the note-offs (they reach nobody if the server is gone for good), and exits with status 1 and
a message to restart it once JACK runs again.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mido

from musegan_live.clock.follower import ClockEvent
from musegan_live.clock.source import ClockSource, InternalTick
from musegan_live.config.live import LiveConfig
from musegan_live.daemon.file_part import FilePart
from musegan_live.daemon.recording import Recording
from musegan_live.daemon.status_line import StatusLine
from musegan_live.errors import MuseganLiveError, PortError
from musegan_live.live.count_in import count_in_clicks
from musegan_live.live.outgoing import Outgoing
from musegan_live.live.sender import OutputSender, describe_sender
from musegan_live.live.stats import StatusSnapshot
from musegan_live.ports.backends import DaemonPorts, open_daemon_ports, resolve_backend
from musegan_live.ports.base import InputPort, OutputPort, ReceivedMidi
from musegan_live.ports.jack_server import jack_server_name
from musegan_live.representation import bar_beat, bpm_for_seconds_per_tick

logger = logging.getLogger(__name__)

RECORD_FLUSH_SECONDS = 1.0
MAIN_LOOP_SECONDS = 0.1
SNAPSHOT_SECONDS = 0.1
#: "ready" waits at most this long for the plan of bar 1 (normally a few milliseconds)
OPENING_PLAN_WAIT_SECONDS = 5.0
GIL_SWITCH_INTERVAL_SECONDS = 0.0005


@dataclass(frozen=True)
class _Shutdown:
    reason: str
    exit_code: int


def run_daemon(config: LiveConfig, *, file_part: FilePart | None = None) -> int:
    """Run the live daemon until SIGINT/SIGTERM (exit status 0) or a fatal problem (non-zero);
    with ``file_part`` (``musegan-live play``) that part is the player, and the daemon ends at
    its end when it runs the internal clock.

    Raises ``MuseganLiveError`` subclasses for problems found while starting (ports, model).
    """
    daemon = Daemon(config, file_part=file_part)
    try:
        daemon.open()
    except BaseException:
        daemon.close()
        raise
    # The JACK process callback (Python, in JACK's realtime thread) must take the GIL first; a
    # thread holding it is asked to let go every switch interval (5 ms by default), and a JACK
    # client that waits that long misses its cycle and loses the MIDI in it (clock ticks too).
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    # Everything made while starting (the model, the tables, the modules) lives to the end: out
    # of the collector's sight, a full collection walks only what the live path makes since.
    gc.collect()
    gc.freeze()
    try:
        return daemon.run()
    finally:
        gc.unfreeze()
        sys.setswitchinterval(switch_interval)


class Daemon:
    """The wiring; ``accompanist``, ports and the status line may be injected (tests)."""

    def __init__(
        self,
        config: LiveConfig,
        *,
        accompanist: Any = None,
        input_port: InputPort | None = None,
        output_ports: Sequence[OutputPort] | None = None,
        status_line: StatusLine | None = None,
        file_part: FilePart | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.file_part = file_part
        self._file_ended = False
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._accompanist = accompanist
        self.input_port = input_port
        self.output_ports: list[OutputPort] = list(output_ports or [])
        self._injected_ports = input_port is not None
        self.status_line = status_line
        self._time = now  # on JACK, open() makes it the JACK frame clock
        self.session: Any = None
        self.sender: OutputSender | None = None
        self.recording: Recording | None = None
        self._ports: DaemonPorts | None = None
        self.clock = ClockSource(config.clock, self.queue, midi_sink=self._send_clock_midi,
                                 now=self._now)
        self._record_input = True
        self._shutdown: _Shutdown | None = None
        self._timing_done = threading.Event()
        self._timing_thread: threading.Thread | None = None
        self.snapshot: StatusSnapshot | None = None
        self._snapshot_at = float("-inf")

    # --- start-up ---------------------------------------------------------------------------
    def open(self) -> None:
        """Load and warm up the model, open ports, build the session."""
        from musegan_live.live.planner import PLANNER_REALTIME_PRIORITY, ThreadedPlanner
        from musegan_live.live.session import Session

        config = self.config
        backend = None
        if not self._injected_ports:
            backend = resolve_backend(config.backend)
        if self._accompanist is None:
            from musegan_live.model.inference import load_accompanist

            started = time.perf_counter()
            self._accompanist = load_accompanist(config)
            self._accompanist.warm_up()
            logger.info("model ready in %.0f ms (loaded and warmed up)",
                        (time.perf_counter() - started) * 1000.0)
        if backend is not None:
            # input.port null: a port of the backend's own default name ("in"), which on JACK
            # sits in the same client as the outputs and so must not be named like them
            self._ports = open_daemon_ports(backend, config.input.port,
                                            config.output_ports(), self.queue,
                                            self._on_server_shutdown)
            self.input_port, self.output_ports = self._ports.input, self._ports.outputs
            if self._ports.jack_client is not None:
                # the timeline of the DAW and the clock master: input stamps, plans and output
                # frames all count JACK frames (jack_ports); ticks are counted by frame gaps
                self._time = self._ports.jack_client.now_seconds
                self.clock.follower.frame_stamps = True
            # the internal clock's ticks come early enough for its MIDI clock and the notes of
            # each step to leave on the tick's deadline
            self.clock.lead_seconds = max((p.lead_seconds for p in self.output_ports),
                                          default=0.0)
        elif self.input_port is not None:
            self.input_port.queue = self.queue
        planner = ThreadedPlanner(now=self._now, realtime_priority=PLANNER_REALTIME_PRIORITY)
        self.session = Session(config, self._accompanist, planner=planner, seed=config.seed,
                               now=self._now, keep_take=False)
        if config.record is not None:
            self.recording = Recording(config.record, now=self._now)
            # With thru the player's notes are recorded as sent, on the track's channel.
            self._record_input = not config.input.thru
        self.sender = OutputSender(
            self.output_ports,
            on_sent=self._record_output if self.recording is not None else None,
            now=self._now,
        )

    def _now(self) -> float:
        """The daemon's clock, seconds: ``time.monotonic()``, or JACK's frame clock on JACK."""
        return self._time()

    def _on_server_shutdown(self, reason: str) -> None:  # a JACK thread
        self.queue.put(_Shutdown(
            f"the JACK server {jack_server_name()!r} went away ({reason}); restart "
            "musegan-live once JACK runs again", PortError.exit_code))

    # --- running ----------------------------------------------------------------------------
    def run(self) -> int:
        """Start the threads, wait for a signal or a fatal problem, end all notes; exit status."""
        assert self.session is not None and self.sender is not None
        restore = self._install_signal_handlers()
        if self.status_line is None:
            self.status_line = StatusLine()
        try:
            self.start()
            logger.info(
                "musegan-live ready: input %r, output %s, clock %s; Ctrl-C to stop",
                self.input_port.name if self.input_port else None,
                ", ".join(repr(p.name) for p in self.output_ports), self.config.clock.source,
            )
            last_flush = self._now()
            while not self._timing_done.wait(MAIN_LOOP_SECONDS):
                if self.snapshot is not None:
                    self.status_line.update(self.snapshot)
                if self.recording is not None and self._now() - last_flush >= RECORD_FLUSH_SECONDS:
                    self.recording.flush()
                    last_flush = self._now()
        finally:
            shutdown = self.stop()
            restore()
            self.close()
        return shutdown.exit_code

    def start(self) -> None:
        """Wait for the opening plan (so "ready" means bar 1 is planned), then send program
        changes and start the sender, timing thread and (maybe) the clock."""
        assert self.session is not None and self.sender is not None
        if not self.session.wait_ready(OPENING_PLAN_WAIT_SECONDS):  # before the timing thread
            logger.warning("the opening plan took over %.0f s; starting without it",
                           OPENING_PLAN_WAIT_SECONDS)
        self.sender.start()
        self.sender.schedule(self.session.start_messages())
        self.clock.start()
        self._publish_snapshot()  # "stopped, waiting" until the clock says otherwise
        self._timing_thread = threading.Thread(target=self._timing_loop, name="musegan-timing",
                                               daemon=True)
        self._timing_thread.start()

    def request_stop(self, reason: str = "stop requested", exit_code: int = 0) -> None:
        """Ask the daemon to end (thread-safe; what the signal handlers call)."""
        self.queue.put(_Shutdown(reason, exit_code))

    def stop(self) -> _Shutdown:
        """End the timing thread and the clock, then all notes off. Returns why it ended."""
        if self._timing_thread is not None and not self._timing_done.is_set():
            self.request_stop()
            self._timing_done.wait(5.0)
        shutdown = self._shutdown or _Shutdown("stopped", 0)
        if shutdown.exit_code:
            logger.error("stopping: %s; sending all notes off where still possible",
                         shutdown.reason)
        else:
            logger.info("stopping (%s): all notes off", shutdown.reason)
        self.clock.stop()
        if self.sender is not None and self.session is not None:
            dropped = self.sender.discard_pending()  # also ends the notes it sent, itself
            if self._timing_thread is None or self._timing_done.is_set():
                for item in self.session.panic():
                    self.sender.send_now(item.port_index, item.message)
            else:  # the session belongs to the timing thread, still running: do not touch it
                logger.error("the timing thread did not stop; its notes were ended by the "
                             "sender, without CC123 / CC64")
            self.sender.stop()
            logger.info("sender: %s, %d pending dropped", describe_sender(self.sender), dropped)
        return shutdown

    def close(self) -> None:
        """Release everything (idempotent); the recording is flushed and closed last."""
        if self.session is not None:
            self.session.close()
            self.session = None
        if self._ports is not None:
            # (after the JACK server went away its client is left to the process exit:
            # closing a client of a dead or restarted server can crash libjack)
            logger.info("MIDI ports (%s): %s", self._ports.backend, self._ports.stats())
            self._ports.close()
            self._ports = None
        elif self._injected_ports:
            for port in (self.input_port, *self.output_ports):
                if port is not None:
                    port.close()
        if self.recording is not None:
            self.recording.close()
        if self.status_line is not None:
            self.status_line.close()

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handler(signum: int, _frame: object) -> None:
            self.request_stop(f"{signal.Signals(signum).name} received", 0)

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)

        def restore() -> None:
            for signum, old in previous.items():
                signal.signal(signum, old)

        return restore

    # --- the timing thread ------------------------------------------------------------------
    def _timing_loop(self) -> None:
        try:
            while True:
                wakeup = self.clock.next_wakeup_seconds()
                timeout = None if wakeup is None else max(0.0, wakeup - self._now())
                try:
                    item = self.queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if isinstance(item, _Shutdown):
                    self._shutdown = item
                    return
                if isinstance(item, ReceivedMidi):
                    self._on_input(item)
                elif isinstance(item, InternalTick):
                    for event in self.clock.internal_event(item):
                        self._on_clock(event)
                for event in self.clock.poll(self._now()):
                    self._on_clock(event)
        except Exception as err:  # keep the notes-off path alive whatever went wrong
            logger.exception("the timing thread failed")
            self._shutdown = _Shutdown(f"internal error: {type(err).__name__}: {err}",
                                       MuseganLiveError.exit_code)
        finally:
            self._timing_done.set()

    def _on_input(self, item: ReceivedMidi) -> None:
        data = item.data
        if not data:
            return
        if data[0] >= 0xF0:
            for event in self.clock.feed_midi(data, item.time_seconds):
                self._on_clock(event)
            return
        try:
            message = mido.Message.from_bytes(list(data))
        except (ValueError, TypeError):
            logger.debug("ignoring malformed MIDI input %r", list(data))
            return
        if self.recording is not None and self._record_input:
            self.recording.record(message, item.time_seconds)
        if self.session.controls.is_stop(message):
            self._start_stop(item.time_seconds)
        self.sender.schedule(self.session.handle_player(message, item.time_seconds))
        if self.clock.armed and self._starts_the_band(message):
            # After the note: it is a key held at Start, so it sounds from beat 1 of bar 1.
            bar_one = self.clock.start_on_note(item.time_seconds)
            beats = self.config.clock.count_in_beats
            if beats:
                self.sender.schedule(count_in_clicks(self.config, item.time_seconds, beats,
                                                     60.0 / self.config.clock.bpm))
            logger.info("sync start: the first note starts the band%s",
                        f" in {bar_one - item.time_seconds:.2f} s" if beats else "")

    def _starts_the_band(self, message: mido.Message) -> bool:
        channel = self.config.input.channel_index
        return (message.type == "note_on" and message.velocity > 0
                and (channel is None or message.channel == channel))

    def _start_stop(self, now_seconds: float) -> None:
        """The keyboard's start/stop button: stops a running internal clock (sync start then
        waits for the next note) or starts a stopped one. An external clock is the DAW's."""
        if self.clock.name == "external" or self.config.clock.source == "external":
            logger.info("start/stop button: the external clock's transport is the DAW's")
        elif self.clock.running_internal:
            for event in self.clock.stop_internal(now_seconds):
                self._on_clock(event)
        else:
            self.clock.start_now(now_seconds)
        self._publish_snapshot()

    def _on_clock(self, event: ClockEvent) -> None:
        if self.file_part is not None:
            self._play_file(event)
        self.sender.schedule(self.session.handle_clock(event))
        if event.kind == "lost":
            logger.warning("MIDI clock lost: no tick for %.2f s at %s; all notes off until the "
                           "clock comes back", self.clock.follower.lost_timeout_seconds,
                           bar_beat(event.position_ticks))
        elif event.kind != "tick":
            logger.info("clock %s at %s (tick %d, %.1f BPM, %s)", event.kind,
                        bar_beat(event.position_ticks), event.position_ticks,
                        bpm_for_seconds_per_tick(event.seconds_per_tick), self.clock.name)
        now = self._now()
        if event.kind != "tick" or now - self._snapshot_at >= SNAPSHOT_SECONDS:
            self._snapshot_at = now
            self._publish_snapshot()

    def _play_file(self, event: ClockEvent) -> None:
        """``musegan-live play``: the file's notes of this tick, heard before its step is
        planned, as a keyboard's would be; the end of the file ends an internal-clock run."""
        part = self.file_part
        if event.kind == "tick":
            messages = part.at_tick(event.position_ticks)
        else:  # start, stop, continue, jump, lost: the notes held end, the part picks up
            messages = part.release()
        for message in messages:
            if self.recording is not None and self._record_input:
                self.recording.record(message, event.time_seconds)
            self.sender.schedule(self.session.handle_player(message, event.time_seconds))
        if event.kind == "tick" and part.finished(event.position_ticks) and not self._file_ended:
            self._file_ended = True
            if self.clock.running_internal:
                self.request_stop(f"end of {part.name}")
            else:
                logger.info("end of %s; the clock goes on (Ctrl-C to stop)", part.name)

    def _publish_snapshot(self) -> None:
        stats = self.session.stats
        self.snapshot = dataclasses.replace(
            stats,
            clock_source=self.clock.name,
            late_messages=stats.late_messages + self.sender.late_dropped,
        )

    def _send_clock_midi(self, message: mido.Message, due_seconds: float) -> None:
        """The internal clock's MIDI (its thread), to every output: at ``due_seconds``, or at
        once (0). Never dropped for lateness."""
        self.sender.schedule([Outgoing(index, message, due_seconds)
                              for index in range(len(self.output_ports))])

    def _record_output(self, _port_index: int, message: mido.Message, sent_seconds: float) -> None:
        self.recording.record(message, sent_seconds)
