"""``python -m training.calibrate``: per-track start thresholds that play as densely as the band.

    python -m training.calibrate --model exported_models/NAME --data data/TRAIN.npz \\
        [--n 256] [--seed 0] [--write]

A generator trained with a reconstruction term is surer of some instruments than of others:
at one common threshold a confident track (strings holding the chord) plays as often as a real
one while an unsure one (a guitar that could strum many rhythms) stays silent. This command
measures, on **training** phrases, how many note-steps each pitched track plays in the bar the
live engine plans, as the daemon plays it: bars 1-3 heard, and each beat of bar 4 taken from
the plan that had heard the beats of bar 4 before it (``training.evaluation.live.as_played``:
a plan is only ever played in the steps after "now", where the model is least sure, not in the
steps it has heard). It picks for each track the start threshold from a grid whose density
comes closest to the real band's in those bars. It prints the table; ``--write`` stores the
thresholds in ``model.yaml`` (``decoding.track_thresholds``), where they can be edited. Drums keep
the common threshold (their hits are thresholded cell by cell and dense already). Use training
phrases, not held-out ones: what is calibrated on must not be what is evaluated on.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from musegan_live.errors import MuseganLiveError
from musegan_live.model.batches import run_in_batches
from musegan_live.model.decoding import decode_notes
from musegan_live.model.inference import Accompanist
from musegan_live.model.model_dir import write_track_thresholds
from musegan_live.representation import DRUMS, TRACK_NAMES, load_sparse_npz
from training.evaluate import choose_phrases
from training.evaluation.live import as_played, heard_condition, live_known_mask, planned_bar

logger = logging.getLogger(__name__)

#: candidate start thresholds (the model's own sustain threshold caps the hold below each)
THRESHOLDS = np.round(np.arange(0.05, 0.625, 0.025), 3)
LIVE_BEATS = (0, 1, 2, 3)
BATCH = 32


def planned_probabilities(
    accompanist: Accompanist, condition: np.ndarray, z: np.ndarray
) -> np.ndarray:
    """Probabilities ``float32[len(LIVE_BEATS) * n, 4, 48, 84, T]`` of the live plans (every
    beat count in turn; the whole window is kept: decoding reads notes across bar lines)."""
    out = []
    for beats in LIVE_BEATS:
        mask = live_known_mask(len(condition), beats)
        heard = heard_condition(condition, mask).astype(np.float32)
        out.append(run_in_batches(accompanist.probabilities, heard, mask, z, batch_size=BATCH))
    return np.concatenate(out)


def calibrate(
    accompanist: Accompanist, real: np.ndarray, rng: np.random.Generator
) -> dict[str, dict[str, float]]:
    """For each pitched output track: the real density of bar 4, the density at the model's own
    threshold, and the chosen threshold with its density (densities = share of note-steps).

    ``real`` ``bool[n, 4, 48, 84, 5]``."""
    condition = real[..., accompanist.condition_track]
    z = accompanist.sample_z(rng, len(real)).astype(np.float32)
    probabilities = planned_probabilities(accompanist, condition, z)
    decoding = accompanist.decoding
    result: dict[str, dict[str, float]] = {}
    for slot, track in enumerate(accompanist.output_tracks):
        if track == DRUMS:
            continue
        name = TRACK_NAMES[track]
        target = float(planned_bar(real)[..., track].mean())
        one_track = probabilities[..., slot : slot + 1]

        def density(threshold: float, one_track=one_track, track=track) -> float:
            notes = decode_notes(one_track, [track], decoding.with_threshold(threshold))
            notes = planned_bar(notes)
            return float(as_played(np.split(notes, len(LIVE_BEATS))).mean())

        densities = np.array([density(t) for t in THRESHOLDS])
        best = int(np.argmin(np.abs(densities - target)))
        result[name] = {
            "real_density": target,
            "density_at_model_threshold": density(decoding.threshold),
            "threshold": float(THRESHOLDS[best]),
            "density": float(densities[best]),
        }
        logger.info("%s: real %.4f, at %.2f %.4f -> threshold %.3f gives %.4f", name, target,
                    decoding.threshold, result[name]["density_at_model_threshold"],
                    THRESHOLDS[best], densities[best])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.calibrate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="exported model directory")
    parser.add_argument("--data", required=True, help="training phrases (LPD-5 sparse .npz)")
    parser.add_argument("--n", type=int, default=256, help="phrases to calibrate on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="store the thresholds in model.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        accompanist = Accompanist.from_dir(args.model)
        data = load_sparse_npz(args.data)
        rng = np.random.default_rng(args.seed)
        real = data.phrases(choose_phrases(data, accompanist.condition_track, args.n, rng))
        result = calibrate(accompanist, real, rng)
        if args.write:
            write_track_thresholds(
                args.model, {name: row["threshold"] for name, row in result.items()})
    except MuseganLiveError as err:
        print(f"training.calibrate: {err}", file=sys.stderr)
        return err.exit_code
    print(f"{'track':8s} {'real':>8s} {'at ' + str(accompanist.decoding.threshold):>8s} "
          f"{'threshold':>9s} {'then':>8s}")
    for name, row in result.items():
        print(f"{name:8s} {row['real_density']:8.4f} {row['density_at_model_threshold']:8.4f} "
              f"{row['threshold']:9.3f} {row['density']:8.4f}")
    if args.write:
        print(f"wrote decoding.track_thresholds into {args.model / 'model.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
