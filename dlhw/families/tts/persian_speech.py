"""Persian text for speech: cleaning that SpeechT5 can read, and its character-vocabulary extension.

:func:`clean_for_speech` runs, in order:

1. :func:`dlhw.core.persian.normalize_persian` (Arabic yeh/kaf -> Persian, ZWNJ clean-up; ZWNJ
   itself is kept, it is a character of the written word and of the vocabulary);
2. digits (Persian, Arabic-Indic and Latin) spelled out as Persian words with
   :func:`dlhw.families.chat.persian_tasks.number_words` (SpeechT5 cannot read digits); a decimal or
   thousands separator between digits is read as ``ممیز`` or dropped;
3. Arabic diacritics (harakat, tanwin, shadda, sukun) and tatweel dropped;
4. punctuation mapped to the few marks the model reads (``،`` -> ``,``, ``؟`` -> ``?``, ``؛`` -> ``,``,
   quotes and brackets dropped, dashes to a space);
5. Latin letters: ``latin="map"`` writes them with Persian letters (``š`` -> ``ش``, ``kh`` -> ``خ``, ...),
   ``latin="drop"`` removes them;
6. anything else outside the Persian alphabet, space, ZWNJ and ``, . ? !`` dropped, spaces collapsed;
   a text left with no letter is empty.

The vocabulary extension (:func:`vocabulary_extension`) is computed from texts *after* cleaning,
over every split, and added to SpeechT5's sentencepiece model itself (:func:`extend_tokenizer`),
not with ``add_tokens``: added tokens swallow the spaces around them, so Persian words ran
together, while pieces of the sentencepiece model keep its word-boundary ``▁`` before each word
and none between the characters of a word.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from dlhw.core.persian import ZWNJ, normalize_digits, normalize_persian, number_words

LatinPolicy = Literal["map", "drop"]

PERSIAN_LETTERS = "آابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهیءأؤئۀة"
"""The letters a cleaned text may hold (besides space, ZWNJ and ``, . ? !``)."""
KEPT_PUNCTUATION = ",.?!"

_DIACRITICS = re.compile("[\u064b-\u065f\u0670\u0640]")  # harakat, tanwin, shadda, sukun, superscript alef, tatweel
_NUMBER = re.compile(r"\d+(?:[.,٫٬/]\d+)*")
_PUNCT = str.maketrans({
    "،": ",", "؛": ",", ";": ",", ":": ",", "؟": "?", "«": " ", "»": " ", '"': " ", "'": " ", "(": " ",
    ")": " ", "[": " ", "]": " ", "-": " ", "–": " ", "—": " ", "_": " ", "/": " ", "…": ".", "٫": ".",
    "\n": " ", "\t": " ",
})
# Latin to Persian letters, longest first; the seed mapped only ``š``.
_LATIN_PAIRS = (
    ("kh", "خ"), ("sh", "ش"), ("ch", "چ"), ("zh", "ژ"), ("gh", "ق"), ("ou", "و"), ("oo", "و"), ("ee", "ی"),
    ("š", "ش"), ("č", "چ"), ("ž", "ژ"), ("ā", "ا"), ("â", "ا"), ("ī", "ی"), ("ū", "و"), ("é", "ه"), ("è", "ه"),
    ("a", "ا"), ("b", "ب"), ("c", "ک"), ("d", "د"), ("e", "ه"), ("f", "ف"), ("g", "گ"), ("h", "ه"), ("i", "ی"),
    ("j", "ج"), ("k", "ک"), ("l", "ل"), ("m", "م"), ("n", "ن"), ("o", "و"), ("p", "پ"), ("q", "ق"), ("r", "ر"),
    ("s", "س"), ("t", "ت"), ("u", "و"), ("v", "و"), ("w", "و"), ("x", "کس"), ("y", "ی"), ("z", "ز"),
)
_LATIN = re.compile("|".join(re.escape(a) for a, _ in _LATIN_PAIRS))
_LATIN_MAP = dict(_LATIN_PAIRS)
_ALLOWED = set(PERSIAN_LETTERS) | set(KEPT_PUNCTUATION) | {" ", ZWNJ}
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.?!])")
_PUNCT_RUN = re.compile(r"([,.?!])[,.?!]+")


def _read_number(match: re.Match[str]) -> str:
    text = match.group(0)
    parts = re.split(r"[.,٫٬/]", text)
    if len(parts) > 1 and all(len(p) == 3 for p in parts[1:]) and text[len(parts[0])] in ",٬":
        return f" {number_words(int(''.join(parts)))} "  # 1,200 -> thousands separators
    if len(parts) == 2 and text[len(parts[0])] in ".٫":
        return f" {number_words(int(parts[0]))} ممیز {number_words(int(parts[1]))} "
    return " " + " ".join(number_words(int(p)) for p in parts) + " "


def spell_numbers(text: str) -> str:
    """Every run of digits (Persian, Arabic-Indic or Latin) as Persian words: ``۲۳`` -> ``بیست و سه``."""
    return _NUMBER.sub(_read_number, normalize_digits(text, "latin"))


def map_latin(text: str, policy: LatinPolicy = "map") -> str:
    """Latin letters written with Persian letters (``map``) or removed (``drop``)."""
    lowered = unicodedata.normalize("NFC", text.lower()) if re.search("[A-Za-zÀ-ž]", text) else text
    if policy == "drop":
        return re.sub("[a-zà-ž]", "", lowered)
    return _LATIN.sub(lambda m: _LATIN_MAP[m.group(0)], lowered)


def clean_for_speech(text: str, latin: LatinPolicy = "map") -> str:
    """The text SpeechT5 is trained on and reads: see the module docstring for the steps."""
    text = normalize_persian(text)
    text = spell_numbers(text)
    text = _DIACRITICS.sub("", text)
    text = text.translate(_PUNCT)
    text = map_latin(text, latin)
    text = "".join(c for c in text if c in _ALLOWED)
    text = normalize_persian(text)  # again: the steps above leave ZWNJ next to new spaces
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _PUNCT_RUN.sub(r"\1", text)
    if not any(c in PERSIAN_LETTERS for c in text):
        return ""  # punctuation alone is nothing to say
    return text.strip(" ,")


def vocabulary_extension(cleaned_texts: Iterable[str], known: Iterable[str]) -> tuple[list[str], Counter[str]]:
    """Characters of ``cleaned_texts`` that the tokenizer does not know (sorted), and all counts.

    Give it the texts of every split after :func:`clean_for_speech`: a character seen only in
    the test split still needs an embedding, and a character the cleaning removes needs none.
    """
    counts: Counter[str] = Counter()
    for text in cleaned_texts:
        counts.update(text)
    known_set = set(known)
    missing = sorted(c for c in counts if c != " " and c not in known_set and "▁" + c not in known_set)
    return missing, counts


def known_characters(tokenizer: Any) -> set[str]:
    """The single characters a sentencepiece tokenizer has pieces for (``▁x`` counts as ``x``)."""
    return {p.removeprefix("▁") for p in tokenizer.get_vocab() if len(p.removeprefix("▁")) == 1}


def extend_tokenizer(tokenizer: Any, chars: list[str], out_dir: Path) -> Any:
    """A copy of SpeechT5 ``tokenizer`` whose sentencepiece model also has a piece for each of ``chars``.

    The new pieces go to the end of the vocabulary (ids ``len(tokenizer)`` onwards), so the
    model's embedding matrix grows by ``len(chars)`` rows and no existing id moves. Saved to
    ``out_dir`` and reloaded from there.
    """
    from sentencepiece import sentencepiece_model_pb2 as model_pb2
    from transformers import SpeechT5Tokenizer

    if tokenizer.added_tokens_encoder and any(t not in tokenizer.all_special_tokens for t in tokenizer.added_tokens_encoder):
        raise ValueError("extend_tokenizer: the tokenizer has added tokens beyond its special ones; they would "
                         "keep their ids after the new pieces and the embedding rows would not line up")
    proto = model_pb2.ModelProto()  # type: ignore[attr-defined]
    proto.ParseFromString(tokenizer.sp_model.serialized_model_proto())
    have = {p.piece for p in proto.pieces}
    for char in chars:
        if char not in have:
            proto.pieces.append(model_pb2.ModelProto.SentencePiece(piece=char, score=0.0))  # type: ignore[attr-defined]
    # nmt_nfkc would rewrite or drop some characters (ZWNJ among them) before they reach the pieces;
    # the text is already normalized by clean_for_speech.
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.ClearField("precompiled_charsmap")
    out_dir.mkdir(parents=True, exist_ok=True)
    spm_file = out_dir / "spm_char.model"
    spm_file.write_bytes(proto.SerializeToString())
    extended = SpeechT5Tokenizer(str(spm_file))
    extended.save_pretrained(out_dir)
    return SpeechT5Tokenizer.from_pretrained(out_dir)
