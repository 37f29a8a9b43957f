"""Building blocks of ``training.model.networks``: conv layers, per-track joins, chroma, onsets.

All tensors are channels-first ``[B, C, bars, steps, pitch]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from musegan_live.representation import N_PITCHES, N_TRACKS

#: the generator's output tracks (every track but the condition)
N_OUT = N_TRACKS - 1


def conv(
    c_in: int,
    c_out: int,
    kernel: tuple[int, int, int],
    *,
    groups: int = 1,
    norm: bool = True,
    padding: tuple[int, int, int] | None = None,
) -> nn.Sequential:
    """Conv3d + (BatchNorm) + LeakyReLU(0.2).

    Without ``padding`` the stride equals the kernel (non-overlapping windows, as MuseGAN does), so
    each axis shrinks by its kernel size; with ``padding`` the stride is 1 and the size is kept.
    The critic uses ``norm=False``: batch norm would make one example's score depend on the others,
    which the gradient penalty of WGAN-GP assumes it does not.
    """
    stride = kernel if padding is None else (1, 1, 1)
    layers: list[nn.Module] = [
        nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=padding or 0, groups=groups,
                  bias=not norm)
    ]
    if norm:
        layers.append(nn.BatchNorm3d(c_out))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def tconv(c_in: int, c_out: int, kernel: tuple[int, int, int], *, groups: int = 1) -> nn.Sequential:
    """ConvTranspose3d with stride = kernel (each axis grows by its kernel) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.ConvTranspose3d(c_in, c_out, kernel, stride=kernel, groups=groups, bias=False),
        nn.BatchNorm3d(c_out),
        nn.ReLU(),
    )


def join_per_track(x: Tensor, shared: Tensor, n_tracks: int = N_OUT) -> Tensor:
    """Append the same ``shared`` map to each track's channel group.

    ``x`` [B, n*C, ...] (track-major channel groups), ``shared`` [B, F, ...] -> [B, n*(C+F), ...],
    ready for a grouped convolution with ``groups=n``.
    """
    per_track = x.unflatten(1, (n_tracks, -1))
    shared_n = shared.unsqueeze(1).expand(-1, n_tracks, -1, -1, -1, -1)
    return torch.cat([per_track, shared_n], dim=2).flatten(1, 2)


def pitch_class_profile(x: Tensor, beats_per_bar: int) -> Tensor:
    """Chroma per beat: ``[B, T, bars, steps, 84]`` -> ``[B, T, bars, beats, 12]``.

    Sums the activations of each pitch class over every octave and over the steps of each beat
    (pitch 0 is MIDI 24, a C, so index % 12 is the pitch class).
    """
    b, t, bars, steps, pitches = x.shape
    octaves = N_PITCHES // 12
    grouped = x.reshape(b, t, bars, beats_per_bar, steps // beats_per_bar, octaves, 12)
    return grouped.sum(dim=(4, 5))


def onset_strength(x: Tensor) -> Tensor:
    """How many notes start at each step: ``[B, T, bars, steps, 84]`` -> ``[B, T, bars, steps, 1]``.

    A note starts where a pitch is on and was off one step earlier, across bar lines too (the
    phrase is treated as one timeline; the step before the phrase counts as off).
    """
    b, t, bars, steps, pitches = x.shape
    flat = x.reshape(b, t, bars * steps, pitches)
    previous = F.pad(flat, (0, 0, 1, 0))[:, :, :-1]
    onsets = torch.relu(flat - previous).sum(dim=-1)
    return onsets.reshape(b, t, bars, steps, 1)
