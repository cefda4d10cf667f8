"""Caption preprocessing shared by every captioning source.

- :func:`clean_caption`: lowercase; punctuation, symbols and digits removed; whitespace tokens;
  one-letter tokens other than "a" dropped (they are left-overs of "man's" -> "man s").
- :class:`Vocabulary`: ``<pad> <sos> <eos> <unk>`` then words seen ``min_freq`` times in the
  training captions, most frequent first; saved as ``vocab.json`` (token -> id).
- :func:`choose_max_length`: the fixed caption length, the given percentile of training-caption
  lengths plus 2 for ``<sos>``/``<eos>``; longer captions are cut, shorter ones ``<pad>``-filled.
- :func:`split_by_image`: a seeded 80/10/10 split by image, so no image is in two splits.
- :class:`ImageTensors`: a split's images as preprocessed tensors, decoded in DataLoader workers.
"""

from __future__ import annotations

import json
import math
import random
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from dlhw.core.atomic import write_json_atomic

PAD, SOS, EOS, UNK = "<pad>", "<sos>", "<eos>", "<unk>"
SPECIALS = (PAD, SOS, EOS, UNK)


@dataclass
class CaptionImage:
    """One image and its raw reference captions; the pixels are either a file or in memory."""

    image_id: str
    captions: list[str]
    path: Path | None = None
    loader: Callable[[], Image.Image] | None = None
    """Returns the image when it does not live in a file (generated scenes, hub datasets)."""

    def load(self) -> Image.Image:
        if self.loader is not None:
            return self.loader().convert("RGB")
        if self.path is None:
            raise ValueError(f"{self.image_id}: neither a path nor a loader")
        with Image.open(self.path) as img:
            return img.convert("RGB")


@dataclass
class CaptionSplits:
    """The three splits and how they were made (reported in report.md)."""

    train: list[CaptionImage]
    val: list[CaptionImage]
    test: list[CaptionImage]
    how: str
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> list[CaptionImage]:
        if name not in ("train", "val", "test"):
            raise KeyError(name)
        return getattr(self, name)

    def ids(self) -> dict[str, list[str]]:
        return {name: [im.image_id for im in self[name]] for name in ("train", "val", "test")}


def clean_caption(text: str) -> list[str]:
    """Lowercase, keep letters only (punctuation, symbols and digits become spaces), tokenize."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(ch if ch.isalpha() else " " for ch in text)
    return [tok for tok in kept.split() if len(tok) > 1 or tok == "a"]


class Vocabulary:
    """Token <-> id map with the four special tokens first."""

    def __init__(self, tokens: Sequence[str]):
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {tuple(tokens[:4])}")
        self.itos = list(tokens)
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate tokens in the vocabulary")

    pad_id, sos_id, eos_id, unk_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], min_freq: int) -> Vocabulary:
        counts = Counter(tok for toks in token_lists for tok in toks)
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *words])

    def encode(self, tokens: list[str], max_length: int) -> list[int]:
        """``<sos> tokens <eos>`` cut to ``max_length`` (``<eos>`` kept) and ``<pad>``-filled."""
        ids = [self.stoi.get(tok, self.unk_id) for tok in tokens][: max_length - 2]
        ids = [self.sos_id, *ids, self.eos_id]
        return ids + [self.pad_id] * (max_length - len(ids))

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words up to the first ``<eos>``; ``<sos>`` and ``<pad>`` skipped."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.sos_id, self.pad_id):
                continue
            words.append(self.itos[i])
        return words

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, self.stoi, indent=1)

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        stoi: dict[str, int] = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls([tok for tok, _ in sorted(stoi.items(), key=lambda kv: kv[1])])


def choose_max_length(token_lists: Iterable[list[str]], percentile: float) -> int:
    """``percentile`` of the caption lengths (in words), rounded up, plus ``<sos>`` and ``<eos>``."""
    lengths = np.array([len(t) for t in token_lists])
    if lengths.size == 0:
        raise ValueError("no training captions to measure")
    return int(math.ceil(np.percentile(lengths, percentile))) + 2


def split_by_image(
    images: list[CaptionImage], val_fraction: float, test_fraction: float, seed: int
) -> CaptionSplits:
    """Shuffle images with ``seed`` and cut them into train / val / test."""
    order = list(images)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction))
    n_test = max(1, round(len(order) * test_fraction))
    if len(order) - n_val - n_test < 1:
        raise ValueError(f"{len(order)} images are too few to split into train/val/test")
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    how = (
        f"random split by image (seed {seed}): {len(train)} train / {len(val)} val / "
        f"{len(test)} test images"
    )
    return CaptionSplits(train, val, test, how)


class ImageTensors(Dataset):
    """Images of one split as normalised tensors; decoding and resizing run in DataLoader workers."""

    def __init__(self, images: list[CaptionImage], transform: Callable[[Image.Image], Tensor]):
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return self.transform(self.images[i].load())  # (3, S, S)
