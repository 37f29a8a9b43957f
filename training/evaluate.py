"""``python -m training.evaluate``: an exported model on held-out phrases -> metric tables.

    python -m training.evaluate --model exported_models/NAME --data held_out.npz \\
        [--n 256] [--seed 0] [--out DIR] [--providers CPU] [--batch 32] [--threshold T]

The model runs through ONNX Runtime
(:class:`musegan_live.model.inference.Accompanist`), exactly as the
daemon runs it. ``--data`` is an LPD-5 sparse ``.npz`` of phrases the model did not train on; only
phrases whose condition track (the model's, e.g. Piano) has at least one note are used, and ``--n``
of them are drawn at random (without replacement, seeded by ``--seed``). Each phrase gets one
latent ``z`` (``Accompanist.sample_z``), shared by the three settings:

``full``
    ``known_mask`` all ones: the whole real condition is known (MuseGAN's track-conditional
    setting, offline accompaniment). All 4 bars are scored.
``live``
    what the live engine asks for: per phrase a "now" step ``k`` is drawn uniformly from
    ``[144, 192)`` (any step of bar 4, 48 steps per bar); the condition steps ``0 .. k-1`` are known
    (``known_mask`` 1) and steps ``k ..`` are hidden (0), so bars 1-3 are fully heard and bar 4
    is heard up to ``k`` (from none of it at ``k = 144`` to all but its last step). Only bar 4 of
    the output is scored, since that is the bar the engine plays from this plan; the real and
    shuffled references are scored on bar 4 too, against the *full* real condition of bar 4 (what
    the player ends up playing).
``none``
    ``known_mask`` all zeros: generation from scratch. All 4 bars are scored against the real
    condition, which the model never saw (so its harmony should look like the shuffled baseline).

For every setting three sets of phrases are scored with :func:`musegan_live.metrics.summarize`:
``real`` (the held-out phrases themselves), ``generated`` (the real condition track plus the
model's accompaniment) and ``shuffled`` (phrase i's condition with the real accompaniment of phrase
``perm[i]``, where ``perm`` is a random permutation without fixed points). Single-track metrics of
``shuffled`` equal those of ``real`` by construction; its tonal distance and harmony ratio are the
"unrelated but real music" baseline.

The tables are printed and written as ``eval.md`` and ``eval.json`` (NaN as ``null``) into
``--out`` (default ``out/eval/<model name>``).
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
    N_BARS,
    STEPS_PER_BAR,
    STEPS_PER_PHRASE,
    TRACK_NAMES,
    SparseDataset,
    load_sparse_npz,
)
from training.evaluation.report import (
    make_out_dir,
    quality_checks,
    render_markdown,
    write_report,
)

logger = logging.getLogger(__name__)

DEFAULT_N_PHRASES = 256
DEFAULT_BATCH = 32
#: (key, title) of the three settings, in report order.
SETTINGS: tuple[tuple[str, str], ...] = (
    ("full", "Full condition (known_mask = 1 everywhere), bars 1-4 scored"),
    ("live", "Live: condition known up to a random step of bar 4, bar 4 scored"),
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


def live_known_masks(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the ``live`` setting: ``(float32[n, 4, 48] known_mask, int64[n] now_steps)``.

    ``now_steps[i]`` is uniform over the steps of the last bar, ``[144, 192)``; the condition steps
    before it (phrase step index ``< now``) are known (1.0), the rest hidden (0.0).
    """
    first = (N_BARS - 1) * STEPS_PER_BAR
    now_steps = rng.integers(first, STEPS_PER_PHRASE, size=n)
    known = np.arange(STEPS_PER_PHRASE)[np.newaxis, :] < now_steps[:, np.newaxis]
    return known.reshape(n, N_BARS, STEPS_PER_BAR).astype(np.float32), now_steps


# --- running the model ----------------------------------------------------------------------
def generate(
    accompanist: Accompanist,
    condition: np.ndarray,
    known_mask: np.ndarray,
    z: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
    threshold: float | None = None,
) -> np.ndarray:
    """The model's accompaniment ``bool[n, 4, 48, 84, len(output_tracks)]``, in batches.

    ``condition`` ``bool[n, 4, 48, 84]``, ``known_mask`` ``float32[n, 4, 48]``, ``z``
    ``float32[n, latent_dim]``; at most ``batch_size`` phrases go into one inference call.
    """
    parts = []
    for start in range(0, len(condition), batch_size):
        stop = start + batch_size
        parts.append(
            accompanist.accompany(
                condition[start:stop], known_mask[start:stop], z[start:stop], threshold=threshold
            )
        )
    return np.concatenate(parts).astype(bool, copy=False)


def with_accompaniment(
    real: np.ndarray, accompaniment: np.ndarray, output_tracks: Sequence[int]
) -> np.ndarray:
    """``real`` ``bool[n, 4, 48, 84, 5]`` with the ``output_tracks`` slices replaced."""
    out = real.copy()
    out[..., list(output_tracks)] = accompaniment
    return out


def evaluate(
    accompanist: Accompanist,
    real: np.ndarray,
    rng: np.random.Generator,
    *,
    batch_size: int = DEFAULT_BATCH,
    threshold: float | None = None,
) -> dict[str, object]:
    """Score the model on the real phrases ``bool[n, 4, 48, 84, 5]`` in the three settings.

    Returns ``{"n_phrases", "condition_track", "output_tracks", "threshold", "settings",
    "checks_full"}`` (``checks_full``: :func:`training.evaluation.report.quality_checks` of full);
    ``settings[key]`` (key in full, live, none) holds ``title``, ``scored_bars`` (1-based),
    ``inference_seconds``, ``real``, ``generated``, ``shuffled`` and, for live, ``now_steps``;
    where each of real / generated / shuffled is a :func:`musegan_live.metrics.summarize` dict.
    """
    n = len(real)
    cond = accompanist.condition_track
    outputs = list(accompanist.output_tracks)
    all_tracks = list(range(real.shape[-1]))
    condition = real[..., cond]
    shuffled = with_accompaniment(real, real[derangement(n, rng)][..., outputs], outputs)
    z = accompanist.sample_z(rng, n).astype(np.float32, copy=False)
    live_mask, now_steps = live_known_masks(n, rng)
    masks = {
        "full": np.ones((n, N_BARS, STEPS_PER_BAR), dtype=np.float32),
        "live": live_mask,
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
        bars = slice(N_BARS - 1, N_BARS) if key == "live" else slice(0, N_BARS)
        entry: dict[str, object] = {
            "title": title,
            "scored_bars": list(range(1, N_BARS + 1))[bars],
            "inference_seconds": seconds,
        }
        for column, phrases in (("real", real), ("generated", generated), ("shuffled", shuffled)):
            entry[column] = metrics.summarize(phrases[:, bars], all_tracks, cond)
        if key == "live":
            entry["now_steps"] = [int(s) for s in now_steps]
        settings[key] = entry
    output_names = [TRACK_NAMES[t] for t in outputs]
    return {
        "n_phrases": n,
        "condition_track": TRACK_NAMES[cond],
        "output_tracks": output_names,
        "threshold": float(accompanist.threshold if threshold is None else threshold),
        "settings": settings,
        "checks_full": quality_checks(settings["full"], output_names),
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
        "shuffled-real baseline, with full, live-masked and no condition.",
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
        evaluate(accompanist, real, rng, batch_size=args.batch, threshold=args.threshold)
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
