"""The whole re-plan, split into its parts: what the worker does between a request and a plan.

    python benchmarks/bench_replan.py [--model DIR [DIR ...]] [--runs 500]

Two paths, taking turns on the same model and machine:

- **bar path** (today's daemon, ``Accompanist.plan_last_bar``): the player's window
  (``Player.window``), the model's inputs, the beat summaries of bars 1-3 (kept from earlier
  plans: a lookup), ``bar_encoder.onnx`` on bar 4, ``bar_generator.onnx`` (the context over the
  16 beats and the generator of bar 4), decoding that one bar with what sounded before it;
- **window path** (the daemon before it): the same window and inputs, the whole-window encoder
  and generator (4 bars), decoding all 4 bars and keeping bar 4.

Each part is timed on its own, on one core (onnxruntime with 1 intra-op thread, as the daemon
runs it), with a player who has played 4 bars of chords and is in the middle of bar 4. Prints
p50 / p99 per part in milliseconds, the machine, the budget of one JACK period (64 frames at
48 kHz = 1.33 ms) and the ratio of the two paths' whole re-plans.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import mido
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_description, p50_p99  # noqa: E402
from musegan_live.live.player import Player  # noqa: E402
from musegan_live.model.decoding import decode_notes  # noqa: E402
from musegan_live.model.inference import (  # noqa: E402
    BAR_FEATURE_NAMES,
    PAST_BEATS_NAME,
    Accompanist,
)
from musegan_live.model.model_dir import default_model_dir  # noqa: E402
from musegan_live.representation import (  # noqa: E402
    N_BARS,
    N_PITCHES,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
)

PERIOD_MS = 64 / 48000 * 1000.0
BAR_PARTS = ("window", "inputs", "past beats", "bar encoder", "bar generator", "decode bar",
             "whole")
WINDOW_PARTS = ("window", "inputs", "encoder", "generator", "decode 4 bars", "keep bar 4", "whole")


def played_player(now_step: int) -> Player:
    """A player who struck a chord on every beat up to ``now_step``."""
    player = Player()
    player.start(0)
    chords = [(60, 64, 67), (57, 60, 64), (65, 69, 72), (67, 71, 74)]
    for step in range(0, now_step, STEPS_PER_BEAT):
        player.advance(step)
        for pitch in chords[(step // STEPS_PER_BAR) % 4]:
            player.handle(mido.Message("note_on", note=pitch, velocity=90), float(step))
        player.advance(step + STEPS_PER_BEAT - 1)
        for pitch in chords[(step // STEPS_PER_BAR) % 4]:
            player.handle(mido.Message("note_off", note=pitch), float(step + STEPS_PER_BEAT - 1))
    player.advance(now_step)
    return player


def _window_and_inputs(accompanist: Accompanist, player: Player, now_step: int,
                       z: np.ndarray) -> tuple[tuple[np.ndarray, ...], list[float]]:
    t0 = time.perf_counter()
    first = now_step - now_step % STEPS_PER_BAR - (N_BARS - 1) * STEPS_PER_BAR
    roll, known = player.window(first, N_BARS * STEPS_PER_BAR, now_step)
    t1 = time.perf_counter()
    condition = roll.reshape(1, N_BARS, STEPS_PER_BAR, -1).astype(np.float32)
    mask = known.reshape(1, N_BARS, STEPS_PER_BAR).astype(np.float32)
    inputs = accompanist._inputs(condition, mask, z)
    return inputs, [t0, t1, time.perf_counter()]


def _ms(names: tuple[str, ...], stamps: list[float]) -> dict[str, float]:
    intervals = itertools.pairwise(stamps)
    parts = {name: (b - a) * 1000.0 for name, (a, b) in zip(names[:-1], intervals, strict=True)}
    parts["whole"] = (stamps[-1] - stamps[0]) * 1000.0
    return parts


def bar_path(accompanist: Accompanist, player: Player, now_step: int,
             z: np.ndarray) -> dict[str, float]:
    """One re-plan as the daemon makes it, each part timed (ms)."""
    (condition, mask, z), stamps = _window_and_inputs(accompanist, player, now_step, z)
    bar_encoder, bar_generator = accompanist._bar_sessions
    past = accompanist._past_beats(condition[:, :-1], mask[:, :-1])
    stamps.append(time.perf_counter())
    maps = bar_encoder.run(None, {"condition": condition[:, -1:], "known_mask": mask[:, -1:]})
    stamps.append(time.perf_counter())
    feeds = {"z": z, **dict(zip(BAR_FEATURE_NAMES, maps, strict=True)), PAST_BEATS_NAME: past}
    probabilities = bar_generator.run(["tracks"], feeds)[0]
    stamps.append(time.perf_counter())
    before = np.zeros((1, N_PITCHES, len(accompanist.output_tracks)), dtype=bool)
    decode_notes(probabilities, accompanist.output_tracks, accompanist.decoding, before)[0, 0]
    stamps.append(time.perf_counter())
    return _ms(BAR_PARTS, stamps)


def window_path(accompanist: Accompanist, player: Player, now_step: int,
                z: np.ndarray) -> dict[str, float]:
    """One re-plan as the daemon made it before the bar graphs, each part timed (ms)."""
    (condition, mask, z), stamps = _window_and_inputs(accompanist, player, now_step, z)
    feats = accompanist._encoder.run(None, {"condition": condition, "known_mask": mask})
    stamps.append(time.perf_counter())
    feeds = {"z": z, **dict(zip(accompanist.feature_names, feats, strict=True))}
    probabilities = accompanist._generator.run(["tracks"], feeds)[0]
    stamps.append(time.perf_counter())
    notes = decode_notes(probabilities, accompanist.output_tracks, accompanist.decoding)
    stamps.append(time.perf_counter())
    np.array(notes[0, N_BARS - 1], dtype=bool)
    stamps.append(time.perf_counter())
    return _ms(WINDOW_PARTS, stamps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, nargs="+", default=[default_model_dir()])
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    models = [(path, Accompanist.from_dir(path, intra_op_threads=1)) for path in args.model]
    missing = [str(path) for path, acc in models if acc.card.bar_paths is None]
    if missing:
        print(f"no bar graphs in {', '.join(missing)}: re-export (python -m training.export)",
              file=sys.stderr)
        return 2
    now_step = 3 * STEPS_PER_BAR + 2 * STEPS_PER_BEAT  # bar 4, beat 3
    player = played_player(now_step)
    rng = np.random.default_rng(0)
    paths = (("bar path", bar_path, BAR_PARTS), ("window path", window_path, WINDOW_PARTS))
    samples = {(str(p), name): {part: [] for part in parts}
               for p, _ in models for name, _, parts in paths}
    for run in range(args.runs + 20):
        for path, accompanist in models:
            z = accompanist.sample_z(rng)
            for name, measure, _ in paths:
                times = measure(accompanist, player, now_step, z)
                if run >= 20:  # warm-up
                    for part, ms in times.items():
                        samples[(str(path), name)][part].append(ms)
    print(f"machine: {machine_description()}")
    print(f"{args.runs} re-plans per model and path, taking turns, batch 1, onnxruntime CPU, "
          f"1 thread; one JACK period (64 frames at 48 kHz) = {PERIOD_MS:.2f} ms")
    for path, _ in models:
        print(f"\nmodel {path}")
        for name, _, parts in paths:
            print(f"  {name:<12} " + " ".join(f"{part:>15}" for part in parts))
            cells = [f"{p50:6.3f} / {p99:6.3f}" for p50, p99 in
                     (p50_p99(samples[(str(path), name)][part]) for part in parts)]
            print(f"  {'':<12} " + " ".join(f"{c:>15}" for c in cells))
        bar = p50_p99(samples[(str(path), "bar path")]["whole"])
        window = p50_p99(samples[(str(path), "window path")]["whole"])
        print(f"  whole re-plan, bar path / window path: p50 {bar[0] / window[0]:.2f}, "
              f"p99 {bar[1] / window[1]:.2f}; bar path p99 {bar[1]:.3f} ms against the "
              f"{PERIOD_MS:.2f} ms period")
    print("(each cell: p50 / p99 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
