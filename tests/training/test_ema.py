"""The moving average of the weights: its update rule, its early cap, what it copies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.ema import decay_at, make_average, update_average


def small_net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_the_average_moves_a_share_of_the_way_to_the_live_weights() -> None:
    net = small_net()
    average = make_average(net)
    with torch.no_grad():
        for p in average.parameters():
            p.fill_(0.0)
        for p in net.parameters():
            p.fill_(1.0)
    update_average(average, net, decay=0.9)
    for p in average.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.1))
    update_average(average, net, decay=0.9)
    for p in average.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.19))


def test_batch_norm_statistics_are_copied_not_averaged() -> None:
    net = small_net()
    average = make_average(net)
    net.train()
    net(torch.randn(16, 3) * 5 + 3)  # moves the live running mean and variance
    update_average(average, net, decay=0.99)
    torch.testing.assert_close(average[1].running_mean, net[1].running_mean)
    torch.testing.assert_close(average[1].running_var, net[1].running_var)
    assert int(average[1].num_batches_tracked) == 1


def test_the_average_is_a_frozen_copy_that_training_does_not_touch() -> None:
    net = small_net()
    average = make_average(net)
    assert not average.training
    assert not any(p.requires_grad for p in average.parameters())
    for mean, live in zip(average.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(mean, live)
        assert mean.data_ptr() != live.data_ptr()


@pytest.mark.parametrize(("step", "expected"), [(1, 2 / 11), (90, 91 / 100), (100000, 0.999)])
def test_early_in_a_run_the_decay_is_capped(step: int, expected: float) -> None:
    assert decay_at(step, 0.999) == pytest.approx(expected)
