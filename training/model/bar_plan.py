"""The live path's model: only the window's last bar, from the same weights as the whole one.

A live plan uses bar 4 of the window alone, and every map of the encoder and every stage of the
generator after ``Linear(z)`` works within one bar; only the causal beat context spans bars, and
it reads nothing but per-beat summaries. So a plan needs the encoder of bar 4 (bars 1-3 are over:
their summaries do not change and are kept by the caller), the context over the 16 beats, and the
generator of bar 4: about a quarter of the work. The two modules here are exported next to the
whole-window graphs (``training/export.py``) and checked against them:

- :class:`BarEncoder`: ``condition`` [B, 1, 48, 84], ``known_mask`` [B, 1, 48] -> the bar's six
  encoder maps and its beat summaries ``[B, C, 4]`` (what a later plan passes back as the past);
- :class:`BarGenerator`: ``z``, the six maps, the bar's beat summaries and the 12 beat summaries of
  the 3 bars before it ``[B, C, 12]`` -> probabilities ``[B, 1, 48, 84, 4]`` of the bar.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.model.networks import BEATS, TrackConditionalGenerator

#: beats of the window before its last bar (the summaries a plan is given): 12
PAST_BEATS = 12


class BarEncoder(nn.Module):
    """The encoder of one bar (see the module docstring)."""

    def __init__(self, net: TrackConditionalGenerator) -> None:
        super().__init__()
        self.encoder = net.encoder

    def forward(self, condition: Tensor, known_mask: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.encoder.bar_maps(condition, known_mask))


class BarGenerator(nn.Module):
    """The context over the window's beats and the generator of its last bar."""

    def __init__(self, net: TrackConditionalGenerator) -> None:
        super().__init__()
        self.context = net.encoder.context
        self.generator = net.generator
        self.context_channels = net.encoder.channels[-1]

    def forward(self, z: Tensor, f_full: Tensor, f_12x84: Tensor, f_12x7: Tensor, f_4x7: Tensor,
                f_4x1: Tensor, f_1x1: Tensor, bar_beats: Tensor, past_beats: Tensor) -> Tensor:
        beats = torch.cat([past_beats, bar_beats], dim=2)  # [B, C, 16]: the window's beats
        ctx = self.context(beats)[:, :, -BEATS:].reshape(-1, self.context_channels, 1, BEATS, 1)
        latent = self.generator.bar_latents(z)[:, :, -1:]
        return self.generator.from_bar_latents(latent, f_full, f_12x84, f_12x7, f_4x7, f_4x1,
                                               f_1x1, ctx)
