"""``dlhw data inspect caption``: look at a captioning dataset before training on it."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np

from dlhw.config import CaptionDataConfig
from dlhw.data.caption_sources import prepare_captions
from dlhw.reports.plots import plot_bars, plot_image_grid, plt, save_figure


def inspect_caption_data(cfg: CaptionDataConfig, seed: int, out_dir: str | Path) -> dict[str, object]:
    """Write length scatter + histogram, top-20 words and a 5-image grid; return the numbers."""
    out_dir = Path(out_dir)
    data = prepare_captions(cfg, seed)
    train = data.tokens["train"]
    lengths = np.array([len(t) for caps in train for t in caps])
    image_of = np.array([i for i, caps in enumerate(train) for _ in caps])
    cut = data.max_length - 2

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.scatter(image_of, lengths, s=4, alpha=0.4)
    ax1.axhline(cut, color="tab:red", ls="--", label=f"max length ({cut} words)")
    ax1.set_xlabel("training image index")
    ax1.set_ylabel("caption length (words)")
    ax1.set_title("Caption lengths")
    ax1.legend()
    ax2.hist(lengths, bins=range(int(lengths.min()), int(lengths.max()) + 2), color="tab:blue")
    ax2.axvline(cut + 0.5, color="tab:red", ls="--", label=data.max_length_how)
    ax2.set_xlabel("caption length (words)")
    ax2.set_ylabel("captions")
    ax2.set_title("Length distribution")
    ax2.legend(fontsize=7)
    paths = [save_figure(fig, out_dir / "caption_lengths.png")]

    counts = Counter(tok for caps in train for t in caps for tok in t).most_common(20)
    paths.append(plot_bars([w for w, _ in counts], [c for _, c in counts], out_dir / "top_words.png",
                           "Top-20 words in training captions", ylabel="count"))

    picks = random.Random(seed).sample(range(len(train)), k=min(5, len(train)))
    texts = ["\n".join(" ".join(t) for t in train[i][:5]) for i in picks]
    paths.append(plot_image_grid([data.splits.train[i].load() for i in picks], texts,
                                 out_dir / "samples.png", title="Random training images, processed captions"))
    return {
        **data.summary(),
        "length_mean": float(lengths.mean()),
        "length_max": int(lengths.max()),
        "plots": [str(p) for p in paths],
    }
