"""The model, losses and config of ``training`` at tiny sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from musegan_live.errors import ConfigError
from musegan_live.representation import (
    N_TRACKS,
    PHRASE_SHAPE,
    TRACK_NAMES,
)
from training.data.dataset import known_mask_from_now
from training.model.losses import critic_loss, gradient_penalty, reconstruction_loss
from training.model.networks import Discriminator, TrackConditionalGenerator
from training.train import lr_factor
from training.train_config import apply_override, load_config

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "configs" / "train" / "tiny.yaml"


def tiny_model_config(track: str = "Piano"):
    return load_config(TINY, [f"model.condition_track={track}"]).model


def random_condition(batch: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 4, 48, 84, generator=gen) < 0.05).float()


@pytest.mark.parametrize("track", TRACK_NAMES)
def test_every_track_can_be_the_condition(track: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_model_config(track)
    net, critic = TrackConditionalGenerator(cfg), Discriminator(cfg)
    condition = random_condition(3, seed=1)
    with torch.no_grad():
        tracks = net(torch.randn(3, cfg.latent_dim), condition, torch.ones(3, 4, 48))
        phrase = net.full_phrase(condition, tracks)
        scores = critic(phrase)
    assert tracks.shape == (3, 4, 48, 84, 4)
    assert float(tracks.min()) >= 0.0 and float(tracks.max()) <= 1.0
    assert phrase.shape == (3, *PHRASE_SHAPE)
    c = TRACK_NAMES.index(track)
    assert torch.equal(phrase[..., c], condition)  # the condition sits in its own track
    assert torch.equal(phrase[..., [t for t in range(N_TRACKS) if t != c]], tracks)
    assert scores.shape == (3,)


def test_unheard_steps_cannot_change_the_output() -> None:
    torch.manual_seed(0)
    cfg = tiny_model_config()
    net = TrackConditionalGenerator(cfg).eval()
    now = np.array([0, 50, 100, 191])
    mask = torch.from_numpy(known_mask_from_now(now))
    base = random_condition(4, seed=2)
    other = random_condition(4, seed=3)
    # same before "now", different after it
    heard = mask.unsqueeze(-1).bool()
    changed_future = torch.where(heard, base, other)
    z = torch.randn(4, cfg.latent_dim)
    with torch.no_grad():
        feats_a, feats_b = net.encoder(base, mask), net.encoder(changed_future, mask)
        for a, b in zip(feats_a, feats_b, strict=True):
            assert torch.equal(a, b)
        assert torch.equal(net(z, base, mask), net(z, changed_future, mask))
        # control: a change in a heard step does reach the output
        changed_past = base.clone()
        changed_past[3, 0, 0, :] = 1.0 - changed_past[3, 0, 0, :]
        assert not torch.equal(net(z, base, mask)[3], net(z, changed_past, mask)[3])


def test_earlier_bars_reach_the_unheard_last_bar() -> None:
    """Live, bar 4 is about to sound and unheard: its plan must come from bars 1-3.

    (Yesterday's model had a bar-kernel of 1 everywhere: this difference was exactly 0.)
    """
    torch.manual_seed(0)
    net = TrackConditionalGenerator(tiny_model_config()).eval()
    # the context's pitch-class bias starts at 0; give it weights, as training would
    torch.nn.init.normal_(net.generator.chroma_bias.weight, std=0.5)
    mask = torch.from_numpy(known_mask_from_now(np.full(2, 3 * 48)))  # bars 1-3 heard
    base, other = random_condition(2, seed=5), random_condition(2, seed=6)
    changed_past = base.clone()
    changed_past[:, :3] = other[:, :3]
    z = torch.randn(2, net.latent_dim)
    with torch.no_grad():
        a, b = net(z, base, mask)[:, 3], net(z, changed_past, mask)[:, 3]
    assert float((a - b).abs().max()) > 1e-4


def test_the_beat_context_never_looks_ahead() -> None:
    """The context of beat k depends on beats 0..k only (every beat heard).

    (The full-resolution encoder conv sees one step either side, so the change starts one step
    into the beat: step 0 of a beat may still shape the beat before it.)
    """
    torch.manual_seed(0)
    net = TrackConditionalGenerator(tiny_model_config()).eval()
    mask = torch.ones(1, 4, 48)
    base = random_condition(1, seed=7)
    later = base.clone()
    later[0, 2, 25:] = 1.0 - later[0, 2, 25:]  # bar 3 from beat 3's second step on
    with torch.no_grad():
        ctx_a, ctx_b = net.encoder(base, mask)[-1], net.encoder(later, mask)[-1]
    beats_a, beats_b = ctx_a.flatten(2), ctx_b.flatten(2)  # [1, C, 16 beats]
    assert torch.equal(beats_a[..., :10], beats_b[..., :10])  # before bar 3, beat 3
    assert not torch.equal(beats_a[..., 10:], beats_b[..., 10:])


def test_batch_examples_are_independent_in_eval_mode() -> None:
    torch.manual_seed(0)
    cfg = tiny_model_config()
    net = TrackConditionalGenerator(cfg).eval()
    condition, z = random_condition(3, seed=4), torch.randn(3, cfg.latent_dim)
    mask = torch.from_numpy(known_mask_from_now(np.array([10, 100, 192])))
    with torch.no_grad():
        together = net(z, condition, mask)
        alone = net(z[1:2], condition[1:2], mask[1:2])
    torch.testing.assert_close(together[1:2], alone, atol=1e-6, rtol=0)


def test_gradient_penalty_is_zero_for_a_unit_slope_critic() -> None:
    class Slope(torch.nn.Module):  # D(x) = sum(x) / sqrt(n): |grad| = 1 everywhere
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).sum(1) / x[0].numel() ** 0.5

    real, fake = torch.rand(4, 3, 5), torch.rand(4, 3, 5)
    assert float(gradient_penalty(Slope(), real, fake)) == pytest.approx(0.0, abs=1e-10)
    loss = critic_loss(Slope(), real, fake, gp_lambda=10.0, drift_epsilon=0.0)
    expected = (real.flatten(1).sum(1) - fake.flatten(1).sum(1)).mean() / 15**0.5
    assert float(loss.wasserstein) == pytest.approx(float(expected), rel=1e-5)
    assert float(loss.total) == pytest.approx(-float(expected), rel=1e-4)








def test_unknown_config_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"'train\.stepz'"):
        load_config(TINY, ["train.stepz=3"])
    with pytest.raises(ConfigError, match=r"'model\.latent_dim' must be an integer"):
        load_config(TINY, ["model.latent_dim=big"])
    with pytest.raises(ConfigError, match="condition_track"):
        load_config(TINY, ["model.condition_track=Kazoo"])


def test_set_overrides_parse_yaml_values() -> None:
    cfg = load_config(TINY, ["train.steps=11", "data.train=[a.npz, {path: b.npz, weight: 3}]",
                             "train.adam_betas=[0.0, 0.99]"])
    assert cfg.train.steps == 11
    assert [(f.path, f.weight) for f in cfg.data.train] == [("a.npz", 1.0), ("b.npz", 3.0)]
    assert cfg.train.adam_betas == [0.0, 0.99]
    values: dict = {"train": 3}
    with pytest.raises(ConfigError, match="not a section"):
        apply_override(values, "train.steps=2")


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_lr_schedule_runs_over_generator_steps(schedule: str) -> None:
    cfg = load_config(TINY, [f"train.lr_schedule={schedule}", "train.steps=100",
                             "train.warmup_steps=10", "train.final_lr_fraction=0.2"])
    assert lr_factor(0, cfg) == pytest.approx(0.1)  # warm-up
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    end = lr_factor(100, cfg)
    assert end == pytest.approx(1.0 if schedule == "constant" else 0.2)
    if schedule != "constant":
        assert 0.2 < lr_factor(55, cfg) < 1.0






def test_reconstruction_loss_ignores_dropped_examples() -> None:
    real = (torch.rand(2, 4, 48, 84, 4) < 0.05).float()
    perfect = real * 0.98 + 0.01
    wrong = 1.0 - perfect
    both = torch.stack([perfect[0], wrong[1]])
    keep_first = torch.tensor([True, False])
    assert float(reconstruction_loss(both, real, keep_first)) < 0.05
    assert float(reconstruction_loss(both, real, torch.tensor([True, True]))) > 1.0
    assert float(reconstruction_loss(both, real, torch.tensor([False, False]))) == 0.0
