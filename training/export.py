"""``python -m training.export``: a training checkpoint -> an exported model directory.

    python -m training.export runs/NAME/checkpoint.pt -o exported_models/NAME [--tensorrt]

Writes ``encoder.onnx``, ``generator.onnx``, the live path's ``bar_encoder.onnx`` and
``bar_generator.onnx`` (``training/export_bar.py``; named inputs/outputs and dynamic batch as in
``docs/ARCHITECTURE.md``; ``metadata_props`` repeat ``representation_constants()`` as
``musegan_live.<key>`` = JSON) and ``model.yaml``. Before the directory appears, the ONNX models
are checked against PyTorch on random inputs (encoder maps, generator output, the whole path
through :class:`musegan_live.model.inference.Accompanist`, and its last bar from the bar
graphs); beyond ``1e-4`` max abs difference the export fails with ModelError. Everything is
written into a temporary sibling directory and renamed at the end, so a failed export never
leaves a half-written model.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor, nn

from musegan_live.errors import ModelError, MuseganLiveError
from musegan_live.model.model_dir import (
    CARD_FILE,
    ENCODER_FILE,
    FORMAT_VERSION,
    GENERATOR_FILE,
    ModelCard,
)
from musegan_live.representation import (
    TRACK_NAMES,
    representation_constants,
)
from training.checkpoint import load_checkpoint
from training.ema import CHECKPOINT_KEY as EMA_CHECKPOINT_KEY
from training.export_bar import check_bar_parity, export_bar_graphs
from training.model.networks import TrackConditionalGenerator
from training.onnx_files import export_onnx, max_abs, random_inputs, stamp_metadata
from training.train_config import Config, config_from_dict

logger = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
PARITY_BATCH_SIZES = (1, 3)


@dataclass
class ExportReport:
    """What an export did: where, how exact, how big, how long."""

    model_dir: Path
    encoder_max_abs_diff: float
    generator_max_abs_diff: float
    end_to_end_max_abs_diff: float
    bar_max_abs_diff: float
    file_bytes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: which weights were shipped: "as trained" or "moving average (decay D)"
    weights: str = "as trained"


class _EncoderForExport(nn.Module):
    def __init__(self, net: TrackConditionalGenerator) -> None:
        super().__init__()
        self.encoder = net.encoder

    def forward(self, condition: Tensor, known_mask: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.encoder(condition, known_mask))


class _GeneratorForExport(nn.Module):
    def __init__(self, net: TrackConditionalGenerator) -> None:
        super().__init__()
        self.generator = net.generator

    def forward(self, z: Tensor, *features: Tensor) -> Tensor:
        return self.generator(z, *features)


def _data_provenance(cfg: Config) -> dict[str, Any]:
    def describe(path: str, weight: float | None) -> dict[str, Any]:
        item: dict[str, Any] = {"path": path}
        if weight is not None:
            item["weight"] = weight
        try:
            with np.load(path, allow_pickle=False) as f:
                item["phrases"] = int(f["shape"][0])
            item["bytes"] = os.path.getsize(path)
        except (OSError, KeyError, ValueError):
            item["note"] = "not readable at export time"
        return item

    return {
        "train": [describe(f.path, f.weight) for f in cfg.data.train],
        "validation": describe(cfg.data.validation, None) if cfg.data.validation else None,
        "condition_dropout": cfg.data.condition_dropout,
    }


def _check_parity(net: TrackConditionalGenerator, model_dir: Path, latent_dim: int,
                  tolerance: float) -> tuple[float, float, float]:
    """Max abs differences (encoder, generator, end to end) between ONNX Runtime and PyTorch."""
    import onnxruntime as ort

    from musegan_live.model.inference import Accompanist

    options = ort.SessionOptions()
    options.log_severity_level = 3
    enc = ort.InferenceSession(str(model_dir / ENCODER_FILE), options,
                               providers=["CPUExecutionProvider"])
    gen = ort.InferenceSession(str(model_dir / GENERATOR_FILE), options,
                               providers=["CPUExecutionProvider"])
    accompanist = Accompanist.from_dir(model_dir)
    worst = [0.0, 0.0, 0.0]
    for i, batch in enumerate(PARITY_BATCH_SIZES):
        condition, known_mask, z = random_inputs(batch, latent_dim, seed=100 + i)
        with torch.no_grad():
            feats = net.encoder(condition, known_mask)
            tracks = net.generator(z, *feats)
        onnx_feats = enc.run(None, {"condition": condition.numpy(),
                                    "known_mask": known_mask.numpy()})
        worst[0] = max(worst[0], *(max_abs(a, b.numpy())
                                   for a, b in zip(onnx_feats, feats, strict=True)))
        feeds = {"z": z.numpy(), **{f"features_{k}": f.numpy() for k, f in enumerate(feats)}}
        worst[1] = max(worst[1], max_abs(gen.run(["tracks"], feeds)[0], tracks.numpy()))
        end_to_end = accompanist.probabilities(condition.numpy(), known_mask.numpy(), z.numpy())
        worst[2] = max(worst[2], max_abs(end_to_end, tracks.numpy()))
    names = ("encoder outputs", "generator output", "encoder+generator via Accompanist")
    for name, diff in zip(names, worst, strict=True):
        if not diff <= tolerance:  # also catches NaN
            raise ModelError(
                f"ONNX parity check failed: {name} differ from PyTorch by {diff:.3g} "
                f"(limit {tolerance:g}); the export is not trustworthy, nothing was written"
            )
    return worst[0], worst[1], worst[2]


def export_model(checkpoint_path: str | Path, out_dir: str | Path, *, name: str | None = None,
                 tolerance: float = PARITY_TOLERANCE, live_weights: bool = False) -> ExportReport:
    """Export a checkpoint to ``out_dir`` (replaced if it exists) after a parity check.

    Ships the checkpoint's moving average of the weights when it has one (``train.ema_decay``,
    :mod:`training.ema`), else, or with ``live_weights``, the weights as last trained.
    """
    started = time.perf_counter()
    state = load_checkpoint(checkpoint_path)
    cfg = config_from_dict(state["config"])
    net = TrackConditionalGenerator(cfg.model)
    averaged = EMA_CHECKPOINT_KEY in state and not live_weights
    net.load_state_dict(state[EMA_CHECKPOINT_KEY if averaged else "generator"])
    net.eval()
    weights = f"moving average (decay {cfg.train.ema_decay:g})" if averaged else "as trained"
    logger.info("%s: step %d, weights %s", checkpoint_path, state["step"], weights)
    out_dir = Path(out_dir)
    name = name or out_dir.resolve().name
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        condition, known_mask, z = random_inputs(2, cfg.model.latent_dim, seed=1)
        with torch.no_grad():
            feats = tuple(net.encoder(condition, known_mask))
        feature_names = [f"features_{k}" for k in range(len(feats))]
        export_onnx(_EncoderForExport(net).eval(), (condition, known_mask), tmp / ENCODER_FILE,
                     ["condition", "known_mask"], feature_names)
        export_onnx(_GeneratorForExport(net).eval(), (z, *feats), tmp / GENERATOR_FILE,
                     ["z", *feature_names], ["tracks"], varargs=True)
        extra = {"condition_track": cfg.model.condition_track, "latent_dim": cfg.model.latent_dim}
        stamp_metadata(tmp / ENCODER_FILE, {**extra, "part": "encoder"})
        stamp_metadata(tmp / GENERATOR_FILE, {**extra, "part": "generator"})
        export_bar_graphs(net, tmp, extra)
        card = ModelCard(
            directory=out_dir,
            name=name,
            format_version=FORMAT_VERSION,
            representation=representation_constants(),
            condition_track=TRACK_NAMES[net.condition_track],
            output_tracks=[TRACK_NAMES[t] for t in net.output_tracks],
            latent_dim=cfg.model.latent_dim,
            encoder_outputs=len(feats),
            decoding=cfg.model.note_decoding(),
            training=cfg.to_dict(),
            data=_data_provenance(cfg),
            metrics={"training_steps": int(state["step"]), "weights": weights},
        )
        card_path = tmp / CARD_FILE
        card_path.write_text(yaml.safe_dump(card.to_yaml_dict(), sort_keys=False))
        diffs = (*_check_parity(net, tmp, cfg.model.latent_dim, tolerance),
                 check_bar_parity(net, tmp, tolerance))
        card.metrics["export_parity_max_abs_diff"] = max(diffs)
        card_path.write_text(yaml.safe_dump(card.to_yaml_dict(), sort_keys=False))
        sizes = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportReport(out_dir, *diffs, file_bytes=sizes, seconds=time.perf_counter() - started,
                        weights=weights)


#: Files of an older export that a new one keeps: the user's own notes (a model card), never
#: anything derived from the old weights (a TensorRT engine cache would no longer match).
KEPT_ON_REEXPORT = ("*.md",)


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing an older export there but keeping its notes."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        for pattern in KEPT_ON_REEXPORT:
            for kept in target.glob(pattern):
                if kept.is_file() and not (new / kept.name).exists():
                    shutil.copy2(kept, new / kept.name)
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def build_tensorrt_cache(model_dir: Path) -> str:
    """Build the TensorRT EP engine cache for batch 1; return a line saying what happened.

    Raises ModelError (with the reason) where TensorRT cannot run here.
    """
    import onnxruntime as ort

    from musegan_live.model.inference import TRT_CACHE_DIR, Accompanist

    available = ort.get_available_providers()
    if "TensorrtExecutionProvider" not in available:
        raise ModelError(
            "TensorRT engine cache not built: this onnxruntime has no TensorrtExecutionProvider "
            f"(available: {', '.join(available)}). Install onnxruntime-gpu with the TensorRT "
            "libraries on a machine with an NVIDIA GPU and run the export (or the daemon with "
            "the TensorRT provider) there; the ONNX files work without it."
        )
    accompanist = Accompanist.from_dir(model_dir, providers=("TensorRT", "CUDA", "CPU"))
    accompanist.warm_up(runs=2)
    return f"TensorRT engine cache for batch 1 in {model_dir / TRT_CACHE_DIR}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export",
                                     description="checkpoint -> exported_models/NAME (ONNX)")
    parser.add_argument("checkpoint", help="runs/NAME/checkpoint.pt")
    parser.add_argument("-o", "--out", required=True, help="model directory to write")
    parser.add_argument("--name", help="model name in model.yaml (default: the folder name)")
    parser.add_argument("--live-weights", action="store_true",
                        help="export the weights as last trained, not their moving average "
                             "(when the run kept one: train.ema_decay)")
    parser.add_argument("--tensorrt", action="store_true",
                        help="also build an onnxruntime TensorRT engine cache (needs a GPU)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        report = export_model(args.checkpoint, args.out, name=args.name,
                              live_weights=args.live_weights)
    except MuseganLiveError as err:
        print(f"training.export: {err}", file=sys.stderr)
        return err.exit_code
    print(f"exported {report.model_dir} in {report.seconds:.1f} s (weights {report.weights})")
    for file_name, size in report.file_bytes.items():
        print(f"  {file_name:16s} {size / 1024:10.1f} KiB")
    print(f"  parity max |onnx - torch|: encoder {report.encoder_max_abs_diff:.2e}, "
          f"generator {report.generator_max_abs_diff:.2e}, "
          f"end to end {report.end_to_end_max_abs_diff:.2e}, "
          f"last bar from the bar graphs {report.bar_max_abs_diff:.2e} "
          f"(limit {PARITY_TOLERANCE:g})")
    if args.tensorrt:
        try:
            print(build_tensorrt_cache(report.model_dir))
        except MuseganLiveError as err:
            print(f"training.export: --tensorrt: {err}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
