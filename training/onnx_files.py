"""ONNX files of an export: torch -> ONNX with a dynamic batch, metadata, parity inputs.

Shared by the whole-window graphs (``training/export.py``) and the live path's bar graphs
(``training/export_bar.py``).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from musegan_live.model.model_dir import METADATA_PREFIX
from musegan_live.representation import (
    N_BARS,
    N_PITCHES,
    STEPS_PER_BAR,
    STEPS_PER_PHRASE,
    representation_constants,
)
from training.data.dataset import known_mask_from_now

#: ONNX opset written (onnxruntime >= 1.14 runs it; the dynamo exporter's native opset)
OPSET = 18


def random_inputs(batch: int, latent_dim: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Random ``(condition, known_mask, z)``: sparse notes, a random "now", normal z."""
    gen = torch.Generator().manual_seed(seed)
    condition = (torch.rand(batch, N_BARS, STEPS_PER_BAR, N_PITCHES, generator=gen) < 0.05).float()
    now = torch.randint(0, STEPS_PER_PHRASE + 1, (batch,), generator=gen).numpy()
    known_mask = torch.from_numpy(known_mask_from_now(now))
    z = torch.randn(batch, latent_dim, generator=gen)
    return condition, known_mask, z


def export_onnx(module: nn.Module, args: tuple[Tensor, ...], path: Path, input_names: list[str],
                 output_names: list[str], varargs: bool = False) -> None:
    """torch.export-based ONNX export with a dynamic batch axis on every input.

    ``varargs``: the module's forward is ``(first, *rest)``, whose dynamic shapes torch.export
    wants nested the same way.
    """
    batch = torch.export.Dim("batch", min=1, max=4096)
    per_input = [{0: batch} for _ in args]
    dynamic_shapes = (per_input[0], tuple(per_input[1:])) if varargs else tuple(per_input)
    # The exporter logs and warns about things that do not concern this model (torchvision ops,
    # deprecations inside torch); the parity check is what tells whether the export is right.
    exporter_logger = logging.getLogger("torch.onnx")
    level = exporter_logger.level
    exporter_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message=".*axis name.*")
            _torch_onnx_export(module, args, path, input_names, output_names, dynamic_shapes)
    finally:
        exporter_logger.setLevel(level)


def _torch_onnx_export(module: nn.Module, args: tuple[Tensor, ...], path: Path,
                       input_names: list[str], output_names: list[str], dynamic_shapes) -> None:
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=input_names,
        output_names=output_names,
        dynamic_shapes=dynamic_shapes,
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
    )


def stamp_metadata(path: Path, extra: dict[str, Any]) -> None:
    """Write ``musegan_live.<key>`` = JSON metadata (representation constants + ``extra``)."""
    import onnx

    model = onnx.load(str(path))
    entries = {**representation_constants(), **extra}
    del model.metadata_props[:]
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key = METADATA_PREFIX + key
        prop.value = json.dumps(value)
    model.producer_name = "musegan-live training.export"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
