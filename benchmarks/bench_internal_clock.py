"""The daemon as clock master: how exactly its MIDI clock and its notes leave through JACK.

    python benchmarks/bench_internal_clock.py [--model DIR] [--periods 64 256] [--seconds 10]
        [--bpm 120]

For each period a private ``jackd -d dummy -r 48000`` runs the daemon
(``--clock internal --send-clock``, no sync start) with its output connected to the harness
recorder, which stamps every event with its frame. Reported per period:

- ticks: received, and the ticks the clock's frames say were sent (first to last received, at
  the tempo's frames per tick): the difference was lost on the way (xruns);
- tick error: each received tick's frame minus its ideal frame (the first tick plus n ticks of
  the tempo), p50 / p99 of the absolute value, in frames (0: on the deadline);
- note lag: the first note-on of each step's burst minus that step's tick, p50 / p99 frames;
- missed cycles and xruns the daemon's JACK client counted (its log).

The machine is shared; the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_jack_latency import jack_machine_description  # noqa: E402
from harness.jack_clients import JackMidiRecorder  # noqa: E402
from harness.jack_rig import DaemonProcess, JackServer  # noqa: E402
from harness.piano_part import model_playing_every_track  # noqa: E402


def run(model: Path, period: int, seconds: float, bpm: float) -> dict:
    with JackServer(period_frames=period) as server:
        recorder = JackMidiRecorder(server, inputs=("in",))
        try:
            args = ["--model", str(model), "--backend", "jack", "--out",
                    recorder.port_name("in"), "--clock", "internal", "--bpm", str(bpm),
                    "--send-clock", "--no-clock-sync-start"]
            daemon = DaemonProcess(server, args, Path(tempfile.mkdtemp()))
            try:
                if not daemon.wait_for_log("musegan-live ready", 60.0):
                    raise RuntimeError(f"the daemon did not start:\n{daemon.log()}")
                time.sleep(seconds)
                daemon.signal()
                daemon.wait(15)
            finally:
                daemon.close()
            events = recorder.events("in")
        finally:
            recorder.close()
    frames_per_tick = server.rate * 60.0 / bpm / 24
    ticks = np.array([e.frame for e in events if e.data == b"\xf8"], dtype=np.int64)
    index = np.round((ticks - ticks[0]) / frames_per_tick)
    error = ticks - (ticks[0] + index * frames_per_tick)
    onsets = [e.frame for e in events if e.data[0] & 0xF0 == 0x90 and e.data[2] > 0]
    lags, last = [], None
    for onset in onsets:  # the first onset of each burst against the step (even tick) before it
        if last is None or onset - last > frames_per_tick:
            step = ticks[(index % 2 == 0) & (ticks <= onset)]
            if len(step):
                lags.append(onset - step[-1])
        last = onset
    stats = re.search(r"'missed_cycles': (\d+), 'xruns': (\d+)", daemon.log())
    return {"period": period, "received": len(ticks), "sent": int(index[-1]) + 1,
            "error": np.abs(error), "lags": np.array(lags),
            "missed": stats.group(1) if stats else "?", "xruns": stats.group(2) if stats else "?"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "exported_models" / "default")
    parser.add_argument("--periods", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bpm", type=float, default=120.0)
    args = parser.parse_args(argv)
    model = model_playing_every_track(args.model, Path(tempfile.mkdtemp()))
    print(jack_machine_description())
    print(f"daemon --clock internal --send-clock at {args.bpm:g} BPM, {args.seconds:g} s per row, "
          "frames at 48 kHz")
    print("| period | ticks received / sent | tick error p50 / p99 | note lag p50 / p99 "
          "| missed cycles | xruns |")
    print("|---|---|---|---|---|---|")
    for period in args.periods:
        row = run(model, period, args.seconds, args.bpm)
        lags = row["lags"]
        lag_text = (f"{np.median(lags):.0f} / {np.quantile(lags, 0.99):.0f}" if len(lags)
                    else "no notes")
        print(f"| {period} | {row['received']} / {row['sent']} | "
              f"{np.median(row['error']):.1f} / {np.quantile(row['error'], 0.99):.1f} | "
              f"{lag_text} | {row['missed']} | {row['xruns']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
