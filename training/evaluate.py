"""``python -m training.evaluate``: an exported model on held-out phrases -> metric tables.

    python -m training.evaluate --model exported_models/NAME --data held_out.npz \\
        [--n 256] [--seed 0] [--out DIR] [--providers CPU] [--batch 32] [--threshold T] \\
        [--live-beats 0,1,2,3]

The model runs through ONNX Runtime
(:class:`musegan_live.model.inference.Accompanist`), exactly as the
daemon runs it. ``--data`` is an LPD-5 sparse ``.npz`` of phrases the model did not train on; only
phrases whose condition track (the model's, e.g. Piano) has at least one note are used, and ``--n``
of them are drawn at random (without replacement, seeded by ``--seed``). Each phrase gets one
latent ``z`` (``Accompanist.sample_z``), shared by every setting:

``full``
    ``known_mask`` all ones: the whole real condition is known (MuseGAN's track-conditional
    setting, offline accompaniment). All 4 bars are scored.
``none``
    ``known_mask`` all zeros: generation from scratch. All 4 bars are scored against the real
    condition, which the model never saw (so its harmony should look like the shuffled baseline).
``live`` (:mod:`training.evaluation.live`)
    what the live engine asks for: bars 1-3 heard, bar 4 (the bar being planned) heard for
    0, 1, 2, 3 beats (``--live-beats``); bar 4 of each plan is scored against bar 4's whole real
    condition, next to real, shuffled-real and the 1-bar-late oracle (bar 3's real accompaniment
    sounding in bar 4).

For full and none three sets of phrases are scored with :func:`musegan_live.metrics.summarize`:
``real`` (the held-out phrases themselves), ``generated`` (the real condition track plus the
model's accompaniment) and ``shuffled`` (phrase i's condition with the real accompaniment of phrase
``perm[i]``, where ``perm`` is a random permutation without fixed points). Single-track metrics of
``shuffled`` equal those of ``real`` by construction; its tonal distance and harmony ratio are the
"unrelated but real music" baseline.

Pass/fail: ``checks_full`` (:func:`training.evaluation.report.quality_checks`: single-track
statistics near real, harmony and tonal distance better than shuffled) and ``checks`` (the
live-following live and full checks, :mod:`training.evaluation.checks`). The tables and checks
are printed and written as ``eval.md`` and ``eval.json`` (NaN as ``null``) into ``--out``
(default ``out/eval/<model name>``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musegan_live import metrics
from musegan_live.errors import DataFileError, MuseganLiveError
from musegan_live.model.inference import Accompanist
from musegan_live.representation import (
    DRUMS,
    N_BARS,
    STEPS_PER_BAR,
    TRACK_NAMES,
    SparseDataset,
    load_sparse_npz,
)
from training.evaluation.checks import acceptance_checks
from training.evaluation.generation import DEFAULT_BATCH, generate, with_accompaniment
from training.evaluation.live import DEFAULT_LIVE_BEATS, evaluate_live, parse_live_beats
from training.evaluation.report import (
    make_out_dir,
    quality_checks,
    render_markdown,
    write_report,
)

logger = logging.getLogger(__name__)

DEFAULT_N_PHRASES = 256
#: (key, title) of the whole-phrase settings, in report order (the live setting is apart).
SETTINGS: tuple[tuple[str, str], ...] = (
    ("full", "Full condition (known_mask = 1 everywhere), bars 1-4 scored"),
    ("none", "No condition (known_mask = 0): generation from scratch, bars 1-4 scored"),
)


# --- choosing phrases and masks -------------------------------------------------------------
def parse_providers(text: str) -> tuple[str, ...]:
    """``"CUDA,CPU"`` -> ``("CUDA", "CPU")``: provider names in priority order.

    Short names (CPU, CUDA, TensorRT) and full ONNX Runtime names are both accepted; the runtime
    (:func:`musegan_live.model.inference.resolve_providers`) expands and checks them.
    """
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(
            "--providers needs at least one name, e.g. CPU or CUDA,CPU"
        )
    return names


def conditioned_indices(dataset: SparseDataset, condition_track: int) -> np.ndarray:
    """Sorted indices of the phrases whose ``condition_track`` has at least one True cell."""
    in_track = dataset.nonzero[4] == condition_track
    return np.unique(dataset.nonzero[0][in_track])


def choose_phrases(
    dataset: SparseDataset, condition_track: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``n`` random phrase indices (sorted) with a non-empty condition track.

    Raises :class:`DataFileError` when fewer than 2 phrases qualify (the shuffled baseline pairs
    every phrase with a different one).
    """
    usable = conditioned_indices(dataset, condition_track)
    if len(usable) < 2:
        raise DataFileError(
            f"only {len(usable)} of {len(dataset)} phrases have a non-empty "
            f"{TRACK_NAMES[condition_track]} track; evaluation needs at least 2 — pass held-out "
            f"phrases that contain the model's condition track"
        )
    if len(usable) <= n:
        return usable
    return np.sort(rng.choice(usable, size=n, replace=False))


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of ``range(n)`` with no fixed point (``perm[i] != i``), ``n >= 2``.

    Built as one random cycle: visit the indices in a random order and map each to the next one.
    """
    if n < 2:
        raise ValueError(f"a permutation without fixed points needs n >= 2, got {n}")
    order = rng.permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[order] = np.roll(order, -1)
    return perm


# --- scoring ---------------------------------------------------------------------------------
def evaluate(
    accompanist: Accompanist,
    real: np.ndarray,
    rng: np.random.Generator,
    *,
    batch_size: int = DEFAULT_BATCH,
    threshold: float | None = None,
    live_beats: Sequence[int] = DEFAULT_LIVE_BEATS,
) -> dict[str, object]:
    """Score the model on the real phrases ``bool[n, 4, 48, 84, 5]`` in every setting.

    Returns ``{"n_phrases", "condition_track", "output_tracks", "threshold", "settings", "live",
    "checks_full", "checks"}``. ``settings[key]`` (key in full, none) holds ``title``,
    ``scored_bars`` (1-based), ``inference_seconds``, ``real``, ``generated``, ``shuffled``, each
    a :func:`musegan_live.metrics.summarize` dict; ``live`` is
    :func:`training.evaluation.live.evaluate_live` (None when ``live_beats`` is empty);
    ``checks_full`` are :func:`training.evaluation.report.quality_checks` of full and ``checks``
    :func:`training.evaluation.checks.acceptance_checks` of full and live.
    """
    n = len(real)
    cond = accompanist.condition_track
    outputs = list(accompanist.output_tracks)
    all_tracks = list(range(real.shape[-1]))
    condition = real[..., cond]
    shuffled = with_accompaniment(real, real[derangement(n, rng)][..., outputs], outputs)
    z = accompanist.sample_z(rng, n).astype(np.float32, copy=False)
    masks = {
        "full": np.ones((n, N_BARS, STEPS_PER_BAR), dtype=np.float32),
        "none": np.zeros((n, N_BARS, STEPS_PER_BAR), dtype=np.float32),
    }
    settings: dict[str, dict[str, object]] = {}
    for key, title in SETTINGS:
        started = time.perf_counter()
        accompaniment = generate(
            accompanist, condition, masks[key], z, batch_size=batch_size, threshold=threshold
        )
        seconds = time.perf_counter() - started
        logger.info("%s: %d phrases generated in %.2f s", key, n, seconds)
        generated = with_accompaniment(real, accompaniment, outputs)
        entry: dict[str, object] = {
            "title": title,
            "scored_bars": list(range(1, N_BARS + 1)),
            "inference_seconds": seconds,
        }
        for column, phrases in (("real", real), ("generated", generated), ("shuffled", shuffled)):
            entry[column] = metrics.summarize(phrases, all_tracks, cond)
        settings[key] = entry
    live = None
    if live_beats:
        live = evaluate_live(accompanist, real, shuffled, z, live_beats,
                             batch_size=batch_size, threshold=threshold)
    output_names = [TRACK_NAMES[t] for t in outputs]
    pitched = [TRACK_NAMES[t] for t in outputs if t != DRUMS] if cond != DRUMS else []
    return {
        "n_phrases": n,
        "condition_track": TRACK_NAMES[cond],
        "output_tracks": output_names,
        "threshold": float(accompanist.threshold if threshold is None else threshold),
        "settings": settings,
        "live": live,
        "checks_full": quality_checks(settings["full"], output_names),
        "checks": acceptance_checks(settings["full"], live, pitched),
    }


# --- command line ---------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a threshold in (0, 1], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Score an exported model on held-out phrases: real vs generated vs a "
        "shuffled-real baseline, with full and no condition, and live (bar 4 planned with 0..3 "
        "beats of it heard, next to the 1-bar-late oracle); pass/fail checks.",
    )
    parser.add_argument("--model", required=True, type=Path, help="exported model directory")
    parser.add_argument("--data", required=True, type=Path, help="held-out LPD-5 sparse .npz")
    parser.add_argument("--n", type=_positive_int, default=DEFAULT_N_PHRASES,
                        help=f"phrases to score (default {DEFAULT_N_PHRASES})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder for eval.md and eval.json "
                        "(default out/eval/<model name>)")
    parser.add_argument("--providers", type=parse_providers, default=("CPU",),
                        help="ONNX Runtime providers in order, e.g. CPU or CUDA,CPU (default CPU)")
    parser.add_argument("--batch", type=_positive_int, default=DEFAULT_BATCH,
                        help=f"phrases per inference call (default {DEFAULT_BATCH})")
    parser.add_argument("--threads", type=_positive_int, default=1,
                        help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--threshold", type=_probability, default=None,
                        help="note-on threshold (default: the model's)")
    parser.add_argument("--live-beats", type=parse_live_beats, default=DEFAULT_LIVE_BEATS,
                        help="beats of the planned bar (bar 4) heard in the live setting, "
                        "each 0..3, comma-separated; '' skips it (default 0,1,2,3)")
    return parser


def run(args: argparse.Namespace) -> dict:
    """Load the model and data, evaluate, write the files; return the report."""
    started = time.perf_counter()
    out_dir = args.out if args.out is not None else Path("out") / "eval" / Path(args.model).name
    make_out_dir(out_dir)  # fail before minutes of work, not after
    accompanist = Accompanist.from_dir(
        args.model, providers=args.providers, intra_op_threads=args.threads
    )
    dataset = load_sparse_npz(args.data)
    rng = np.random.default_rng(args.seed)
    indices = choose_phrases(dataset, accompanist.condition_track, args.n, rng)
    if len(indices) < args.n:
        logger.warning("only %d phrases qualify; scoring all of them", len(indices))
    real = dataset.phrases(indices)
    report = {
        "model": str(args.model),
        "data": str(args.data),
        "seed": args.seed,
        "providers": list(accompanist.providers),
        "phrase_indices": [int(i) for i in indices],
    }
    report.update(
        evaluate(accompanist, real, rng, batch_size=args.batch, threshold=args.threshold,
                 live_beats=args.live_beats)
    )
    report["seconds_total"] = time.perf_counter() - started
    report["files"] = [str(p) for p in write_report(report, out_dir)]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report = run(args)
    except MuseganLiveError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(render_markdown(report))
    print(f"wrote {', '.join(report['files'])} in {report['seconds_total']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
