"""Training speed (generator steps/s) for the tiny and cpu-small configs, and export time.

    python benchmarks/bench_train.py [--configs tiny cpu-small] [--steps 12] [--device cpu]

Runs the real training loop (``training.train.main``) on a code-made corpus for ``--steps``
generator steps, logging every ``--steps // 3`` steps, and reports the steps/s of the logged
intervals after the first (which holds start-up and first-call costs): median and worst (p99 of
so few intervals is their minimum rate). Then exports the run's checkpoint and times it. CUDA is
measured too when present. Numbers depend on what else the machine is doing: run it on an idle
one, and read them as the rate a real run gets under the same load.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_description  # noqa: E402
from musegan_live.representation import save_sparse_npz  # noqa: E402
from training import train  # noqa: E402
from training.data.dataset import synthetic_phrases  # noqa: E402
from training.export import export_model  # noqa: E402


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    return machine_description(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"
    )


def bench(config: str, device: str, steps: int, data: Path, work: Path) -> dict[str, float]:
    out = work / f"{config}-{device}"
    every = max(1, steps // 3)
    args = ["--config", str(REPO / "configs" / "train" / f"{config}.yaml"), "--out", str(out),
            "--device", device,
            "--set", f"data.train=[{data}]", "--set", "data.validation=null",
            "--set", f"train.steps={steps}",
            "--set", f"log.log_every={every}", "--set", f"log.sample_every={10 * steps}",
            "--set", f"log.checkpoint_every={10 * steps}", "--set", "log.progress_bar=false"]
    started = time.perf_counter()
    train.main(args)
    wall = time.perf_counter() - started
    with (out / "losses.csv").open() as f:
        rates = [float(row["steps_per_s"]) for row in csv.DictReader(f)][1:]
    export_started = time.perf_counter()
    report = export_model(out / "checkpoint.pt", work / f"model-{config}-{device}")
    return {
        "median": float(np.median(rates)) if rates else float("nan"),
        "worst": float(np.min(rates)) if rates else float("nan"),
        "wall": wall,
        "export": time.perf_counter() - export_started,
        "model_kib": sum(report.file_bytes.values()) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "cpu-small"])
    parser.add_argument("--steps", type=int, default=12, help="generator steps per run")
    parser.add_argument("--device", nargs="+", default=None, help="cpu and/or cuda")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(machine())
    print(f"{'config':12s} {'device':6s} {'steps/s p50':>12s} {'worst':>8s} "
          f"{'run s':>7s} {'export s':>9s} {'model KiB':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "synthetic.npz"
        save_sparse_npz(data, synthetic_phrases(256, seed=0))
        for config in args.configs:
            for device in devices:
                r = bench(config, device, args.steps, data, work)
                print(f"{config:12s} {device:6s} {r['median']:12.3f} {r['worst']:8.3f} "
                      f"{r['wall']:7.1f} {r['export']:9.1f} {r['model_kib']:10.1f}", flush=True)


if __name__ == "__main__":
    main()
