"""The captioning family's report sections, and ``dlhw data inspect caption``.

Sections take ``(run_dir, config, summary, evaluation)`` -- the run directory, its config.yaml,
train_summary.json and eval.json as plain mappings -- and return Markdown lines; the family
registry lists them in the order the run report shows them.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dlhw.families.caption.config import CaptionConfig
from dlhw.families.caption.data import prepare_captions
from dlhw.reports.plots import plot_bars, plot_image_grid, plt, save_figure
from dlhw.reports.run_report import fmt


def data_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    out: list[str] = []
    data = summary.get("data")
    if data:
        out += ["## Data", "", f"- {data['splits']}"]
        out += [f"- {note.strip()}" for note in data.get("notes", [])]
        out += [
            f"- captions: {data['captions']['train']} train / {data['captions']['val']} val / "
            f"{data['captions']['test']} test",
            f"- vocabulary: {data['vocab_size']} tokens (min frequency "
            f"{config['data']['min_freq']}, with `<pad> <sos> <eos> <unk>`)",
            f"- caption length: {data['max_length']} tokens = {data['max_length_how']}; "
            f"{data['truncated_train_captions']} training captions truncated",
            "",
        ]
    return out


def model_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    out: list[str] = []
    model = summary.get("model")
    if model:
        out += [
            "## Model",
            "",
            f"- decoder: `{model['arch']}`; encoder output per image: {model['encoder_output_shape']}",
            f"- parameters: {model['parameters']:,} ({model['trainable_parameters']:,} trainable)",
            f"- encoder features cached: {model['feature_cache']}"
            + (f" ({model['feature_cache_seconds']} s to compute)" if model["feature_cache"] else ""),
            "",
        ]
    return out


def evaluation_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    if not evaluation:
        return []
    out: list[str] = [
        "## Evaluation",
        "",
        f"Split `{evaluation['split']}`, {evaluation['num_images']} images, "
        f"{'greedy' if evaluation['beam_size'] == 1 else 'beam size ' + str(evaluation['beam_size'])} "
        f"decoding, backend {evaluation.get('backend', 'torch')}.",
        "",
        "| " + " | ".join(evaluation["metrics"]) + " |",
        "|" + "---:|" * len(evaluation["metrics"]),
        "| " + " | ".join(fmt(v) for v in evaluation["metrics"].values()) + " |",
        "",
    ]
    out += [f"![{name}]({rel})" for name, rel in evaluation.get("plots", {}).items()]
    out.append("")
    return out


def inspect_caption_data(config: CaptionConfig, out_dir: str | Path) -> dict[str, object]:
    """Write four figures -- caption lengths per image (scatter), their histogram, the top-20 words
    and 5 random training images with their processed captions; return the numbers."""
    out_dir = Path(out_dir)
    data = prepare_captions(config.data, config.seed)
    train = data.tokens["train"]
    lengths = np.array([len(t) for caps in train for t in caps])
    image_of = np.array([i for i, caps in enumerate(train) for _ in caps])
    cut = data.max_length - 2

    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.scatter(image_of, lengths, s=4, alpha=0.4)
    ax.axhline(cut, color="tab:red", ls="--", label=f"max length ({cut} words)")
    ax.set_xlabel("training image index")
    ax.set_ylabel("caption length (words)")
    ax.set_title("Caption length per training image")
    ax.legend()
    paths = [save_figure(fig, out_dir / "length_scatter.png")]

    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.hist(lengths, bins=range(int(lengths.min()), int(lengths.max()) + 2), color="tab:blue")
    ax.axvline(cut + 0.5, color="tab:red", ls="--", label=data.max_length_how)
    ax.set_xlabel("caption length (words)")
    ax.set_ylabel("captions")
    ax.set_title("Caption length distribution")
    ax.legend(fontsize=7)
    paths.append(save_figure(fig, out_dir / "length_histogram.png"))

    counts = Counter(tok for caps in train for t in caps for tok in t).most_common(20)
    paths.append(plot_bars([w for w, _ in counts], [c for _, c in counts], out_dir / "top_words.png",
                           "Top-20 words in training captions", ylabel="count"))

    picks = random.Random(config.seed).sample(range(len(train)), k=min(5, len(train)))
    texts = ["\n".join(" ".join(t) for t in train[i][:5]) for i in picks]
    paths.append(plot_image_grid([data.splits.train[i].load() for i in picks], texts,
                                 out_dir / "samples.png", title="Random training images, processed captions"))
    return {
        **data.summary(),
        "length_mean": float(lengths.mean()),
        "length_max": int(lengths.max()),
        "plots": [str(p) for p in paths],
    }
