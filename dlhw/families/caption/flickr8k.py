"""Flickr8k in the layouts people download, plus a Hugging Face dataset id.

Local directory, either layout (found anywhere up to two levels down):

- Kaggle: ``Images/`` + ``captions.txt`` -- CSV with the header ``image,caption``; captions
  containing commas are quoted.
- Original: ``Flicker8k_Dataset/`` (or ``Flickr8k_Dataset/``) + ``Flickr8k.token.txt`` --
  ``<image>.jpg#<n><TAB><caption>`` per line -- and optionally the official split lists
  ``Flickr_8k.{train,dev,test}Images.txt`` (CRLF or LF, last line with or without newline).

Problems that only cost some data -- captions naming an image that is not on disk, blank or
malformed lines, split-list entries without captions -- are counted in a :class:`LoadReport`
and reported, never fatal.
"""

from __future__ import annotations

import csv
import functools
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlhw.errors import DataError
from dlhw.families.caption.captions import CaptionImage, CaptionSplits, split_by_image

IMAGE_DIRS = ("Images", "Flicker8k_Dataset", "Flickr8k_Dataset")
SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "val": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}


@dataclass
class LoadReport:
    layout: str
    caption_file: str
    images_dir: str
    images: int = 0
    captions: int = 0
    missing_image_files: int = 0
    """Distinct images named in the caption file with no file on disk."""
    captions_for_unknown_images: int = 0
    """Caption lines dropped because their image is not on disk."""
    blank_lines: int = 0
    malformed_lines: int = 0
    split_entries_without_captions: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"Flickr8k ({self.layout} layout): {self.images} images, {self.captions} captions "
            f"from {self.caption_file}"
        ]
        for name in (
            "missing_image_files",
            "captions_for_unknown_images",
            "blank_lines",
            "malformed_lines",
            "split_entries_without_captions",
        ):
            if getattr(self, name):
                out.append(f"  skipped: {getattr(self, name)} {name.replace('_', ' ')}")
        return out + [f"  {n}" for n in self.notes]


def _find(root: Path, name: str, want_dir: bool) -> Path | None:
    """``root/name`` or ``root/*/name`` (the archives nest one folder deep)."""
    for candidate in (root / name, *sorted(root.glob(f"*/{name}"))):
        if candidate.is_dir() if want_dir else candidate.is_file():
            return candidate
    return None


def _read_lines(path: Path) -> list[str]:
    # utf-8-sig drops a BOM; splitlines handles CRLF, LF and a last line without newline.
    return path.read_text(encoding="utf-8-sig", errors="replace").splitlines()


def _read_kaggle(captions_file: Path, report: LoadReport) -> dict[str, list[str]]:
    by_image: dict[str, list[str]] = defaultdict(list)
    with captions_file.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["image", "caption"]:
            raise DataError(
                f"{captions_file}: expected the CSV header 'image,caption', got {header!r}"
            )
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                report.blank_lines += 1
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                report.malformed_lines += 1
                continue
            # An unquoted caption with commas spills into extra cells: join them back.
            by_image[row[0].strip()].append(",".join(row[1:]).strip())
    return by_image


def _read_token_file(token_file: Path, report: LoadReport) -> dict[str, list[str]]:
    by_image: dict[str, list[str]] = defaultdict(list)
    for line in _read_lines(token_file):
        if not line.strip():
            report.blank_lines += 1
            continue
        key, tab, caption = line.partition("\t")
        name, hash_, _ = key.partition("#")
        if not tab or not hash_ or not name.strip() or not caption.strip():
            report.malformed_lines += 1
            continue
        by_image[name.strip()].append(caption.strip())
    return by_image


