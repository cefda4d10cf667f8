"""caption-rnn: an epoch on cached encoder features vs recomputing them every batch.

Both runs go through the real recipe (`train_caption`, HF Trainer) with a full-size
EfficientNet-B0 (random weights, frozen) at 224 px on embedded scenes, side by side in one
process. Prints seconds per epoch, the one-off caching cost and the ratios.

    python benchmarks/caption_feature_cache.py [--scenes 200] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dlhw.cli.env_cmd import cpu_model  # noqa: E402
from dlhw.config import dump_yaml, to_dict  # noqa: E402
from dlhw.core.registry import resolve_config  # noqa: E402
from dlhw.families.caption.train import train_caption  # noqa: E402


def run(cache: bool, scenes: int, epochs: int, root: Path) -> dict:
    config = resolve_config("caption-rnn", "tiny", overrides=[
        "model.encoder_weights=random", "model.encoder_width_mult=1.0", "model.encoder_depth_mult=1.0",
        "data.image_size=224", f"data.num_scenes={scenes}", f"data.cache_features={str(cache).lower()}",
        f"train.epochs={epochs}", "train.early_stopping_patience=0", "train.num_workers=0",
    ])
    run_dir = root / ("cached" if cache else "recomputed")
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(dump_yaml(to_dict(config)))
    summary = train_caption(config, run_dir)
    train = summary["train"]
    return {
        "epoch_s": train["wall_time_s"] / train["epochs"],
        "cache_s": summary["model"]["feature_cache_seconds"],
        "pairs": summary["data"]["captions"]["train"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        cached = run(True, args.scenes, args.epochs, Path(tmp))
        recomputed = run(False, args.scenes, args.epochs, Path(tmp))
    n = args.epochs
    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"caption-rnn, EfficientNet-B0 224 px frozen, {cached['pairs']} training captions/epoch, {n} epochs")
    print(f"{'':28}{'s/epoch':>10}")
    print(f"{'recompute features':28}{recomputed['epoch_s']:>10.2f}")
    print(f"{'cached features':28}{cached['epoch_s']:>10.2f}   (+ {cached['cache_s']:.2f} s once to cache)")
    print(f"ratio per epoch (recompute / cached): {recomputed['epoch_s'] / cached['epoch_s']:.1f}x")
    total_cached = cached["cache_s"] + n * cached["epoch_s"]
    print(f"ratio over {n} epochs incl. caching:   {n * recomputed['epoch_s'] / total_cached:.1f}x")


if __name__ == "__main__":
    main()
