"""The whole re-plan, split into its parts: what the worker does between a request and a plan.

    python benchmarks/bench_replan.py [--model DIR [DIR ...]] [--runs 500]

A re-plan on the live path is: the player's window (``Player.window`` over the 4 bars ending
with the planned one), the model's inputs, the encoder, the generator, decoding into notes
(``decode_notes`` over all 4 bars, as ``Accompanist.accompany`` does) and keeping the planned
bar. Each part is timed on its own, on one core (onnxruntime with 1 intra-op thread, as the
daemon runs it), with a player who has played 4 bars of chords and is in the middle of bar 4.
Several models take turns for every measurement, so that all see the same machine. Prints
p50 / p99 per part in milliseconds, and the budget of one JACK period (64 frames at 48 kHz =
1.33 ms) next to the whole.
"""

from __future__ import annotations

import argparse
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
from musegan_live.model.inference import Accompanist  # noqa: E402
from musegan_live.model.model_dir import default_model_dir  # noqa: E402
from musegan_live.representation import N_BARS, STEPS_PER_BAR, STEPS_PER_BEAT  # noqa: E402

PERIOD_MS = 64 / 48000 * 1000.0
PARTS = ("window", "inputs", "encoder", "generator", "decode 4 bars", "keep bar 4", "whole")


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


def replan_parts(accompanist: Accompanist, player: Player, now_step: int,
                 z: np.ndarray) -> dict[str, float]:
    """One re-plan, each part timed (ms)."""
    times = {}
    t0 = time.perf_counter()
    first = now_step - now_step % STEPS_PER_BAR - (N_BARS - 1) * STEPS_PER_BAR
    roll, known = player.window(first, N_BARS * STEPS_PER_BAR, now_step)
    t1 = time.perf_counter()
    condition = roll.reshape(1, N_BARS, STEPS_PER_BAR, -1).astype(np.float32)
    mask = known.reshape(1, N_BARS, STEPS_PER_BAR).astype(np.float32)
    condition, mask, z = accompanist._inputs(condition, mask, z)
    t2 = time.perf_counter()
    feats = accompanist._encoder.run(None, {"condition": condition, "known_mask": mask})
    t3 = time.perf_counter()
    feeds = {"z": z, **dict(zip(accompanist.feature_names, feats, strict=True))}
    probabilities = accompanist._generator.run(["tracks"], feeds)[0]
    t4 = time.perf_counter()
    notes = decode_notes(probabilities, accompanist.output_tracks, accompanist.decoding)
    t5 = time.perf_counter()
    np.array(notes[0, N_BARS - 1], dtype=bool)
    t6 = time.perf_counter()
    for name, (a, b) in zip(PARTS, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6),
                                    (t0, t6)], strict=True):
        times[name] = (b - a) * 1000.0
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, nargs="+", default=[default_model_dir()])
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    models = [(path, Accompanist.from_dir(path, intra_op_threads=1)) for path in args.model]
    now_step = 3 * STEPS_PER_BAR + 2 * STEPS_PER_BEAT  # bar 4, beat 3
    player = played_player(now_step)
    rng = np.random.default_rng(0)
    samples: dict[str, dict[str, list[float]]] = {str(p): {n: [] for n in PARTS}
                                                  for p, _ in models}
    for run in range(args.runs + 20):
        for path, accompanist in models:
            z = accompanist.sample_z(rng)
            parts = replan_parts(accompanist, player, now_step, z)
            if run >= 20:  # warm-up
                for name, ms in parts.items():
                    samples[str(path)][name].append(ms)
    print(f"machine: {machine_description()}")
    print(f"{args.runs} re-plans per model, batch 1, onnxruntime CPU, 1 thread; "
          f"one JACK period (64 frames at 48 kHz) = {PERIOD_MS:.2f} ms")
    header = f"{'model':<36} " + " ".join(f"{name:>15}" for name in PARTS)
    print(header)
    print("-" * len(header))
    for path, _ in models:
        cells = []
        for name in PARTS:
            p50, p99 = p50_p99(samples[str(path)][name])
            cells.append(f"{p50:6.3f} / {p99:6.3f}")
        print(f"{str(path)[-36:]:<36} " + " ".join(f"{c:>15}" for c in cells))
    print("(each cell: p50 / p99 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
