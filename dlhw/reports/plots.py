"""PNG figures shared by the families (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # grids with text outside the axes: bbox "tight" handles them
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight" keeps text placed below the axes
    plt.close(fig)
    return path


@dataclass(frozen=True)
class EvalPoint:
    """One evaluation of a run: the optimizer step it ran after, that step's (fractional) epoch, its loss."""

    step: int
    epoch: float
    loss: float


def loss_curves(records: Sequence[dict[str, Any]]) -> tuple[dict[int, float], list[EvalPoint]]:
    """Mean training loss per epoch (epochs numbered from 1), and the validation loss of every evaluation.

    Evaluations are kept one per step, in step order (a step evaluated twice -- the last periodic
    evaluation and the closing one -- keeps its last record), so a run evaluated every N steps shows
    every one of them, however many fall in one epoch.
    """
    train: dict[int, list[float]] = defaultdict(list)
    val: dict[int, EvalPoint] = {}
    for r in records:
        epoch = r.get("epoch") or 0.0
        if "loss" in r:
            # a record at epoch 2.0 closes epoch 2; one at 2.3 belongs to epoch 3
            train[max(1, math.ceil(epoch))].append(float(r["loss"]))
        if "eval_loss" in r:  # epoch 0 / step 0: evaluated before training
            step = int(r.get("step") or 0)
            val[step] = EvalPoint(step, float(epoch), float(r["eval_loss"]))
    return {k: sum(v) / len(v) for k, v in sorted(train.items())}, [val[k] for k in sorted(val)]


def plot_losses(records: Sequence[dict[str, Any]], path: str | Path, title: str = "Loss") -> Path:
    """Train loss per log step and per epoch, and validation loss at every evaluation, against the epoch
    (fractional: step / steps per epoch)."""
    train, val = loss_curves(records)
    steps = [(r["epoch"], r["loss"]) for r in records if "loss" in r and r.get("epoch") is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if steps:
        ax.plot([e for e, _ in steps], [v for _, v in steps], color="tab:blue", alpha=0.25, lw=1,
                label="train (per log step)")
    if train:
        ax.plot(list(train), list(train.values()), "o-", color="tab:blue", label="train (epoch mean)")
    if val:
        ax.plot([p.epoch for p in val], [p.loss for p in val], "s-", color="tab:orange",
                label=f"validation ({len(val)} evaluations)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if steps or val:
        ax.legend()
    return save_figure(fig, path)


def plot_bars(labels: Sequence[str], values: Sequence[float], path: str | Path, title: str,
              xlabel: str = "", ylabel: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(labels) + 2), 4.0))
    ax.bar(range(len(labels)), values, color="tab:blue")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return save_figure(fig, path)


def plot_image_grid(images: Sequence[Any], texts: Sequence[str], path: str | Path, title: str = "",
                    columns: int = 5) -> Path:
    """Images in a row (or rows) with a block of text under each."""
    n = len(images)
    cols = min(columns, n)
    rows = -(-n // cols)
    lines = max((t.count("\n") + 1 for t in texts), default=1)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, (3.4 + 0.16 * lines) * rows), squeeze=False,
                             gridspec_kw={"hspace": 0.1 + 0.06 * lines, "wspace": 0.35})
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, text in zip(axes.flat, images, texts, strict=False):
        ax.imshow(image)
        ax.text(0.0, -0.03, text, transform=ax.transAxes, fontsize=7, va="top", ha="left")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
