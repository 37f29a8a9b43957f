"""Training checkpoints: write atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain values only (so loading never runs pickled code):
``generator``, ``discriminator`` (state dicts), ``opt_generator``, ``opt_discriminator``,
``sched_generator``, ``sched_discriminator``, ``step`` (generator steps done), ``config`` (the
training config as a nested dict), ``rng`` (torch CPU / CUDA generator states and the data
sampler's numpy state, all as uint8 tensors), ``format_version``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musegan_live.errors import DataFileError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def _bytes_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).clone()


def rng_states(numpy_rng: np.random.Generator) -> dict[str, Any]:
    """The states of every random generator training uses, as tensors."""
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _bytes_tensor(json.dumps(numpy_rng.bit_generator.state).encode()),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], numpy_rng: np.random.Generator) -> None:
    """Put back what :func:`rng_states` saved (CUDA states only when CUDA is present)."""
    torch.set_rng_state(states["torch"])
    numpy_rng.bit_generator.state = json.loads(bytes(states["numpy"].tolist()).decode())
    if "cuda" in states and torch.cuda.is_available():
        cuda_states = list(states["cuda"])
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            logger.warning(
                "checkpoint has %d CUDA RNG states, this machine %d devices: not restored",
                len(cuda_states), torch.cuda.device_count())


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save({"format_version": FORMAT_VERSION, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such checkpoint (training writes runs/NAME/checkpoint.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise DataFileError(f"{path}: not a readable training checkpoint: {err}") from err
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise DataFileError(
            f"{path}: not a musegan-live checkpoint of format {FORMAT_VERSION} "
            "(written by python -m training.train)"
        )
    return state
