"""Persian text for speech: digits as words, ZWNJ kept, punctuation and Latin letters, the vocabulary extension."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlhw.core.persian import ZWNJ
from dlhw.families.tts.config import TinySpeechT5Config
from dlhw.families.tts.model import tiny_tokenizer
from dlhw.families.tts.persian_speech import (
    clean_for_speech,
    extend_tokenizer,
    known_characters,
    map_latin,
    spell_numbers,
    vocabulary_extension,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("۲۳", "بیست و سه"),
    ("23", "بیست و سه"),
    ("٢٣", "بیست و سه"),
    ("سال ۱۴۰۲", "سال هزار و چهارصد و دو"),
    ("1,200 تومان", "هزار و دویست تومان"),
    ("۳.۵", "سه ممیز پنج"),
    ("0", "صفر"),
])
def test_digits_become_persian_words(text: str, expected: str) -> None:
    assert clean_for_speech(text) == expected


def test_spell_numbers_leaves_words_alone() -> None:
    assert spell_numbers("من 3 سیب دارم") == "من  سه  سیب دارم"


def test_zwnj_is_kept_inside_words_and_arabic_letters_become_persian() -> None:
    cleaned = clean_for_speech("مي\u200cشود كتاب\u200c ")
    assert cleaned == f"می{ZWNJ}شود کتاب"


def test_punctuation_is_mapped_and_diacritics_dropped() -> None:
    assert clean_for_speech("«سلامٌ»، خوبی؟!") == "سلام, خوبی?"


def test_latin_letters_mapped_or_dropped() -> None:
    assert map_latin("šahr") == "شاهر"
    assert clean_for_speech("kh salam") == "خ سالام"
    assert clean_for_speech("abc سلام", latin="drop") == "سلام"


def test_a_line_of_symbols_cleans_to_nothing() -> None:
    assert clean_for_speech("  «»… ()  ") == ""


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object, list[str]]:
    root = tmp_path_factory.mktemp("tok")
    base = tiny_tokenizer(TinySpeechT5Config(), root / "base")
    train = ["سلام دنیا", "می‌شود ۲"]
    val = ["ژاله ٔ"]  # ژ only in the held-out split
    cleaned = [clean_for_speech(t) for t in train + val]
    chars, _ = vocabulary_extension(cleaned, known_characters(base))
    return base, extend_tokenizer(base, chars, root / "ext"), chars


def test_extension_is_computed_after_cleaning_over_every_split(extended: tuple) -> None:
    _, _, chars = extended
    assert "ژ" in chars  # from the val split
    assert "ي" not in chars and "2" not in chars and "۲" not in chars  # cleaning removed them
    assert {"د", "و"} <= set(chars)  # "۲" became "دو"
    assert ZWNJ in chars
    assert chars == sorted(chars)


def test_persian_word_tokenizes_into_its_characters_without_word_markers(extended: tuple) -> None:
    base, tok, chars = extended
    assert len(tok) == len(base) + len(chars)
    assert tok.tokenize("سلام دنیا") == ["▁", "س", "ل", "ا", "م", "▁", "د", "ن", "ی", "ا"]
    assert tok.tokenize(f"می{ZWNJ}شود") == ["▁", "م", "ی", ZWNJ, "ش", "و", "د"]
    ids = tok("سلام").input_ids
    assert ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "سلام"
    # the English characters keep their ids
    assert tok.convert_tokens_to_ids(list("hello")) == base.convert_tokens_to_ids(list("hello"))


def test_add_tokens_would_lose_the_word_boundaries(extended: tuple, tmp_path: Path) -> None:
    """Why the extension goes into the sentencepiece model: added tokens swallow the spaces."""
    from transformers import SpeechT5Tokenizer

    base, _, chars = extended
    naive = SpeechT5Tokenizer(base.vocab_file)
    naive.add_tokens(chars)
    assert "▁" not in naive.tokenize("سلام دنیا")


def test_number_words_keeps_0_to_99_and_reads_larger_numbers() -> None:
    from dlhw.core.persian import TEENS, TENS, UNITS, number_words

    def below_100(n: int) -> str:  # the chat task's original rule
        if n < 10:
            return UNITS[n]
        if n < 20:
            return TEENS[n - 10]
        tens, units = divmod(n, 10)
        return TENS[tens] if units == 0 else f"{TENS[tens]} و {UNITS[units]}"

    assert all(number_words(n) == below_100(n) for n in range(100))
    assert number_words(100) == "صد" and number_words(999) == "نهصد و نود و نه"
    assert number_words(1000) == "هزار" and number_words(2000) == "دو هزار"
    assert number_words(2_500_300) == "دو میلیون و پانصد هزار و سیصد"
    with pytest.raises(ValueError, match="negative"):
        number_words(-1)
