"""The tiny presets' one pretraining loop: its schedules, its seeding, and that it learns."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from dlhw.core.pretrain import one_cycle, pretrain_loop, seeded, warmup_cosine


def learning_rates(schedule, steps: int, lr: float = 1.0) -> list[float]:
    """The learning rate of each step under ``schedule`` (no training: the scheduler alone)."""
    optimizer = torch.optim.AdamW(nn.Linear(2, 1).parameters(), lr=lr)
    scheduler = schedule(optimizer, steps)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": no training here
        for _ in range(steps):
            out.append(optimizer.param_groups[0]["lr"])
            scheduler.step()
    return out


def test_warmup_cosine_is_the_causal_bases_schedule_to_the_last_bit():
    steps, warmup = 600, 30  # the tiny chat base: pretrain_steps 600, warmup steps // 20

    def before(step: int) -> float:  # the formula the causal-LM bases were pretrained with
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    rates = learning_rates(warmup_cosine(warmup), steps, lr=5e-3)
    assert rates == [5e-3 * before(s) for s in range(steps)]
    assert rates[0] == pytest.approx(5e-3 / 30) and rates[warmup] == pytest.approx(5e-3)
    assert rates[-1] == pytest.approx(5e-3 * 0.1, rel=1e-3)  # decays to 10% of the peak


def test_one_cycle_peaks_after_its_warmup_share():
    rates = learning_rates(one_cycle(pct_start=0.1), 400, lr=3e-3)
    assert rates.index(max(rates)) == 39 and max(rates) == pytest.approx(3e-3)
    assert rates[0] == pytest.approx(3e-3 / 25)  # OneCycleLR's default div_factor
    assert rates[-1] < 3e-3 / 1e3


def test_seeded_builds_the_same_init_anywhere_and_leaves_the_callers_rng_alone():
    torch.manual_seed(1)
    first = seeded(5, lambda: nn.Linear(8, 4))
    after_first = torch.rand(3)
    torch.manual_seed(1234)
    second = seeded(5, lambda: nn.Linear(8, 4))
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(3), after_first)  # seeded() drew nothing from the caller's stream


def regression(steps: int, caller_seed: int) -> tuple[nn.Module, float, float]:
    """A linear model with dropout fitted to y = x @ w by the loop; (model, first loss, last loss)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, 1, generator=gen)
    model = seeded(3, lambda: nn.Sequential(nn.Dropout(0.1), nn.Linear(6, 1)))
    losses: list[float] = []

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(32, 6, generator=gen)  # (32, 6)
        return x, x @ w  # (32, 6), (32, 1)

    def loss(m: nn.Module, xy: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        value = nn.functional.mse_loss(m(xy[0]), xy[1])
        losses.append(value.item())
        return value

    torch.manual_seed(caller_seed)  # the caller's RNG state must not matter (dropout draws from the loop's)
    last = pretrain_loop(model, batch, steps, lr=0.05, seed=11, schedule=warmup_cosine(5), desc="test",
                         loss=loss, log=False)
    assert last == losses[-1]
    return model, losses[0], last


@pytest.mark.slow
def test_the_loop_learns_and_is_deterministic_whatever_the_callers_rng():
    model, first, last = regression(150, caller_seed=0)
    assert last < first / 8  # from ~9.4 to the floor the input dropout leaves (~0.7)
    again, _, last_again = regression(150, caller_seed=99)
    assert last_again == last
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    assert pretrain_loop(nn.Linear(2, 1), lambda step: None, 0, lr=0.1, seed=0, schedule=warmup_cosine(1),
                         desc="none", loss=lambda m, b: torch.zeros(()), log=False) == 0.0