def load_flickr8k_dir(data_dir: str | Path) -> tuple[list[CaptionImage], dict[str, list[str]] | None, LoadReport]:
    """Read a local Flickr8k directory in either layout.

    Returns the images that exist with their captions, the official split lists (image names per
    split) when all three files are present, and the load report.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"--data-dir {root}: no such directory")
    kaggle = _find(root, "captions.txt", want_dir=False)
    token = _find(root, "Flickr8k.token.txt", want_dir=False)
    images_dir = next((d for n in IMAGE_DIRS if (d := _find(root, n, want_dir=True))), None)
    if images_dir is None or (kaggle is None and token is None):
        raise DataError(
            f"{root}: not a Flickr8k directory. Expected Images/ + captions.txt (Kaggle) or "
            f"Flicker8k_Dataset/ + Flickr8k.token.txt (original)"
        )
    caption_file = token if token is not None else kaggle
    assert caption_file is not None
    layout = "original" if token is not None else "Kaggle"
    report = LoadReport(layout, str(caption_file), str(images_dir))
    reader = _read_token_file if token is not None else _read_kaggle
    by_image = reader(caption_file, report)

    on_disk = {entry.name for entry in os.scandir(images_dir) if entry.is_file()}
    images = []
    for name in sorted(by_image):
        if name not in on_disk:
            report.missing_image_files += 1
            report.captions_for_unknown_images += len(by_image[name])
            continue
        images.append(CaptionImage(name, by_image[name], path=images_dir / name))
    report.images = len(images)
    report.captions = sum(len(im.captions) for im in images)

    official = None
    split_paths = {k: _find(root, v, want_dir=False) for k, v in SPLIT_FILES.items()}
    if all(split_paths.values()):
        known = {im.image_id for im in images}
        official = {}
        for split, path in split_paths.items():
            names = [ln.strip() for ln in _read_lines(path) if ln.strip()]  # type: ignore[arg-type]
            report.split_entries_without_captions += sum(n not in known for n in names)
            official[split] = [n for n in names if n in known]
    elif any(split_paths.values()):
        report.notes.append("some but not all official split files found; using a random split")
    return images, official, report


def split_flickr8k(
    images: list[CaptionImage],
    official: dict[str, list[str]] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> CaptionSplits:
    """Use the official split lists when present, else a seeded split by image."""
    if official is None:
        return split_by_image(images, val_fraction, test_fraction, seed)
    by_id = {im.image_id: im for im in images}
    parts = {k: [by_id[n] for n in dict.fromkeys(names)] for k, names in official.items()}
    how = (
        "official Flickr8k split files (Flickr_8k.{train,dev,test}Images.txt): "
        f"{len(parts['train'])} train / {len(parts['val'])} val / {len(parts['test'])} test images"
    )
    return CaptionSplits(parts["train"], parts["val"], parts["test"], how)


def _hub_image(dataset: Any, index: int, column: str) -> Any:
    return dataset[index][column]


def load_flickr8k_hub(dataset_id: str) -> CaptionSplits:
    """Load Flickr8k from a Hugging Face dataset with an image column and caption column(s)."""
    try:
        import datasets

        dsets = datasets.load_dataset(dataset_id)
    except Exception as err:  # noqa: BLE001 - hub, network and cache errors all end here
        raise DataError(
            f"could not load the Flickr8k dataset {dataset_id!r} from the Hugging Face hub "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
            "Pass a local copy with --data-dir DIR (Kaggle or original layout), or run "
            "offline on the embedded scenes with --preset tiny."
        ) from None
    names = {"train": "train", "val": "validation", "test": "test"}
    if not all(v in dsets for v in names.values()):
        raise DataError(f"{dataset_id}: expected train/validation/test splits, got {list(dsets)}")
    parts: dict[str, list[CaptionImage]] = {}
    for split, hub_split in names.items():
        ds = dsets[hub_split]
        caption_cols = sorted(c for c in ds.column_names if c.startswith("caption"))
        if "image" not in ds.column_names or not caption_cols:
            raise DataError(
                f"{dataset_id}: expected an `image` column and `caption*` columns, got "
                f"{ds.column_names}"
            )
        text = ds.select_columns(caption_cols)
        parts[split] = []
        for i, row in enumerate(text):
            caps = []
            for col in caption_cols:
                value = row[col]
                caps.extend(value if isinstance(value, list) else [value])
            parts[split].append(
                CaptionImage(
                    f"{hub_split}_{i:05d}",
                    [c for c in caps if c and c.strip()],
                    loader=functools.partial(_hub_image, ds, i, "image"),
                )
            )
    how = (
        f"hub dataset {dataset_id} splits: {len(parts['train'])} train / {len(parts['val'])} val "
        f"/ {len(parts['test'])} test images"
    )
    return CaptionSplits(parts["train"], parts["val"], parts["test"], how)
