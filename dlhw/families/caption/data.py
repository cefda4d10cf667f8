"""Pick the captioning source a config names; clean, index and measure its captions."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from dlhw.errors import DataError
from dlhw.families.caption.captions import (
    CaptionImage,
    CaptionSplits,
    Vocabulary,
    choose_max_length,
    clean_caption,
    split_by_image,
)
from dlhw.families.caption.config import CaptionDataConfig
from dlhw.families.caption.flickr8k import load_flickr8k_dir, load_flickr8k_hub, split_flickr8k
from dlhw.families.caption.scenes import Scene, make_scenes


def scene_images(scenes: list[Scene], image_size: int) -> list[CaptionImage]:
    return [
        CaptionImage(s.image_id, list(s.captions), loader=functools.partial(s.render, image_size))
        for s in scenes
    ]


def load_caption_splits(cfg: CaptionDataConfig, seed: int) -> CaptionSplits:
    """Synthetic scenes, a local Flickr8k directory, or a hub dataset -- in that order of checks."""
    if cfg.source == "synthetic":
        scenes = make_scenes(cfg.num_scenes, seed)
        splits = split_by_image(
            scene_images(scenes, cfg.image_size), cfg.val_fraction, cfg.test_fraction, seed
        )
        splits.how = f"embedded synthetic scenes (seed {seed}); {splits.how}"
        return splits
    if cfg.data_dir:
        images, official, report = load_flickr8k_dir(cfg.data_dir)
        splits = split_flickr8k(images, official, cfg.val_fraction, cfg.test_fraction, seed)
        splits.notes.extend(report.lines())
        return splits
    if cfg.hf_dataset:
        return load_flickr8k_hub(cfg.hf_dataset)
    raise DataError("data.source is flickr8k but neither data.data_dir nor data.hf_dataset is set")


@dataclass
class PreparedCaptions:
    """Splits plus the vocabulary and fixed length built from the training captions."""

    splits: CaptionSplits
    vocab: Vocabulary
    max_length: int
    max_length_how: str
    tokens: dict[str, list[list[list[str]]]]
    """split -> image -> cleaned reference captions (token lists)."""

    def encoded_pairs(self, split: str) -> tuple[list[int], list[list[int]]]:
        """(image index, token ids) for every caption of every image in ``split``."""
        image_index, ids = [], []
        for i, caps in enumerate(self.tokens[split]):
            for toks in caps:
                image_index.append(i)
                ids.append(self.vocab.encode(toks, self.max_length))
        return image_index, ids

    def summary(self) -> dict[str, object]:
        lengths = [len(t) for caps in self.tokens["train"] for t in caps]
        return {
            "splits": self.splits.how,
            "notes": self.splits.notes,
            "images": {k: len(self.splits[k]) for k in ("train", "val", "test")},
            "captions": {k: sum(map(len, self.tokens[k])) for k in ("train", "val", "test")},
            "vocab_size": len(self.vocab),
            "max_length": self.max_length,
            "max_length_how": self.max_length_how,
            "truncated_train_captions": sum(n + 2 > self.max_length for n in lengths),
        }


def prepare_captions(cfg: CaptionDataConfig, seed: int) -> PreparedCaptions:
    """Load the splits, clean every caption, build the vocabulary and pick the caption length."""
    splits = load_caption_splits(cfg, seed)
    tokens = {
        name: [[clean_caption(c) for c in im.captions] for im in splits[name]]
        for name in ("train", "val", "test")
    }
    train_tokens = [t for caps in tokens["train"] for t in caps]
    vocab = Vocabulary.build(train_tokens, cfg.min_freq)
    if cfg.max_length is not None:
        max_length, how = cfg.max_length, f"set in the config (data.max_length={cfg.max_length})"
    else:
        max_length = choose_max_length(train_tokens, cfg.length_percentile)
        how = (
            f"the {cfg.length_percentile:g}th percentile of training-caption lengths "
            f"({max_length - 2} words) + <sos> + <eos>"
        )
    return PreparedCaptions(splits, vocab, max_length, how, tokens)
