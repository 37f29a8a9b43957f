"""Losses for training the critic D and the generator G (WGAN-GP, as MuseGAN).

Every term and why it is there:

- Wasserstein loss (Arjovsky et al. 2017): D maximises ``D(real) - D(fake)``, G maximises
  ``D(fake)``. Unlike the original GAN loss it does not saturate when D wins, which matters for
  pianorolls: G's early outputs are trivially distinguishable (grey mush vs. sparse notes).
- Gradient penalty (Gulrajani et al. 2017), weight ``gp_lambda`` (default 10, the paper's and
  MuseGAN's): keeps D about 1-Lipschitz by pulling ``|grad D|`` to 1 on random points between real
  and fake phrases. Without it the Wasserstein estimate is meaningless and training diverges.
- Drift penalty (Karras et al. 2018, "progressive GAN"), weight ``drift_epsilon`` (default 1e-3):
  WGAN's loss is invariant to adding a constant to D, so D's outputs can wander far from zero
  over a long run, and large outputs lose precision under bf16. A tiny ``E[D(real)^2]`` term
  anchors them without changing what D learns.

The critic is always fed values in [0, 1]: real binary phrases and G's sigmoid probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn


@dataclass
class CriticLoss:
    """The critic's loss and its parts (detached floats for logging come from ``.item()``)."""

    total: Tensor
    wasserstein: Tensor  # E[D(real)] - E[D(fake)], the critic's estimate of the W-distance
    gradient_penalty: Tensor
    drift: Tensor


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP penalty ``E[(||grad D(x_hat)||_2 - 1)^2]`` on ``x_hat = a*real + (1-a)*fake``.

    ``real`` and ``fake`` are ``[B, ...]`` with the same shape; ``a ~ U(0,1)`` per example. The
    gradient is taken with ``create_graph=True`` so the penalty itself can be backpropagated.
    Computed in float32: the squared-norm of a bf16 gradient is too coarse near 1.
    """
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
    mixed = (alpha * real.float() + (1 - alpha) * fake.float()).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def critic_loss(
    critic: nn.Module,
    real: Tensor,
    fake: Tensor,
    gp_lambda: float,
    drift_epsilon: float,
    penalty_critic: nn.Module | None = None,
) -> CriticLoss:
    """The critic's loss on a batch: ``D(fake) - D(real) + lambda*GP + eps*D(real)^2``.

    ``real`` and ``fake`` are full five-track phrases ``[B, 4, 48, 84, 5]``; ``fake`` must already
    be detached from G. ``penalty_critic`` is the module used for the gradient penalty (the
    unwrapped critic under DDP, whose reducer must not see the inner ``autograd.grad``).
    """
    # One forward over real and fake together: half the kernel launches, and under DDP exactly
    # one forward per backward, which its gradient reducer expects.
    d_real, d_fake = critic(torch.cat([real, fake.to(real.dtype)])).float().split(real.shape[0])
    wasserstein = d_real.mean() - d_fake.mean()
    gp = (
        gradient_penalty(penalty_critic or critic, real, fake)
        if gp_lambda > 0
        else torch.zeros((), device=real.device)
    )
    drift = (d_real**2).mean()
    total = -wasserstein + gp_lambda * gp + drift_epsilon * drift
    return CriticLoss(total=total, wasserstein=wasserstein.detach(), gradient_penalty=gp.detach(),
                      drift=drift.detach())


def generator_loss(critic: nn.Module, fake: Tensor) -> Tensor:
    """G's loss ``-E[D(fake)]`` on full five-track phrases that still carry G's graph."""
    return -critic(fake).float().mean()


def reconstruction_loss(tracks: Tensor, real_tracks: Tensor, keep: Tensor) -> Tensor:
    """Binary cross-entropy of G's probabilities against the real tracks, on kept examples.

    ``tracks`` [B, 4, 48, 84, 4] probabilities, ``real_tracks`` the same shape in {0, 1}, ``keep``
    bool [B] (False for examples whose condition was dropped: their "real" band is one of many
    that fit no condition, so there is nothing to reconstruct). Mean over the kept cells; 0 when
    no example is kept.
    """
    if not bool(keep.any()):
        return tracks.sum() * 0.0
    with torch.autocast(device_type=tracks.device.type, enabled=False):
        return F.binary_cross_entropy(tracks[keep].float(), real_tracks[keep].float())


def kl_to_prior(mean: Tensor, log_var: Tensor) -> Tensor:
    """``KL(N(mean, exp(log_var)) || N(0, I))`` in nats, summed over ``z``'s dimensions, mean over
    the batch (the conditional VAE's term that keeps the posterior's ``z`` drawable at run time)."""
    with torch.autocast(device_type=mean.device.type, enabled=False):
        mean, log_var = mean.float(), log_var.float()
        return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(dim=1).mean()
