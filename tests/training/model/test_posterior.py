"""The band posterior q(z | band) of the conditional VAE and its KL term."""

from __future__ import annotations

import torch

from musegan_live.representation import N_BARS, STEPS_PER_BAR
from training.model.losses import kl_to_prior
from training.model.parts import N_OUT
from training.model.posterior import BandPosterior, draw

LATENT = 8


def band_with_chord(pitches: list[int]) -> torch.Tensor:
    """One band [1, 4, 48, 84, 4]: every track holds ``pitches`` on the first beat of each bar."""
    band = torch.zeros(1, N_BARS, STEPS_PER_BAR, 84, N_OUT)
    band[:, :, :12, pitches, :] = 1.0
    return band


def test_the_harmony_is_seen_only_where_nothing_was_heard() -> None:
    torch.manual_seed(0)
    q = BandPosterior(LATENT).eval()
    c_major, f_sharp_major = band_with_chord([36, 40, 43]), band_with_chord([42, 46, 49])
    heard, nothing = torch.tensor([False]), torch.tensor([True])
    # same rhythm, other chord: a z drawn where the player was heard cannot carry the chord
    for a, b in zip(q(c_major, heard), q(f_sharp_major, heard), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(q(c_major, nothing)[0], q(f_sharp_major, nothing)[0])


def test_the_rhythm_is_always_seen() -> None:
    torch.manual_seed(0)
    q = BandPosterior(LATENT).eval()
    on_beat = band_with_chord([36])
    off_beat = torch.roll(on_beat, shifts=6, dims=2)  # an 8th later
    assert not torch.equal(q(on_beat, torch.tensor([False]))[0],
                           q(off_beat, torch.tensor([False]))[0])


def test_kl_is_zero_only_at_the_prior_and_draws_follow_the_posterior() -> None:
    zero = torch.zeros(3, LATENT)
    assert kl_to_prior(zero, zero).item() == 0.0
    assert kl_to_prior(zero + 1.0, zero).item() == 0.5 * LATENT  # 0.5 * mean^2 per dimension
    assert kl_to_prior(zero, zero - 2.0).item() > 0.0
    torch.manual_seed(0)
    mean = torch.full((20000, 1), 3.0)
    log_var = torch.full((20000, 1), 2 * torch.log(torch.tensor(0.5)))
    z = draw(mean, log_var)
    assert abs(z.mean().item() - 3.0) < 0.02 and abs(z.std().item() - 0.5) < 0.02
