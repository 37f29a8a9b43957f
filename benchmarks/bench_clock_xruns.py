"""What JACK xruns do to MIDI clock ticks: lost at a client, or the whole timeline slipped?

    python benchmarks/bench_clock_xruns.py [--seconds 60] [--bpm 200] [--stall-ms 20]
        [--stall-every-cycles 1500] [--period 64]

A private ``jackd -d dummy`` runs ``jack_midi_clock``; two clients listen to it: the daemon's
own JACK input (``musegan_live.ports.jack_ports``: each tick stamped with its frame, on the frame
clock) and the harness recorder (each tick's frame). A third client stalls its process callback
for ``--stall-ms`` every ``--stall-every-cycles`` cycles, which makes the server xrun. Printed:

- ticks sent, from the clock's frames (first to last tick received by the recorder, at the
  tempo's frames per tick), and ticks each listener received (the difference: lost there);
- wall slip: the wall-clock span of the run minus its frame span, in ms and ticks (on the dummy
  driver, frames stand still during an xrun: what wall-clock stamps, yesterday's, got wrong);
- the daemon's clock follower (``MidiClockFollower``) fed the daemon port's stamps: the position
  it reaches and the ticks it inferred as lost, against the ticks sent.

The machine is shared; the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import queue
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_jack_latency import jack_machine_description  # noqa: E402
from harness.jack_clients import JackMidiRecorder, StallingClient  # noqa: E402
from harness.jack_rig import ClockMaster, JackServer, environment  # noqa: E402
from musegan_live.clock.follower import CLOCK, START, MidiClockFollower  # noqa: E402
from musegan_live.clock.tempo import seconds_per_tick_for_bpm  # noqa: E402
from musegan_live.ports.jack_ports import JackMidiClient  # noqa: E402


def run(seconds: float, bpm: float, stall_ms: float, stall_every: int, period: int) -> dict:
    """One run; returns the counts described in the module docstring."""
    server = JackServer(period_frames=period).start()
    try:
        with environment(server.env):
            recorder = JackMidiRecorder(server, inputs=("in",))
            staller = StallingClient(server, stall_ms, stall_every)
            listener = JackMidiClient("daemon-listener")
            received: queue.SimpleQueue = queue.SimpleQueue()
            listener.open_input(None, received)
            clock = ClockMaster(server, bpm=bpm)
            clock.connect("daemon-listener:in")
            clock.connect(recorder.port_name("in"))
            wall_start = time.monotonic()
            clock.play()
            time.sleep(seconds)
            clock.stop()
            time.sleep(0.3)
            wall_span = time.monotonic() - wall_start - 0.3
            stats = listener.stats()
            listener.close()
            arrivals = []
            while not received.empty():
                item = received.get()
                if item.data and item.data[0] == CLOCK:
                    arrivals.append(item.time_seconds)
            frames = [e.frame for e in recorder.events() if e.data and e.data[0] == CLOCK]
            staller.close()
            rate = recorder.rate
    finally:
        server.stop()
    spt = seconds_per_tick_for_bpm(bpm)
    frame_span = (frames[-1] - frames[0]) / rate
    sent = round(frame_span / spt) + 1
    follower = MidiClockFollower(initial_bpm=bpm, frame_stamps=True)  # as the daemon on JACK
    follower.feed([START], arrivals[0] - 0.001)
    for arrival in arrivals:
        follower.feed([CLOCK], arrival)
    slip = wall_span - frame_span
    return {"sent": sent, "recorder": len(frames), "daemon": len(arrivals),
            "slip_ms": slip * 1000, "slip_ticks": slip / spt,
            "follower": follower.position_ticks, "inferred": follower.missed_ticks,
            "missed": stats["missed_cycles"], "xruns": stats["xruns"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bpm", type=float, default=200.0)
    parser.add_argument("--stall-ms", type=float, default=20.0)
    parser.add_argument("--stall-every-cycles", type=int, default=1500,
                        help="0: no stalling client")
    parser.add_argument("--period", type=int, default=64)
    args = parser.parse_args()
    print(jack_machine_description())
    r = run(args.seconds, args.bpm, args.stall_ms, args.stall_every_cycles, args.period)
    print(f"{args.seconds:g} s at {args.bpm:g} BPM, -p {args.period}, a client stalling "
          f"{args.stall_ms:g} ms every {args.stall_every_cycles} cycles")
    print(f"{'ticks sent':>10} {'recorder':>9} {'daemon':>7} {'wall slip ms':>12} "
          f"{'slip ticks':>10} {'follower':>9} {'inferred':>9} {'off by':>7} {'xruns':>6} "
          f"{'missed':>6}")
    print(f"{r['sent']:10d} {r['recorder']:9d} {r['daemon']:7d} {r['slip_ms']:12.1f} "
          f"{r['slip_ticks']:10.1f} {r['follower']:9d} {r['inferred']:9d} "
          f"{r['follower'] - r['sent']:+7d} {r['xruns']:6d} {r['missed']:6d}")


if __name__ == "__main__":
    main()
