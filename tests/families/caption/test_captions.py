from __future__ import annotations

import pytest

from dlhw.families.caption.captions import (
    CaptionImage,
    Vocabulary,
    choose_max_length,
    clean_caption,
    split_by_image,
)


def test_clean_caption_lowercases_and_strips_punctuation_symbols_digits():
    assert clean_caption("A Dog's 2 balls, & a cat!") == ["a", "dog", "balls", "a", "cat"]
    assert clean_caption("  Two-year-old   GIRL.  ") == ["two", "year", "old", "girl"]
    assert clean_caption("café #1") == ["café"]


def test_vocabulary_specials_min_freq_encode_decode(tmp_path):
    vocab = Vocabulary.build([["a", "dog"], ["a", "cat"], ["a", "dog", "runs"]], min_freq=2)
    assert vocab.itos == ["<pad>", "<sos>", "<eos>", "<unk>", "a", "dog"]
    ids = vocab.encode(["a", "cat", "dog"], max_length=7)
    assert ids == [1, 4, 3, 5, 2, 0, 0]
    assert vocab.decode(ids) == ["a", "<unk>", "dog"]
    # too long: cut, <eos> kept
    assert vocab.encode(["a"] * 10, max_length=5) == [1, 4, 4, 4, 2]
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json").itos == vocab.itos


def test_max_length_is_the_percentile_plus_two():
    lengths = [["w"] * n for n in range(1, 101)]  # 1..100 words
    assert choose_max_length(lengths, 95) == 96 + 2  # 95th percentile 95.05 words, rounded up
    assert choose_max_length(lengths, 100) == 102


def test_split_by_image_has_no_overlap_and_is_seeded():
    images = [CaptionImage(f"im{i}", ["x"]) for i in range(100)]
    a = split_by_image(images, 0.1, 0.1, seed=1)
    b = split_by_image(images, 0.1, 0.1, seed=1)
    c = split_by_image(images, 0.1, 0.1, seed=2)
    ids = a.ids()
    assert (len(ids["train"]), len(ids["val"]), len(ids["test"])) == (80, 10, 10)
    assert not set(ids["train"]) & set(ids["val"]) and not set(ids["train"]) & set(ids["test"])
    assert not set(ids["val"]) & set(ids["test"])
    assert sorted(sum(ids.values(), [])) == sorted(im.image_id for im in images)
    assert ids == b.ids() and ids != c.ids()
    with pytest.raises(ValueError, match="too few"):
        split_by_image(images[:2], 0.1, 0.1, seed=0)
