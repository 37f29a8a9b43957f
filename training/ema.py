"""An exponential moving average (EMA) of the encoder + generator weights, for export.

A GAN's generator does not settle: at a constant learning rate it keeps circling around what the
critic allows, and snapshots 250 steps apart differ audibly (in this project's CPU runs, the share
of bars where the bass drops out moved between 0.5 % and 2.2 % from one snapshot to the next).
The average of the recent weights is steadier and usually better (Karras et al. 2018, Yazici et
al. 2019), so training keeps one next to the live weights and ``training.export`` ships it.

``train.ema_decay`` (d) sets how far back it looks: after every generator step
``ema = d * ema + (1 - d) * weights``; the half-life is ``ln 2 / -ln d`` steps (0.999: ~690).
Early in a run the decay is capped at ``(1 + step) / (10 + step)`` so the average does not drag
the random initial weights along for thousands of steps. BatchNorm running statistics are copied
from the live network, not averaged (they are measurements, and the live ones are current).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

#: key of the averaged encoder + generator in a training checkpoint
CHECKPOINT_KEY = "generator_ema"


def decay_at(step: int, decay: float) -> float:
    """The decay after generator step ``step`` (1-based): ``min(decay, (1+step) / (10+step))``."""
    return min(decay, (1.0 + step) / (10.0 + step))


def make_average(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` in eval mode to hold the average (starts equal to ``net``)."""
    average = copy.deepcopy(net)
    average.eval()
    average.requires_grad_(False)
    return average


@torch.no_grad()
def update_average(average: nn.Module, net: nn.Module, decay: float) -> None:
    """``average = decay * average + (1 - decay) * net`` for parameters; buffers are copied.

    ``decay`` in [0, 1). Both modules must have the same structure.
    """
    for mean, live in zip(average.parameters(), net.parameters(), strict=True):
        mean.lerp_(live.detach(), 1.0 - decay)
    for mean, live in zip(average.buffers(), net.buffers(), strict=True):
        mean.copy_(live)
