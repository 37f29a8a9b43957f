"""Latency of one plan (encoder + generator, batch 1): ONNX Runtime per provider and thread
count, against PyTorch eager; of a live plan (the last bar, decoded); and of decoding a whole
window's probabilities into notes.

    python benchmarks/bench_inference.py [--configs tiny cpu-small default] [--runs 200]
    python benchmarks/bench_inference.py --model exported_models/default   # an exported model
    python benchmarks/bench_inference.py --model NEW_DIR OLD_DIR      # two models, one run

For each training config a model with random weights is built and exported (latency does not
depend on the weights); ``--model`` measures existing exports instead (ONNX Runtime only), the
models taking turns for every measurement so that both see the same machine.
Each measurement runs ``--runs`` plans after a warm-up, each with a fresh random condition, mask
and ``z``, and prints the median (p50) and p99 in milliseconds. Other work on the machine shows
up in p99: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_description, p50_p99  # noqa: E402
from musegan_live.model.decoding import decode_notes  # noqa: E402
from musegan_live.model.inference import Accompanist  # noqa: E402

PROVIDERS = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]


def measure(run: Callable[[int], object], runs: int, warm_up: int = 5) -> tuple[float, float]:
    """(p50, p99) in ms of ``run(i)`` over ``runs`` calls, after ``warm_up`` calls."""
    for i in range(warm_up):
        run(i)
    times = []
    for i in range(runs):
        started = time.perf_counter()
        run(i)
        times.append((time.perf_counter() - started) * 1000)
    return p50_p99(times)


def random_plans(n: int, latent_dim: int, seed: int = 0) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    plans = []
    for _ in range(n):
        condition = (rng.random((1, 4, 48, 84)) < 0.03).astype(np.float32)
        now = rng.integers(0, 193)
        mask = (np.arange(192) < now).astype(np.float32).reshape(1, 4, 48)
        plans.append((condition, mask, rng.standard_normal((1, latent_dim), dtype=np.float32)))
    return plans


def bench_onnx(models: list[tuple[Path, str]], runs: int) -> None:
    """Each measurement for every model in turn (same load for all): ``models`` = (dir, label)."""
    available = ort.get_available_providers()
    for provider in [p for p in PROVIDERS if p in available]:
        for threads in (1, 2):
            for model_dir, label in models:
                acc = Accompanist.from_dir(model_dir, providers=(provider,),
                                           intra_op_threads=threads)
                acc.warm_up()
                plans = random_plans(16, acc.latent_dim)
                p50, p99 = measure(
                    lambda i, acc=acc, plans=plans: acc.probabilities(*plans[i % 16]), runs)
                short = provider.replace("ExecutionProvider", "")
                print(f"{label:10s} {'onnxruntime ' + short:24s} {threads:7d} {p50:9.2f} "
                      f"{p99:9.2f}", flush=True)
    # a live plan, as the engine makes it: the window's last bar, decoded (with the bar graphs
    # when the export has them, else the whole window); 4 windows in turn, so the 12 finished bars
    # before them are kept between plans as they are live
    for model_dir, label in models:
        acc = Accompanist.from_dir(model_dir)
        acc.warm_up()
        plans = random_plans(4, acc.latent_dim)
        p50, p99 = measure(lambda i, acc=acc, plans=plans: acc.plan_last_bar(*plans[i % 4]), runs)
        path = "bar graphs" if acc.card.bar_paths else "whole window"
        print(f"{label:10s} {'live plan, ' + path:24s} {1:7d} {p50:9.2f} {p99:9.2f}", flush=True)
    # probabilities -> notes (hysteresis, shortest note, voice limits): numpy, after inference
    for model_dir, label in models:
        acc = Accompanist.from_dir(model_dir)
        probabilities = [acc.probabilities(*plan) for plan in random_plans(16, acc.latent_dim)]
        p50, p99 = measure(lambda i, acc=acc, probabilities=probabilities: decode_notes(
            probabilities[i % 16], acc.output_tracks, acc.decoding), runs)
        print(f"{label:10s} {'note decoding (numpy)':24s} {1:7d} {p50:9.2f} {p99:9.2f}",
              flush=True)


def bench_config(config: str, runs: int, work: Path) -> None:
    import torch

    from training.checkpoint import save_checkpoint
    from training.export import export_model
    from training.model.networks import TrackConditionalGenerator
    from training.train_config import load_config

    cfg = load_config(REPO / "configs" / "train" / f"{config}.yaml")
    torch.manual_seed(0)
    net = TrackConditionalGenerator(cfg.model).eval()
    save_checkpoint(work / f"{config}.pt",
                    {"generator": net.state_dict(), "config": cfg.to_dict(), "step": 0})
    report = export_model(work / f"{config}.pt", work / config)
    size_kib = sum(report.file_bytes.values()) / 1024
    print(f"{config:10s} exported in {report.seconds:.1f} s, {size_kib:.0f} KiB", flush=True)
    bench_onnx([(work / config, config)], runs)
    plans = [tuple(torch.from_numpy(a) for a in plan)
             for plan in random_plans(16, cfg.model.latent_dim)]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            p50, p99 = measure(lambda i: net(plans[i % 16][2], *plans[i % 16][:2]), runs)
        print(f"{config:10s} {'pytorch eager CPU':24s} {threads:7d} {p50:9.2f} {p99:9.2f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "cpu-small", "default"])
    parser.add_argument("--model", nargs="+",
                        help="exported model directories, measured in turns (skips --configs)")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    providers = ", ".join(ort.get_available_providers())
    print(machine_description(f"onnxruntime {ort.__version__} ({providers})"))
    print(f"batch 1, {args.runs} runs")
    print(f"{'model':10s} {'engine':24s} {'threads':>7s} {'p50 ms':>9s} {'p99 ms':>9s}")
    if args.model:
        bench_onnx([(Path(m), f"[{i}]") for i, m in enumerate(args.model)], args.runs)
        for i, m in enumerate(args.model):
            print(f"[{i}] = {m}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            bench_config(config, args.runs, Path(tmp))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
