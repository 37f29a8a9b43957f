"""The band posterior: what ``z`` means, learned as in a conditional VAE (training only).

A generator trained on the reconstruction term alone predicts the *average* band for what was
heard and ignores ``z``: every ``z`` gives the same accompaniment, and from nothing heard that
average is a blur under every start threshold (only a drum pulse). :class:`BandPosterior` reads
the real band of the training phrase and proposes ``q(z | band)``; the generator reconstructs the
band from a ``z`` drawn from it, and a KL term (``training.model.losses.kl_to_prior``) keeps
``q`` close to the ``N(0, I)`` that live use, ``generate`` and ``interpolate`` draw from. So
``z`` carries what the condition does not say: the groove, and which tracks play when.

What the posterior may see decides what ``z`` can carry:

- the band's *rhythm*: for each output track, whether any pitch sounds, per 16th (16 per bar);
- the band's *harmony* (pitch-class profile per beat) **only for examples that heard nothing**
  (generation from scratch). Where the player was heard the harmony must come from the player;
  if ``z`` could carry it, a ``z`` drawn at random would play a random chord over the player.

Nothing of this module is exported: at run time ``z`` comes from the prior.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from musegan_live.representation import N_BARS, STEPS_PER_BAR
from training.model.parts import N_OUT, pitch_class_profile

BEATS = 4
#: the rhythm's time resolution: 16ths, 16 per bar (3 steps each)
RHYTHM_STEPS = 16
HIDDEN = 128


class BandPosterior(nn.Module):
    """``q(z | band)``: the real band ``[B, 4, 48, 84, 4]`` -> ``(mean, log_var)`` ``[B, latent]``.

    ``heard_nothing`` bool ``[B]`` says which examples may show their harmony (see the module).
    """

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        rhythm_in = N_OUT * N_BARS * RHYTHM_STEPS
        harmony_in = N_OUT * N_BARS * BEATS * 12
        self.rhythm = nn.Sequential(nn.Linear(rhythm_in, HIDDEN), nn.LeakyReLU(0.2))
        self.harmony = nn.Sequential(nn.Linear(harmony_in, HIDDEN), nn.LeakyReLU(0.2))
        self.out = nn.Linear(2 * HIDDEN, 2 * latent_dim)

    def forward(self, band: Tensor, heard_nothing: Tensor) -> tuple[Tensor, Tensor]:
        b = band.shape[0]
        x = band.permute(0, 4, 1, 2, 3)  # [B, 4 tracks, 4 bars, 48 steps, 84]
        sounding = x.amax(dim=-1)  # [B, 4, 4, 48]: any pitch on
        rhythm = sounding.reshape(b, N_OUT, N_BARS, RHYTHM_STEPS, STEPS_PER_BAR // RHYTHM_STEPS)
        rhythm = rhythm.amax(dim=-1).reshape(b, -1)
        # chroma per beat, scaled so a held triad is ~1 per pitch class (12 steps a beat)
        harmony = pitch_class_profile(x, BEATS).reshape(b, -1) / (STEPS_PER_BAR // BEATS)
        harmony = harmony * heard_nothing.to(harmony.dtype).unsqueeze(1)
        h = torch.cat([self.rhythm(rhythm), self.harmony(harmony)], dim=1)
        mean, log_var = self.out(h).chunk(2, dim=1)
        return mean, log_var.clamp(-10.0, 5.0)


def draw(mean: Tensor, log_var: Tensor) -> Tensor:
    """A ``z`` from ``N(mean, exp(log_var))`` that gradients flow through (reparameterised)."""
    return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
