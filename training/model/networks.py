"""MuseGAN's track-conditional generator, with a mask of known condition steps.

Shapes: PyTorch tensors are channels-first ``[B, C, bars=4, steps=48, pitch=84]``; the data's
phrase layout ``[B, 4, 48, 84, tracks]`` is converted at the edges (:func:`to_channels_first`).
Resolutions below are written (bars, steps, pitch).

- :class:`Encoder` E sees the condition track multiplied by the known-step mask, plus the mask
  itself, and returns maps at six resolutions (pitch-time and time-pitch conv pairs as in MuseGAN)
  and a seventh: a per-beat *context* from a causal temporal convolution over the window's 16
  beats (:class:`CausalBeatContext`). Every other map is computed within one bar, so the context is
  the only path from bars 1-3 to bar 4: the plan for the bar about to sound, mostly unheard, is
  made from what was heard before it.
- :class:`Generator` G maps ``z`` through shared stages (bars -> beats -> octaves) and then
  per-track private pitch-time and time-pitch stages; every stage is concatenated with the
  encoder map of the same resolution (U-Net joins), and the last one with the full-resolution
  map. The beat context joins the octave stage and also adds a learned per-beat, per-track
  pitch-class bias to the output logits (a short path from "which chord was heard" to "which
  pitches to play"). Output: sigmoid probabilities ``[B, 4, 48, 84, 4]`` of the four tracks.
- :class:`Discriminator` D (the WGAN critic) scores a whole five-track phrase: per-track private
  streams, a shared stream across tracks, a chroma stream and an onset stream, as in MuseGAN.

Per-track layers are grouped convolutions (one group per track), which is the same as separate
per-track networks but runs as one operator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from musegan_live.representation import N_BARS, N_PITCHES, N_TRACKS, STEPS_PER_BAR, track_index
from training.model.parts import (
    N_OUT,
    conv,
    join_per_track,
    onset_strength,
    pitch_class_profile,
    tconv,
)
from training.train_config import ModelConfig

OCTAVES = N_PITCHES // 12  # 7
BEATS = 4
STEPS_PER_BEAT_FINE = STEPS_PER_BAR // BEATS  # 12
COARSE_STEPS = 12  # the private stages' time resolution: 12 per bar (3 per beat)
#: share of (step, pitch) cells that are on in a typical LPD-5 track (about 1-3 %)
INITIAL_NOTE_PROBABILITY = 0.02
#: beats in the 4-bar window: the time axis of the causal beat context
WINDOW_BEATS = N_BARS * BEATS
#: dilations of the causal context's convolutions (kernel 3): receptive field 1 + 2 * 15 = 31
#: beats, so every beat sees the whole window before it
CONTEXT_DILATIONS = (1, 2, 4, 8)


def to_channels_first(phrases: Tensor) -> Tensor:
    """``[B, 4, 48, 84, T]`` -> ``[B, T, 4, 48, 84]``."""
    return phrases.permute(0, 4, 1, 2, 3)


def to_tracks_last(tensor: Tensor) -> Tensor:
    """``[B, T, 4, 48, 84]`` -> ``[B, 4, 48, 84, T]``."""
    return tensor.permute(0, 2, 3, 4, 1)


def heard_beat_features(heard: Tensor, mask: Tensor) -> Tensor:
    """Per-beat summary of what was heard: ``[B, 13, 4 * bars]`` (channels, beats).

    ``heard`` [B, bars, 48, 84] (condition times mask), ``mask`` [B, bars, 48, 1]. Channels 0-11:
    the beat's pitch-class profile (steps x octaves summed, scaled by 1/12 so a held triad is ~1
    per pitch class); channel 12: the share of the beat's steps that have been heard (0 = unheard).
    """
    b, bars = heard.shape[:2]
    chroma = pitch_class_profile(heard.unsqueeze(1), BEATS)  # [B, 1, bars, 4 beats, 12]
    chroma = chroma.reshape(b, bars * BEATS, 12) / STEPS_PER_BEAT_FINE
    heard_share = mask.reshape(b, bars * BEATS, STEPS_PER_BEAT_FINE).mean(dim=2, keepdim=True)
    return torch.cat([chroma, heard_share], dim=2).transpose(1, 2)


class CausalBeatContext(nn.Module):
    """A causal temporal convolution over the window's 16 beats.

    Input ``[B, C_in, 16]``, output ``[B, C, 16]``: beat ``k``'s output depends on beats ``0..k``
    only (each convolution is padded on the left alone), so the context of a beat never sees a
    later one, and a beat that has not been heard contributes only what the mask says (nothing).
    Residual blocks of dilated kernel-3 convolutions with LeakyReLU.
    """

    def __init__(self, c_in: int, channels: int) -> None:
        super().__init__()
        self.inp = nn.Conv1d(c_in, channels, kernel_size=1)
        self.blocks = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size=3, dilation=d) for d in CONTEXT_DILATIONS
        )

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.inp(x), 0.2)
        for block in self.blocks:
            pad = 2 * block.dilation[0]
            x = x + F.leaky_relu(block(F.pad(x, (pad, 0))), 0.2)
        return x


class Encoder(nn.Module):
    """E: ``condition`` [B,4,48,84] and ``known_mask`` [B,4,48] (1 = heard) -> list of maps.

    The condition is multiplied by the mask here, so unheard steps cannot reach any output.
    Returned maps (channels, bars, steps, pitch), fine to coarse:
    ``f_full (c0,4,48,84), f_12x84 (c1,4,12,84), f_12x7 (c2,4,12,7), f_4x7 (c3,4,4,7),
    f_4x1 (c4,4,4,1), f_1x1 (c4,4,1,1)``, and the causal beat context ``ctx (cx,4,4,1)``
    (``cx = context_channels``), computed from ``f_4x1`` and :func:`heard_beat_features`.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c0, c1, c2, c3, c4 = cfg.encoder_channels
        cx = cfg.context_channels
        self.channels = [c0, c1, c2, c3, c4, c4, cx]
        self.full = conv(2, c0, (1, 3, 3), padding=(0, 1, 1))
        # pitch-time pair: octaves first, then time
        self.pt1 = conv(c0, c1, (1, 1, 12))
        self.pt2 = conv(c1, c1, (1, 4, 1))
        # time-pitch pair: time first, then octaves
        self.tp1 = conv(c0, c1, (1, 4, 1))
        self.tp2 = conv(c1, c1, (1, 1, 12))
        self.merge = conv(2 * c1, c2, (1, 1, 1))
        self.to_4x7 = conv(c2, c3, (1, 3, 1))
        self.to_4x1 = conv(c3, c4, (1, 1, OCTAVES))
        self.to_1x1 = conv(c4, c4, (1, BEATS, 1))
        self.context = CausalBeatContext(c4 + 13, cx)

    def forward(self, condition: Tensor, known_mask: Tensor) -> list[Tensor]:
        *maps, beats = self.bar_maps(condition, known_mask)
        ctx = self.context(beats).view(-1, self.channels[-1], N_BARS, BEATS, 1)
        return [*maps, ctx]

    def bar_maps(self, condition: Tensor, known_mask: Tensor) -> list[Tensor]:
        """Everything but the context, for any number of bars (each bar on its own):
        ``condition`` [B, bars, 48, 84], ``known_mask`` [B, bars, 48] -> the six maps and the
        beat summaries ``[B, c4 + 13, 4 * bars]`` the context reads."""
        mask = known_mask.to(condition.dtype).unsqueeze(-1)  # [B,bars,48,1]
        heard = condition * mask
        x = torch.stack([heard, mask.expand_as(heard)], dim=1)  # [B,2,bars,48,84]
        f_full = self.full(x)
        f_12x84 = self.tp1(f_full)
        f_12x7 = self.merge(torch.cat([self.pt2(self.pt1(f_full)), self.tp2(f_12x84)], dim=1))
        f_4x7 = self.to_4x7(f_12x7)
        f_4x1 = self.to_4x1(f_4x7)
        f_1x1 = self.to_1x1(f_4x1)
        beats = torch.cat([f_4x1.flatten(2), heard_beat_features(heard, mask)], dim=1)
        return [f_full, f_12x84, f_12x7, f_4x7, f_4x1, f_1x1, beats]


