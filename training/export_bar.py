"""The live path's bar graphs of an export: ``bar_encoder.onnx`` and ``bar_generator.onnx``.

:mod:`training.model.bar_plan` computes the window's last bar alone from the same weights as the
whole-window graphs. :func:`export_bar_graphs` writes both files next to them;
:func:`check_bar_parity` runs them through :meth:`Accompanist.last_bar_probabilities` (as the
daemon does, the past bars' summaries included) against bar 4 of the whole PyTorch model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from musegan_live.errors import ModelError
from musegan_live.model.inference import BAR_FEATURE_NAMES, PAST_BEATS_NAME
from musegan_live.model.model_dir import BAR_ENCODER_FILE, BAR_GENERATOR_FILE
from training.model.bar_plan import PAST_BEATS, BarEncoder, BarGenerator
from training.model.networks import TrackConditionalGenerator
from training.onnx_files import export_onnx, max_abs, random_inputs, stamp_metadata

#: batch sizes the bar graphs are checked at (1 is the daemon's)
PARITY_BATCH_SIZES = (1, 3)


def export_bar_graphs(net: TrackConditionalGenerator, out_dir: Path,
                      metadata: dict[str, Any]) -> None:
    """Write the two bar graphs of ``net`` (eval mode) into ``out_dir``, stamped with
    ``metadata`` like the whole-window graphs."""
    condition, known_mask, z = random_inputs(2, net.latent_dim, seed=2)
    bar_encoder, bar_generator = BarEncoder(net).eval(), BarGenerator(net).eval()
    with torch.no_grad():
        bar = bar_encoder(condition[:, -1:], known_mask[:, -1:])
        past = net.encoder.bar_maps(condition[:, :-1], known_mask[:, :-1])[-1]
    export_onnx(bar_encoder, (condition[:, -1:], known_mask[:, -1:]), out_dir / BAR_ENCODER_FILE,
                ["condition", "known_mask"], BAR_FEATURE_NAMES)
    export_onnx(bar_generator, (z, *bar, past[:, :, :PAST_BEATS]), out_dir / BAR_GENERATOR_FILE,
                ["z", *BAR_FEATURE_NAMES, PAST_BEATS_NAME], ["tracks"])
    stamp_metadata(out_dir / BAR_ENCODER_FILE, {**metadata, "part": "bar_encoder"})
    stamp_metadata(out_dir / BAR_GENERATOR_FILE, {**metadata, "part": "bar_generator"})


def check_bar_parity(net: TrackConditionalGenerator, model_dir: Path, tolerance: float) -> float:
    """Max abs difference between the bar graphs' last bar (through the runtime) and bar 4 of
    the whole PyTorch model; ModelError beyond ``tolerance``."""
    from musegan_live.model.inference import Accompanist

    accompanist = Accompanist.from_dir(model_dir)
    worst = 0.0
    for i, batch in enumerate(PARITY_BATCH_SIZES):
        condition, known_mask, z = random_inputs(batch, net.latent_dim, seed=200 + i)
        known_mask[:, :-1] = 1.0  # live: the bars before the planned one have been heard
        with torch.no_grad():
            whole = net(z, condition, known_mask)[:, -1:]
        for _ in range(2):  # the second time, the past bars' summaries are the kept ones
            bar = accompanist.last_bar_probabilities(condition.numpy(), known_mask.numpy(),
                                                     z.numpy())
            worst = max(worst, max_abs(bar, whole.numpy()))
    if not worst <= tolerance:  # also catches NaN
        raise ModelError(
            f"ONNX parity check failed: the bar graphs' last bar differs from bar 4 of the whole "
            f"model by {worst:.3g} (limit {tolerance:g}); nothing was written"
        )
    return worst
