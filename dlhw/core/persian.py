"""Persian text normalization, applied to every conversation before tokenization.

What it changes (each step is a separate function, so a test can check it alone):

- Arabic letters that Persian writes differently: ARABIC LETTER YEH ``ي`` (U+064A) and ALEF
  MAKSURA ``ى`` (U+0649) become FARSI YEH ``ی`` (U+06CC); ARABIC LETTER KAF ``ك`` (U+0643)
  becomes KEHEH ``ک`` (U+06A9). Machine-translated data mixes both, and the tokenizer would
  learn two spellings of every word.
- Zero-width non-joiner (ZWNJ, U+200C, the "half space" of ``می‌شود``): the literal six
  characters ``\\u200c`` left in text by a JSON round trip become the real character; runs of
  ZWNJ collapse to one; a ZWNJ next to whitespace or at either end of the text is dropped (it
  joins nothing there).
- Digits (optional, ``digits=``): ``keep`` leaves them; ``persian`` writes ASCII and
  Arabic-Indic digits as Persian ``۰-۹``; ``latin`` writes Persian and Arabic-Indic digits as
  ``0-9``.
- Runs of spaces and tabs collapse to one space; newlines are kept.
"""

from __future__ import annotations

import re
from typing import Literal

ZWNJ = "\u200c"
DigitStyle = Literal["keep", "persian", "latin"]

_LETTERS = str.maketrans({"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9"})
_PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
_ARABIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
_TO_PERSIAN = str.maketrans("0123456789" + _ARABIC_DIGITS, _PERSIAN_DIGITS * 2)
_TO_LATIN = str.maketrans(_PERSIAN_DIGITS + _ARABIC_DIGITS, "0123456789" * 2)
_ESCAPED_ZWNJ = re.compile(r"\\+u200[cC]")
_ZWNJ_RUN = re.compile(ZWNJ + "{2,}")
_ZWNJ_AT_SPACE = re.compile(rf"{ZWNJ}*(\s+){ZWNJ}*")
_ZWNJ_AT_ENDS = re.compile(rf"^{ZWNJ}+|{ZWNJ}+$", re.MULTILINE)
_SPACES = re.compile(r"[ \t]+")


def normalize_letters(text: str) -> str:
    return text.translate(_LETTERS)


def normalize_zwnj(text: str) -> str:
    text = _ESCAPED_ZWNJ.sub(ZWNJ, text)
    text = _ZWNJ_RUN.sub(ZWNJ, text)
    text = _ZWNJ_AT_SPACE.sub(r"\1", text)
    return _ZWNJ_AT_ENDS.sub("", text)


def normalize_digits(text: str, style: DigitStyle) -> str:
    if style == "persian":
        return text.translate(_TO_PERSIAN)
    if style == "latin":
        return text.translate(_TO_LATIN)
    return text


def to_persian_digits(value: int | str) -> str:
    return str(value).translate(_TO_PERSIAN)


def normalize_persian(text: str, digits: DigitStyle = "keep") -> str:
    """Apply every step above; idempotent."""
    text = normalize_zwnj(normalize_letters(text))
    text = normalize_digits(text, digits)
    text = _SPACES.sub(" ", text)
    return "\n".join(line.strip(" ") for line in text.split("\n"))


WORDS = ["سیب", "نان", "آب", "کتاب", "ماه", "گل", "درخت", "خانه", "شهر", "دریا", "کوه", "باران", "برف", "ابر", "ستاره", "خورشید", "قلم", "دفتر", "میز", "صندلی", "پنجره", "ماشین", "اسب", "گربه", "سگ", "پرنده", "ماهی", "چای", "شیر", "برنج", "انار", "انگور", "هلو", "لیمو", "کلید", "چراغ", "کفش", "کلاه", "باغ", "مدرسه"]
"""Everyday Persian nouns the families' embedded data draw from."""

UNITS = ["صفر", "یک", "دو", "سه", "چهار", "پنج", "شش", "هفت", "هشت", "نه"]
TEENS = ["ده", "یازده", "دوازده", "سیزده", "چهارده", "پانزده", "شانزده", "هفده", "هجده", "نوزده"]
TENS = ["_", "_", "بیست", "سی", "چهل", "پنجاه", "شصت", "هفتاد", "هشتاد", "نود"]


HUNDREDS = ["_", "صد", "دویست", "سیصد", "چهارصد", "پانصد", "ششصد", "هفتصد", "هشتصد", "نهصد"]
SCALES = ((10**12, "تریلیون"), (10**9, "میلیارد"), (10**6, "میلیون"), (1000, "هزار"))


def number_words(n: int) -> str:
    """Persian words for a non-negative integer: ۲۳ -> بیست و سه, ۱۴۰۲ -> هزار و چهارصد و دو."""
    if n < 0:
        raise ValueError(f"number_words: {n} is negative")
    if n < 10:
        return UNITS[n]
    if n < 20:
        return TEENS[n - 10]
    if n < 100:
        tens, units = divmod(n, 10)
        return TENS[tens] if units == 0 else f"{TENS[tens]} و {UNITS[units]}"
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return HUNDREDS[hundreds] if rest == 0 else f"{HUNDREDS[hundreds]} و {number_words(rest)}"
    if n >= 1000 * SCALES[0][0]:  # beyond the named scales: read the digits one by one
        return " ".join(UNITS[int(d)] for d in str(n))
    scale, name = next((s, w) for s, w in SCALES if n >= s)
    count, rest = divmod(n, scale)
    head = name if count == 1 and scale == 1000 else f"{number_words(count)} {name}"
    return head if rest == 0 else f"{head} و {number_words(rest)}"
