"""Clock tick -> note latency of the live daemon through a real JACK server.

    python benchmarks/bench_jack_latency.py --model exported_models/default
    python benchmarks/bench_jack_latency.py --model DIR --periods 64 256 --modes rt nort \\
        --seconds 8 [--threshold T]

For each JACK period size and realtime mode a private ``jackd -d dummy -r 48000`` is started,
``jack_midi_clock -b 120`` drives the daemon (``python -m musegan_live.cli``, a subprocess, as a
user runs it), a player client plays chords on every beat, and a JACK-Client recorder stamps
every clock tick and every note the daemon sends with its frame. Reported per configuration:

- latency: the first note-on of each step's burst minus the tick that started the step
  (p50 / p99, ms); rtmidi sends in the next JACK cycle, so one period is the floor;
- onset deviation: the same onsets against the ideal grid (the clock's first tick plus
  n * 1000 frames at 120 BPM); jack_midi_clock without jitter puts its ticks exactly there,
  so the two columns agree unless the clock master itself was late (xruns);
- odd: bursts that came after the following (odd) tick, i.e. more than a tick late;
- start-up: process start to "ready" (model loaded and warmed up, ports open, the opening plan
  made), RSS and private memory (RSS less what other processes share: JACK's segment, libraries);
- missed: JACK cycles the daemon's own client missed (its log, from gaps in cycle frames);
- xruns counted by jackd during the run;
- drift: the position (in ticks) at which the daemon saw Stop minus the true one, from the
  clock's frames (0: the daemon's position never slipped).

The machine is shared; the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_description  # noqa: E402
from harness.jack_clients import JackMidiPlayer, JackMidiRecorder  # noqa: E402
from harness.jack_rig import ClockMaster, DaemonProcess, JackServer  # noqa: E402
from harness.piano_part import play_piano  # noqa: E402

TICK_FRAMES_120 = 1000  # at 48 kHz


def jackd_version() -> str:
    out = subprocess.run(["jackd", "--version"], capture_output=True, text=True).stdout
    return out.split("\n")[0].strip() or "jackd"


def jack_machine_description() -> str:
    """The shared machine line plus the jackd version."""
    return machine_description(jackd_version())


def first_tick_frame(tick_frames, start_frame: int, frames_per_tick: float) -> float:
    """Frame of the first tick after Start, on the grid of the ticks that arrived.

    jack_midi_clock at a fixed tempo puts tick ``n`` exactly ``n * frames_per_tick`` after the
    first, so the grid's phase comes from any received tick, and positions from frames rather
    than from counting (the recorder may itself lose ticks in an xrun, even the first)."""
    phase = float(np.median(np.mod(np.asarray(tick_frames, dtype=float), frames_per_tick)))
    k = np.floor((start_frame - phase) / frames_per_tick) + 1
    return phase + k * frames_per_tick


def ticks_with_positions(events, frames_per_tick: float) -> list[tuple[int, int]]:
    """(frame, song position) of each tick the recorder heard after the first Start."""
    start = min(e.frame for e in events if e.data[0] == 0xFA)
    frames = [e.frame for e in events if e.data[0] == 0xF8 and e.frame > start]
    first = first_tick_frame(frames, start, frames_per_tick)
    return [(frame, round((frame - first) / frames_per_tick)) for frame in frames]


def burst_onsets(events, gap_frames: int = 500) -> list[int]:
    """Frame of the first note-on of each burst (the daemon sends a step's notes together)."""
    onsets = [e.frame for e in events if e.data[0] & 0xF0 == 0x90 and e.data[2] > 0]
    firsts, last = [], None
    for frame in onsets:
        if last is None or frame - last > gap_frames:
            firsts.append(frame)
        last = frame
    return firsts


def xruns(server: JackServer) -> int:
    return len(re.findall(r"XRun", server.log_path.read_text(errors="replace")))


def run_config(model: Path, threshold: float | None, period: int, realtime: bool, seconds: float,
               log_dir: Path) -> dict[str, object]:
    server = JackServer(period_frames=period, realtime=realtime).start()
    try:
        xruns_before = xruns(server)
        recorder = JackMidiRecorder(server, inputs=("in", "clock"))
        player = JackMidiPlayer(server)
        clock = ClockMaster(server, bpm=120)
        clock.connect(recorder.port_name("clock"))
        args = ["--model", str(model), "--backend", "jack", "--in", player.port_name,
                "--out", recorder.port_name("in"), "--clock", "external", "--seed", "1"]
        if threshold is not None:
            args += ["--threshold", f"{threshold:.6f}"]
        started = time.monotonic()
        daemon = DaemonProcess(server, args, log_dir)
        try:
            if not daemon.wait_for_log("musegan-live ready", 60.0):
                raise RuntimeError(f"daemon did not start:\n{daemon.log()}")
            startup_seconds = time.monotonic() - started
            rss_start = daemon.rss_kib()
            clock.connect(player.peer_of("musegan-live"))
            play_piano(player, seconds + 1.0)
            clock.play()
            time.sleep(seconds)
            clock.stop()
            time.sleep(0.3)
            rss_end = daemon.rss_kib()
            private_end = daemon.private_kib()
            daemon.signal(signal.SIGTERM)
            daemon.wait(10)
        finally:
            daemon.close()
            clock.close()
        stops = re.findall(r"clock stop at \S+ \(tick (\d+)", daemon.log())
        missed = re.findall(r"'missed_cycles': (\d+)", daemon.log())
        events = recorder.events()
        recorder.close()
        player.close()
        run_xruns = xruns(server) - xruns_before
    finally:
        server.stop()
    rate = 48000
    clock_events = [e for e in events if e.port == "clock"]
    ticks = ticks_with_positions(clock_events, TICK_FRAMES_120)
    start_frame = min(e.frame for e in clock_events if e.data[0] == 0xFA)
    stop_frame = min(e.frame for e in clock_events if e.data[0] == 0xFC)
    tick_frames = np.array([f for f, _ in ticks])
    first_tick = first_tick_frame(tick_frames, start_frame, TICK_FRAMES_120)
    counted = int((stop_frame - first_tick) // TICK_FRAMES_120) + 1  # ticks before Stop
    frame_at = {position: frame for frame, position in ticks}
    latencies, deviations, odd = [], [], 0
    for onset in burst_onsets([e for e in events if e.port == "in"]):
        index = int(np.searchsorted(tick_frames, onset, side="right")) - 1
        if index < 0:
            continue
        position = ticks[index][1]
        odd += position % 2
        step = position - position % 2  # the step boundary this burst belongs to
        ideal = first_tick + step * TICK_FRAMES_120
        latencies.append((onset - frame_at.get(step, ideal)) / rate * 1000)
        deviations.append((onset - ideal) / rate * 1000)
    lat = np.array(latencies)
    dev = np.array(deviations)
    return {
        "period": period,
        "mode": "-R" if server.realtime else "--no-realtime",
        "bursts": len(lat),
        "lat_p50": float(np.percentile(lat, 50)),
        "lat_p99": float(np.percentile(lat, 99)),
        "dev_p50": float(np.percentile(dev, 50)),
        "dev_p99": float(np.percentile(np.abs(dev), 99)),
        "odd": odd,
        "startup": startup_seconds,
        "rss_start": rss_start / 1024,
        "rss_end": rss_end / 1024,
        "private_end": private_end / 1024,
        "missed": int(missed[0]) if missed else None,
        "xruns": run_xruns,
        "drift": int(stops[0]) - counted if stops else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "exported_models" / "default")
    parser.add_argument("--threshold", type=float, default=None,
                        help="one note threshold for every track (default: the model's own)")
    parser.add_argument("--periods", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--modes", nargs="+", choices=("rt", "nort"), default=["rt", "nort"])
    parser.add_argument("--seconds", type=float, default=8.0, help="clock running per config")
    args = parser.parse_args(argv)
    if not (args.model / "model.yaml").is_file():
        parser.error(f"no exported model at {args.model}; pass --model DIR")
    threshold = args.threshold
    print(f"machine: {jack_machine_description()}")
    print(f"model: {args.model} (threshold {threshold or 'of model.yaml'}); 120 BPM, 48 kHz, "
          f"{args.seconds:g} s per configuration")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for period in args.periods:
            for mode in args.modes:
                rows.append(run_config(args.model, threshold, period, mode == "rt",
                                       args.seconds, Path(tmp)))
    header = (f"{'period':>6} {'mode':<14} {'bursts':>6} {'tick->note p50':>14} {'p99':>7} "
              f"{'onset dev p50':>13} {'|p99|':>7} {'odd':>4} {'start-up':>8} "
              f"{'RSS start':>9} {'RSS end':>8} {'private':>8} {'missed':>6} {'xruns':>5} "
              f"{'drift':>5}")
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['period']:>6} {r['mode']:<14} {r['bursts']:>6} {r['lat_p50']:>11.2f} ms "
              f"{r['lat_p99']:>7.2f} {r['dev_p50']:>10.2f} ms {r['dev_p99']:>7.2f} {r['odd']:>4} "
              f"{r['startup']:>6.2f} s {r['rss_start']:>6.0f} MB {r['rss_end']:>5.0f} MB "
              f"{r['private_end']:>5.0f} MB {r['missed']!s:>6} {r['xruns']:>5} {r['drift']!s:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
