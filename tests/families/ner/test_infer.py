"""NER tagging: pre-tokenization with offsets, windowing of long sentences, entity spans."""

from __future__ import annotations

import numpy as np

from dlhw.families.ner.data import LABELS
from dlhw.families.ner.infer import Tagger, entity_spans, inline, pre_tokenize
from dlhw.families.ner.model import label_positions, train_tiny_tokenizer


def test_pre_tokenize_keeps_zwnj_words_whole_and_offsets_slice_the_text():
    text = "او می\u200cگوید «تهران» بزرگ است، Ali's 10:30 flight."
    words = pre_tokenize(text)
    assert [w for w, _, _ in words] == ["او", "می\u200cگوید", "«", "تهران", "»", "بزرگ", "است", "،", "Ali's",
                                        "10:30", "flight", "."]
    assert all(text[s:e] == w for w, s, e in words)


def test_entity_spans_are_strict_iob2_with_character_offsets():
    text = "Ali  Rezaei went to New York ."
    words = pre_tokenize(text)
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]
    spans = entity_spans(words, tags, text)
    assert [(s["type"], s["text"], s["start"], s["end"]) for s in spans] == \
        [("PER", "Ali  Rezaei", 0, 11), ("LOC", "New York", 20, 28)]
    assert inline(text, spans) == "[PER Ali  Rezaei] went to [LOC New York] ."
    assert entity_spans(words, ["I-PER", "I-PER", "O", "O", "B-LOC", "I-PER", "O"], text)[0]["text"] == "New"


def test_long_sentences_are_windowed_and_every_word_is_tagged():
    tokenizer = train_tiny_tokenizer(["alpha beta gamma delta"] * 10, 60)
    enc = tokenizer(["gamma"], is_split_into_words=True, add_special_tokens=False)
    gamma = enc["input_ids"][label_positions(enc.word_ids(), enc.tokens(), 1)[0]]  # type: ignore[index]
    seen: list[tuple[int, ...]] = []

    def logits(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """B-PER at the label piece of "gamma", O elsewhere: the answer depends on the sub-token only."""
        seen.append(ids.shape)
        out = np.zeros((*ids.shape, len(LABELS)), dtype=np.float32)
        out[..., 0] = 1.0
        out[..., LABELS.index("B-PER")] = (ids == gamma) * 2.0
        return out

    tagger = Tagger(tokenizer, list(LABELS), max_length=10, stride=3, logits_fn=logits, batch_size=4)
    words = ["alpha", "beta", "gamma", "delta"] * 50  # 200 words in windows of 8 sub-tokens
    tags = tagger.tag([words, ["gamma"], []])
    assert [len(t) for t in tags] == [200, 1, 0]
    assert tags[0] == ["B-PER" if w == "gamma" else "O" for w in words]  # no window shifted a word's tag
    assert tags[1] == ["B-PER"]
    assert len(seen) > 1 and max(shape[1] for shape in seen) <= 10  # several windows, none longer than max_length
    assert tagger.windows(20) == [0, 5, 10, 15] and tagger.windows(8) == [0]
