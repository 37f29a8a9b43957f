"""Soak test: the live daemon for N minutes at 200 BPM through a real JACK server.

    python benchmarks/soak.py --model exported_models/default [--minutes 30] [--bpm 200]
        [--period 64] [--no-realtime] [--threshold model|dense|T]

``jack_midi_clock`` drives the daemon (a subprocess, as a user runs it) while a player client
plays chords on every beat and a JACK-Client recorder stamps the clock and everything the
daemon sends; a third client stalls its cycle now and then (``--stall-ms`` every
``--stall-every-cycles``), so the server xruns. After the run, one line per minute reports:

- alignment: note bursts per minute, how many came after an odd tick (a step late, or a
  position off by a tick: a drifting position makes this climb towards 100 %), and the
  tick -> note latency p50 / p99;
- memory: the daemon's resident set size (RSS);
- recorder lost: ticks the recording client itself lost in xruns (the reference positions
  come from the frames, so this does not disturb the comparison).

At the end the clock stops; the daemon logs the position where it saw Stop, which is compared
with the true one (from the clock's frames): the position drift in ticks over the whole run. Late
plans (inference that missed its step) and dropped late notes come from the daemon's status.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_jack_latency import (  # noqa: E402
    burst_onsets,
    first_tick_frame,
    jack_machine_description,
)
from harness.jack_clients import JackMidiPlayer, JackMidiRecorder, StallingClient  # noqa: E402
from harness.jack_rig import ClockMaster, DaemonProcess, JackServer  # noqa: E402
from harness.piano_part import model_playing_every_track, play_piano  # noqa: E402

CHUNK_SECONDS = 10.0
#: how far ahead of JACK's frame clock the piano part is kept scheduled
LEAD_SECONDS = 2.0


class Alignment:
    """Tick -> note statistics over recorder chunks, positions from the clock's frames."""

    def __init__(self, rate: int, bpm: float) -> None:
        self.rate = rate
        self.frames_per_tick = rate * 60.0 / (bpm * 24)
        self.first_tick: float | None = None
        self.last_tick: int | None = None
        self.stop_frame: int | None = None

    def position(self, frame: float) -> int:
        assert self.first_tick is not None
        return round((frame - self.first_tick) / self.frames_per_tick)

    def add(self, events) -> tuple[int, int, list[float], int]:
        """(bursts, odd bursts, latencies in ms, ticks the recorder lost) of one chunk."""
        ticks = [] if self.last_tick is None else [self.last_tick]
        for event in events:
            if event.port != "clock":
                continue
            if event.data[0] == 0xF8:
                ticks.append(event.frame)
            elif event.data[0] == 0xFA and self.first_tick is None:
                start = event.frame
                following = [e.frame for e in events if e.port == "clock" and e.data[0] == 0xF8
                             and e.frame > start]
                self.first_tick = first_tick_frame(following, start, self.frames_per_tick)
            elif event.data[0] == 0xFC and self.stop_frame is None:
                self.stop_frame = event.frame
        if not ticks or self.first_tick is None:
            return 0, 0, [], 0
        lost = self.position(ticks[-1]) - self.position(ticks[0]) - (len(ticks) - 1)
        self.last_tick = ticks[-1]
        frames = np.array(ticks)
        odd, latencies, bursts = 0, [], 0
        for onset in burst_onsets([e for e in events if e.port == "in"]):
            index = int(np.searchsorted(frames, onset, side="right")) - 1
            if index < 0:
                continue
            bursts += 1
            position = self.position(frames[index])
            step_tick = self.first_tick + (position - position % 2) * self.frames_per_tick
            odd += position % 2
            latencies.append((onset - step_tick) / self.rate * 1000)
        return bursts, odd, latencies, lost


def report_minutes(chunks, alignment: Alignment, rss: list[float]) -> None:
    """One line per minute of the run (computed after it, see ``soak``)."""
    print(f"{'min':>4} {'bursts':>7} {'odd':>5} {'lat p50':>8} {'p99':>7} {'RSS':>7} "
          f"{'recorder lost':>14}")
    minute = {"bursts": 0, "odd": 0, "lat": [], "lost": 0}
    next_minute = 1.0
    for index, (minutes, events) in enumerate(chunks):
        bursts, odd, lat, lost = alignment.add(sorted(events, key=lambda e: e.frame))
        minute["bursts"] += bursts
        minute["odd"] += odd
        minute["lat"] += lat
        minute["lost"] += lost
        last = index == len(chunks) - 1
        if minutes >= next_minute - 1e-6 or (last and minute["bursts"]):
            lat_ms = np.array(minute["lat"] or [float("nan")])
            rss_now = rss[min(index + 1, len(rss) - 1)]
            print(f"{minutes:>4.0f} {minute['bursts']:>7} {minute['odd']:>5} "
                  f"{np.percentile(lat_ms, 50):>5.2f} ms {np.percentile(lat_ms, 99):>7.2f} "
                  f"{rss_now:>4.0f} MB {minute['lost']:>14}")
            minute = {"bursts": 0, "odd": 0, "lat": [], "lost": 0}
            next_minute = np.floor(minutes) + 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "exported_models" / "default")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--bpm", type=float, default=200.0)
    parser.add_argument("--period", type=int, default=64)
    parser.add_argument("--no-realtime", action="store_true")
    parser.add_argument("--threshold", default="model",
                        help="note threshold: 'model' (its own, as a user hears it), 'dense' "
                             "(low enough that a barely trained model plays every track), or "
                             "a number")
    parser.add_argument("--stall-ms", type=float, default=20.0,
                        help="a client that stalls its JACK cycle this long ...")
    parser.add_argument("--stall-every-cycles", type=int, default=1500,
                        help="... every this many cycles, so the server xruns (0: none)")
    parser.add_argument("--verbose", action="store_true",
                        help="run the daemon with -v and print its clock diagnostics")
    args = parser.parse_args(argv)
    if not (args.model / "model.yaml").is_file():
        parser.error(f"no exported model at {args.model}; pass --model DIR")
    threshold = None if args.threshold in ("model", "dense") else float(args.threshold)
    print(f"machine: {jack_machine_description()}")
    server = JackServer(period_frames=args.period, realtime=not args.no_realtime).start()
    print(f"{server.describe()}; model {args.model} (threshold {args.threshold}); "
          f"{args.bpm:g} BPM for {args.minutes:g} min; a client stalling {args.stall_ms:g} ms "
          f"every {args.stall_every_cycles} cycles")
    with tempfile.TemporaryDirectory() as tmp:
        if args.threshold == "dense":  # a start threshold per track at which each one plays
            args.model = model_playing_every_track(args.model, Path(tmp))
        try:
            return soak(server, args, threshold, Path(tmp))
        finally:
            server.stop()


