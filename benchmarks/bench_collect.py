"""Throughput of ``training.collect`` on a MIDI folder, with 1 and 2 worker processes.

    python benchmarks/bench_collect.py [FOLDER] [--jobs 1 2] [--condition-track none]

Prints the machine, then one row per ``--jobs`` value: files/s and phrases/s over the whole run
(wall clock, including the pool start and the npz write) and the median and p99 time one worker
spends reading and cutting one file. FOLDER defaults to ``../shared/data/freedoom``; the
benchmark is skipped with a message when it is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_description  # noqa: E402
from training.collect import collect, load_collect_config  # noqa: E402

DEFAULT_FOLDER = ROOT.parent / "shared" / "data" / "freedoom"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER))
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--condition-track", default="none",
                        help="keep rule's condition track (default none: keep any non-empty)")
    parser.add_argument("--min-other-tracks", type=int, default=0)
    args = parser.parse_args()
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"skipped: {folder} does not exist (the default is ../shared/data/freedoom)")
        return 0
    config = load_collect_config(None, condition_track=args.condition_track,
                                 min_other_tracks=args.min_other_tracks)
    print(f"machine: {machine_description()}")
    print(f"folder: {folder}  keep: {config.keep_rule().describe()}")
    header = (f"{'jobs':>4} {'files':>6} {'phrases':>8} {'wall s':>7} {'files/s':>8} "
              f"{'phrases/s':>10} {'median ms':>10} {'p99 ms':>8}")
    print(header)
    print("-" * len(header))
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
            started = time.perf_counter()
            summary = collect([folder], Path(tmp) / "bench.npz", config=config, jobs=jobs,
                              progress=False)
            wall = time.perf_counter() - started
        per_file_ms = np.asarray(summary.item_seconds) * 1000.0
        print(f"{jobs:>4} {summary.items_done:>6} {summary.n_phrases:>8} {wall:>7.2f} "
              f"{summary.items_done / wall:>8.1f} {summary.n_phrases / wall:>10.1f} "
              f"{np.median(per_file_ms):>10.1f} {np.percentile(per_file_ms, 99):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