class Generator(nn.Module):
    """G: ``z`` [B, latent_dim] and the encoder maps -> probabilities [B, 4, 48, 84, 4].

    The four output tracks are the representation's tracks without the condition track, in order.
    """

    def __init__(self, cfg: ModelConfig, encoder_channels: list[int]) -> None:
        super().__init__()
        e_full, e_12x84, e_12x7, e_4x7, e_4x1, e_1x1, e_ctx = encoder_channels
        s0, s1, s2 = cfg.generator_shared_channels
        p0, p1, p2 = cfg.generator_private_channels
        self.latent_dim = cfg.latent_dim
        self.s0 = s0
        # shared temporal stage: z -> one vector per bar (4,1,1)
        self.dense = nn.Sequential(
            nn.Linear(cfg.latent_dim, s0 * N_BARS), nn.BatchNorm1d(s0 * N_BARS), nn.ReLU()
        )
        self.beats = tconv(s0 + e_1x1, s1, (1, BEATS, 1))  # -> (4,4,1)
        self.octaves = tconv(s1 + e_4x1 + e_ctx, s2, (1, 1, OCTAVES))  # -> (4,4,7)
        shared = s2 + e_4x7
        n = N_OUT
        # private pitch-time stream: pitches within octaves, then time
        self.pt1 = tconv(n * shared, n * p0, (1, 1, 12), groups=n)  # -> (4,4,84)
        self.pt2 = tconv(n * p0, n * p1, (1, 3, 1), groups=n)  # -> (4,12,84)
        # private time-pitch stream: time first (joined with the encoder's 12x7 map), then pitch
        self.tp1 = tconv(n * shared, n * p0, (1, 3, 1), groups=n)  # -> (4,12,7)
        self.tp2 = tconv(n * (p0 + e_12x7), n * p1, (1, 1, 12), groups=n)  # -> (4,12,84)
        # merged: both streams + the encoder's 12x84 map, up to 48 steps per bar
        self.up = tconv(n * (2 * p1 + e_12x84), n * p2, (1, STEPS_PER_BAR // COARSE_STEPS, 1),
                        groups=n)  # -> (4,48,84)
        # per-step, per-pitch read-out joined with the full-resolution condition map
        self.out = nn.Conv3d(n * (p2 + e_full), n, kernel_size=1, groups=n)
        # Start from the data's sparsity instead of p=0.5 everywhere: with a sigmoid at 0.5 the
        # first fakes are a dense grey wall, far from any phrase, and the critic's early wins
        # are worthless to G. A bias of logit(p) makes the untrained G's notes as rare as real
        # ones (the prior-probability initialisation of Lin et al. 2017's focal loss).
        nn.init.constant_(self.out.bias, math.log(INITIAL_NOTE_PROBABILITY
                                                  / (1 - INITIAL_NOTE_PROBABILITY)))
        # per beat and track, a bias for each pitch class from the causal context; starts at 0
        # so the untrained model is the plain U-Net, and learns "play the heard chord" quickly
        self.chroma_bias = nn.Conv3d(e_ctx, N_OUT * 12, kernel_size=1)
        nn.init.zeros_(self.chroma_bias.weight)
        nn.init.zeros_(self.chroma_bias.bias)

    def forward(self, z: Tensor, *features: Tensor) -> Tensor:
        return self.from_bar_latents(self.bar_latents(z), *features)

    def bar_latents(self, z: Tensor) -> Tensor:
        """The shared temporal stage: ``z`` [B, latent_dim] -> a vector per bar [B, s0, 4, 1, 1]."""
        return self.dense(z).view(-1, self.s0, N_BARS, 1, 1)

    def from_bar_latents(self, x: Tensor, *features: Tensor) -> Tensor:
        """Everything after the shared temporal stage, for any number of bars (each bar on its
        own): latents [B, s0, bars, 1, 1] and the encoder maps of the same bars ->
        probabilities [B, bars, 48, 84, 4]."""
        f_full, f_12x84, f_12x7, f_4x7, f_4x1, f_1x1, ctx = features
        bars = x.shape[2]
        x = self.beats(torch.cat([x, f_1x1], dim=1))
        x = self.octaves(torch.cat([x, f_4x1, ctx], dim=1))
        shared = torch.cat([x, f_4x7], dim=1)
        shared_n = shared.repeat(1, N_OUT, 1, 1, 1)
        pt = self.pt2(self.pt1(shared_n))
        tp = self.tp2(join_per_track(self.tp1(shared_n), f_12x7))
        both = torch.cat([pt.unflatten(1, (N_OUT, -1)), tp.unflatten(1, (N_OUT, -1))], dim=2)
        x = self.up(join_per_track(both.flatten(1, 2), f_12x84))
        logits = self.out(join_per_track(x, f_full))
        # [B, N*12, bars, 4, 1] -> per track, bar, beat, pitch class -> every step and octave
        bias = self.chroma_bias(ctx).view(-1, N_OUT, 12, bars, BEATS, 1, 1)
        bias = bias.permute(0, 1, 3, 4, 5, 6, 2).expand(
            -1, -1, -1, -1, STEPS_PER_BEAT_FINE, OCTAVES, -1)
        logits = logits + bias.reshape(logits.shape)
        return to_tracks_last(torch.sigmoid(logits))


class TrackConditionalGenerator(nn.Module):
    """E + G as one module (what the generator optimizer trains and DDP wraps)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.condition_track = track_index(cfg.condition_track)
        self.output_tracks = [t for t in range(N_TRACKS) if t != self.condition_track]
        self.latent_dim = cfg.latent_dim
        self.encoder = Encoder(cfg)
        self.generator = Generator(cfg, self.encoder.channels)

    def forward(self, z: Tensor, condition: Tensor, known_mask: Tensor) -> Tensor:
        """``z`` [B,L], ``condition`` [B,4,48,84], ``known_mask`` [B,4,48] -> [B,4,48,84,4]."""
        return self.generator(z, *self.encoder(condition, known_mask))

    def full_phrase(self, condition: Tensor, tracks: Tensor) -> Tensor:
        """Insert the condition [B,4,48,84] among the 4 tracks -> [B,4,48,84,5]."""
        c = self.condition_track
        cond = condition.to(tracks.dtype).unsqueeze(-1)
        return torch.cat([tracks[..., :c], cond, tracks[..., c:]], dim=-1)


class Discriminator(nn.Module):
    """D (WGAN critic): five-track phrases [B,4,48,84,5] (values in [0,1]) -> scores [B]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d0, d1, d2 = cfg.discriminator_private_channels
        s0, s1, s2 = cfg.discriminator_shared_channels
        c0, c1 = cfg.discriminator_chroma_channels
        o0, o1, o2 = cfg.discriminator_onset_channels
        t = N_TRACKS
        # per-track private streams at (4,48,84) -> (4,16,7)
        self.pt1 = conv(t, t * d0, (1, 1, 12), groups=t, norm=False)
        self.pt2 = conv(t * d0, t * d1, (1, 3, 1), groups=t, norm=False)
        self.tp1 = conv(t, t * d0, (1, 3, 1), groups=t, norm=False)
        self.tp2 = conv(t * d0, t * d1, (1, 1, 12), groups=t, norm=False)
        self.private_merge = conv(2 * t * d1, t * d2, (1, 1, 1), groups=t, norm=False)
        # shared stream across tracks: (4,16,7) -> (4,4,7) -> (4,4,1) -> (4,1,1)
        self.shared = nn.Sequential(
            conv(t * d2, s0, (1, 4, 1), norm=False),
            conv(s0, s1, (1, 1, OCTAVES), norm=False),
            conv(s1, s2, (1, BEATS, 1), norm=False),
        )
        # chroma stream: pitch-class profile per beat (4,4,12) -> (4,4,1) -> (4,1,1)
        self.chroma = nn.Sequential(
            conv(t, c0, (1, 1, 12), norm=False), conv(c0, c1, (1, BEATS, 1), norm=False)
        )
        # onset stream: onsets per step (4,48,1) -> (4,12,1) -> (4,4,1) -> (4,1,1)
        self.onset = nn.Sequential(
            conv(t, o0, (1, 4, 1), norm=False),
            conv(o0, o1, (1, 3, 1), norm=False),
            conv(o1, o2, (1, BEATS, 1), norm=False),
        )
        m = cfg.discriminator_merge_channels
        # a temporal conv across neighbouring bars (stride 1): bars 4 -> 3
        self.merge = conv(s2 + c1 + o2, m, (2, 1, 1), norm=False, padding=(0, 0, 0))
        self.score = nn.Linear(m * (N_BARS - 1), 1)

    def forward(self, phrases: Tensor) -> Tensor:
        x = to_channels_first(phrases)  # [B,5,4,48,84]
        pt = self.pt2(self.pt1(x)).unflatten(1, (N_TRACKS, -1))
        tp = self.tp2(self.tp1(x)).unflatten(1, (N_TRACKS, -1))
        private = self.private_merge(torch.cat([pt, tp], dim=2).flatten(1, 2))
        shared = self.shared(private)
        chroma = self.chroma(pitch_class_profile(x, BEATS))
        onset = self.onset(onset_strength(x))
        merged = self.merge(torch.cat([shared, chroma, onset], dim=1))
        return self.score(merged.flatten(1)).squeeze(1)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