def soak(server: JackServer, args: argparse.Namespace, threshold: float | None,
         log_dir: Path) -> int:
    recorder = JackMidiRecorder(server, inputs=("in", "clock"))
    player = JackMidiPlayer(server)
    clock = ClockMaster(server, bpm=args.bpm)
    clock.connect(recorder.port_name("clock"))
    own = [] if threshold is None else ["--threshold", f"{threshold:.6f}"]
    daemon = DaemonProcess(server, ["--model", str(args.model), "--backend", "jack",
                                    "--in", player.port_name, "--out", recorder.port_name("in"),
                                    "--clock", "external", "--seed", "1", *own,
                                    *(["-v"] if args.verbose else [])],
                           log_dir)
    alignment = Alignment(recorder.rate, args.bpm)
    staller = StallingClient(server, args.stall_ms, args.stall_every_cycles)
    try:
        if not daemon.wait_for_log("musegan-live ready", 60.0):
            print(daemon.log())
            return 1
        clock.connect(player.peer_of("musegan-live"))
        next_frame = player.now_frame() + 4800
        beat_frames = round(recorder.rate * 60.0 / args.bpm)
        clock.play()
        started = time.monotonic()
        rss = [daemon.rss_kib() / 1024]
        chunks: list[tuple[float, list]] = []  # (minutes since start, events)
        end = started + args.minutes * 60.0
        # Only light work while the clock runs: this process's JACK clients (player, recorder)
        # need the GIL in every JACK cycle, and a late client makes the whole graph late.
        while time.monotonic() < end:
            beats = 4 * int(CHUNK_SECONDS * args.bpm / 60.0 / 4)  # whole bars: chords on bars
            play_piano(player, beats * 60.0 / args.bpm, bpm=args.bpm, first_frame=next_frame)
            next_frame += beats * beat_frames
            # the next chunk goes out by JACK's frames, LEAD_SECONDS before the part runs out
            # (sleeping CHUNK_SECONDS of wall time let the part fall behind by 0.1 s and more a
            # chunk, until whole chunks left at once, in the past: the band heard silence)
            refill_frame = next_frame - round(LEAD_SECONDS * recorder.rate)
            while player.now_frame() < refill_frame and time.monotonic() < end:
                time.sleep(0.25)
            chunks.append(((time.monotonic() - started) / 60.0, recorder.drain(sort=False)))
            rss.append(daemon.rss_kib() / 1024)
            if daemon.process.poll() is not None:
                print(f"the daemon exited early:\n{daemon.log()[-3000:]}")
                return 1
        clock.stop()
        time.sleep(0.5)
        chunks.append(((time.monotonic() - started) / 60.0, recorder.drain(sort=False)))
        report_minutes(chunks, alignment, rss)
        # the position after the last tick before Stop, from the frames
        assert alignment.stop_frame is not None and alignment.first_tick is not None
        elapsed_frames = alignment.stop_frame - alignment.first_tick
        counted = int(elapsed_frames // alignment.frames_per_tick) + 1
        daemon.signal(signal.SIGTERM)
        daemon.wait(10)
    finally:
        staller.close()
        daemon.close()
        clock.close()
        recorder.close()
        player.close()
    log = daemon.log()
    if args.verbose:
        print("\n".join(line for line in log.splitlines()
                        if "tick(s) lost" in line or "gap" in line or "repeat" in line))
    stops = re.findall(r"clock stop at \S+ \(tick (\d+)", log)
    statuses = re.findall(r"late plans (\d+)", log)
    sender = re.findall(r"'late_dropped': (\d+)", log)
    daemon_position = int(stops[-1]) if stops else None
    print()
    print(f"position at Stop: from the clock's frames {counted}, daemon {daemon_position} "
          f"(drift {None if daemon_position is None else daemon_position - counted} ticks)")
    print(f"memory: RSS {rss[0]:.0f} MB at start, max {max(rss):.0f} MB, {rss[-1]:.0f} MB at end "
          f"({(rss[-1] - rss[0]) / max(args.minutes, 1e-9):+.2f} MB/min)")
    print(f"late plans {statuses[-1] if statuses else '?'}; late note-ons dropped by the sender "
          f"{sender[-1] if sender else '?'}; xruns (jackd) "
          f"{len(re.findall('XRun', server.log_path.read_text(errors='replace')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
