"""Flickr8k loaders on small local files in exactly the formats people download."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dlhw.errors import DataError
from dlhw.families.caption.config import CaptionDataConfig
from dlhw.families.caption.data import prepare_captions
from dlhw.families.caption.flickr8k import load_flickr8k_dir, load_flickr8k_hub, split_flickr8k


def _jpeg(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), colour).save(path, format="JPEG")


@pytest.fixture
def kaggle_dir(tmp_path: Path) -> Path:
    root = tmp_path / "flickr8k"
    for name in ("1000_a.jpg", "1001_b.jpg", "1002_c.jpg"):
        _jpeg(root / "Images" / name)
    (root / "captions.txt").write_text(
        "image,caption\n"
        '1000_a.jpg,"A child in a pink dress, climbing stairs ."\n'
        "1000_a.jpg,A girl going into a wooden building .\n"
        "\n"
        "1001_b.jpg,A black dog and a spotted dog are fighting\n"
        '1001_b.jpg,"Two dogs, one black, play ."\n'
        "1002_c.jpg,A little girl covered in paint sits .\n"
        "9999_missing.jpg,A caption for an image that is not there .\n"
        "9999_missing.jpg,Another one .\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture
def original_dir(tmp_path: Path) -> Path:
    root = tmp_path / "orig"
    names = [f"{i}_x.jpg" for i in range(6)]
    for name in names:
        _jpeg(root / "Flicker8k_Dataset" / name)
    lines = []
    for name in names:
        lines += [f"{name}#{k}\tA dog runs, number {k} ." for k in range(5)]
    lines.insert(3, "")  # a blank line
    lines.append("gone.jpg#0\tAn image missing from disk .")
    lines.append("malformed line without a tab")
    text = "\r\n".join(lines)  # CRLF, and no newline after the last line
    (root / "Flickr8k_text").mkdir()
    (root / "Flickr8k_text" / "Flickr8k.token.txt").write_text(text, encoding="utf-8", newline="")
    splits = {"train": names[:4], "dev": names[4:5], "test": names[5:] + ["unknown.jpg"]}
    for split, members in splits.items():
        (root / "Flickr8k_text" / f"Flickr_8k.{split}Images.txt").write_bytes(
            ("\n".join(members)).encode()  # LF, last line without newline
        )
    return root


def test_kaggle_layout_with_quoted_commas_blank_lines_and_missing_images(kaggle_dir: Path):
    images, official, report = load_flickr8k_dir(kaggle_dir)
    assert official is None and report.layout == "Kaggle"
    by_id = {im.image_id: im for im in images}
    assert sorted(by_id) == ["1000_a.jpg", "1001_b.jpg", "1002_c.jpg"]
    assert by_id["1000_a.jpg"].captions[0] == "A child in a pink dress, climbing stairs ."
    assert by_id["1001_b.jpg"].captions[1] == "Two dogs, one black, play ."
    assert (report.missing_image_files, report.captions_for_unknown_images, report.blank_lines) == (1, 2, 1)
    assert by_id["1002_c.jpg"].load().size == (40, 30)
    text = "\n".join(report.lines())
    assert "1 missing image files" in text and "2 captions for unknown images" in text


def test_original_layout_with_crlf_and_official_splits(original_dir: Path):
    images, official, report = load_flickr8k_dir(original_dir)
    assert report.layout == "original"
    assert len(images) == 6 and all(len(im.captions) == 5 for im in images)
    assert images[0].captions[1] == "A dog runs, number 1 ."  # no stray \r
    assert (report.blank_lines, report.malformed_lines, report.missing_image_files) == (1, 1, 1)
    assert official == {"train": ["0_x.jpg", "1_x.jpg", "2_x.jpg", "3_x.jpg"], "val": ["4_x.jpg"], "test": ["5_x.jpg"]}
    assert report.split_entries_without_captions == 1
    splits = split_flickr8k(images, official, 0.1, 0.1, seed=0)
    assert splits.how.startswith("official Flickr8k split files")
    assert [im.image_id for im in splits.test] == ["5_x.jpg"]


def test_flickr8k_dir_flows_through_preprocessing(original_dir: Path):
    cfg = CaptionDataConfig(source="flickr8k", data_dir=str(original_dir), min_freq=1)
    data = prepare_captions(cfg, seed=0)
    assert data.tokens["train"][0][0] == ["a", "dog", "runs", "number"]  # digit and "." gone
    assert data.vocab.itos[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"]


def test_not_a_flickr_dir_says_what_it_expected(tmp_path: Path):
    with pytest.raises(DataError, match="Images/ \\+ captions.txt .* Flicker8k_Dataset/ \\+ Flickr8k.token.txt"):
        load_flickr8k_dir(tmp_path)


def test_hub_format_loads_from_a_local_copy(tmp_path: Path):
    """The hub source reads the hub dataset's own format: image + caption_0..4, three splits."""
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(), **{f"caption_{k}": datasets.Value("string") for k in range(5)}})
    for split, n in (("train", 3), ("validation", 2), ("test", 2)):
        _jpeg(tmp_path / "img.jpg")
        rows = {"image": [str(tmp_path / "img.jpg")] * n, **{f"caption_{k}": [f"a dog number {k}"] * n for k in range(5)}}
        ds = datasets.Dataset.from_dict(rows, features=features)
        (tmp_path / "hub" / "data").mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(tmp_path / "hub" / "data" / f"{split}-00000-of-00001.parquet"))
    splits = load_flickr8k_hub(str(tmp_path / "hub"))
    assert [len(splits.train), len(splits.val), len(splits.test)] == [3, 2, 2]
    assert splits.train[0].captions == [f"a dog number {k}" for k in range(5)]
    assert splits.train[0].load().size == (40, 30)


def test_hub_failure_names_data_dir_and_tiny():
    with pytest.raises(DataError, match="--data-dir DIR .* --preset tiny"):
        load_flickr8k_hub("no-such-user/no-such-dataset")
