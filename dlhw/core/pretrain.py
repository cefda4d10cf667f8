"""One loop for the tiny presets' pretraining: the offline stand-ins for pretrained weights.

Offline there are no pretrained models, so the tiny presets pretrain their own once and cache them
(:func:`dlhw.core.cache.cached_base`): the causal-LM bases of chat and summarization
(:mod:`dlhw.lm.pretrain`), the prompting family's tiny T5 and the caption family's scene encoder.
They differ in the model, the batches and the schedule; the loop is this one: AdamW, a
learning-rate schedule stepped once per step, gradient clipping, a progress bar with the loss.

It lives in ``core`` rather than ``lm`` because one of its users (the scene encoder) is not a
language model, and ``lm`` must be able to call it. It needs torch only, never transformers.

Everything is deterministic for a seed: the model is built under :func:`seeded` and the loop runs
with the global torch RNG seeded (and restored after), so dropout or stochastic depth draw the same
numbers wherever the pretraining is started from, and the caller's own random stream is untouched.
The batches come from the caller's ``batches(step)``, which draws from its own seeded generator.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR
from tqdm.auto import tqdm

T = TypeVar("T")

Schedule = Callable[[Optimizer, int], LRScheduler]
"""``schedule(optimizer, steps)``: the scheduler the loop steps after every optimizer step."""


def seeded(seed: int, build: Callable[[], T]) -> T:
    """``build()`` with the global torch RNG seeded with ``seed`` and restored after: a model built
    this way has the same random init wherever it is built, and the caller's RNG does not move."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def warmup_cosine(warmup: int, floor: float = 0.1) -> Schedule:
    """Linear warmup from ``lr / warmup`` to ``lr`` over ``warmup`` steps, then cosine decay to
    ``floor * lr`` at the last step."""

    def schedule(optimizer: Optimizer, steps: int) -> LRScheduler:
        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return floor + (1 - floor) / 2 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

        return LambdaLR(optimizer, factor)

    return schedule


def one_cycle(pct_start: float = 0.3) -> Schedule:
    """PyTorch's one-cycle policy peaking at the optimizer's ``lr`` after ``pct_start`` of the steps."""

    def schedule(optimizer: Optimizer, steps: int) -> LRScheduler:
        peak = optimizer.param_groups[0]["lr"]
        return OneCycleLR(optimizer, max_lr=peak, total_steps=steps, pct_start=pct_start)

    return schedule


def model_loss(model: nn.Module, batch: Any) -> Tensor:
    """The loss a Hugging Face model returns for a batch of keyword inputs with ``labels``."""
    return model(**batch).loss


def pretrain_loop(
    model: nn.Module,
    batches: Callable[[int], Any],
    steps: int,
    *,
    lr: float,
    seed: int,
    schedule: Schedule,
    desc: str,
    loss: Callable[[nn.Module, Any], Tensor] = model_loss,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    clip: float | None = 1.0,
    log: bool = True,
) -> float:
    """Pretrain ``model`` in place for ``steps`` optimizer steps; return the last step's loss.

    Args:
        model: The model; all of its parameters are trained, on the device they are on.
        batches: ``batches(step)`` -> the batch of that step (drawn from the caller's own seeded
            generator, so the sampling order is the caller's).
        steps: Optimizer steps.
        lr: Peak learning rate of AdamW.
        seed: Seeds the global torch RNG for the loop (dropout, stochastic depth); restored after.
        schedule: The learning-rate schedule (:func:`warmup_cosine`, :func:`one_cycle`).
        desc: The progress bar's label.
        loss: ``loss(model, batch)`` -> scalar loss; by default the model's own (``model(**batch).loss``).
        weight_decay: AdamW's decoupled weight decay.
        betas: AdamW's betas.
        clip: The gradients' total norm is clipped to this; ``None`` leaves them as they are.
        log: Show the progress bar.

    Returns:
        The loss of the last step (0.0 for zero steps).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=betas)
    scheduler = schedule(optimizer, steps)
    model.train()
    last = 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        quiet = not logging.getLogger(__name__).isEnabledFor(logging.INFO)  # `dlhw -q`
        bar = tqdm(range(steps), desc=desc, disable=not log or quiet)
        for step in bar:
            value = loss(model, batches(step))
            optimizer.zero_grad()
            value.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            scheduler.step()
            last = value.item()
            bar.set_postfix(loss=f"{last:.3f}")
    return last
