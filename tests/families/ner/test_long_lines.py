"""Long lines in NER tagging: the best window found by arithmetic, work linear in the line, and
lines over ``long_line`` tagged a batch of windows at a time with the same tags."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from dlhw.families.ner.data import LABELS
from dlhw.families.ner.infer import Tagger, open_predictor, torch_logits
from dlhw.families.ner.model import NerModel, label_positions, tiny_backbone, train_tiny_tokenizer
from dlhw.families.ner.ner_tasks import embedded_splits, tokenizer_corpus
from tests.conftest import run_cli


def _sentences(n: int) -> list[str]:
    """``n`` embedded test sentences, English and Persian alternating."""
    return [" ".join(s.tokens) for s in embedded_splits(0, 0, n, seed=7)["test"]]


def _reference_tags(tagger: Tagger, words: list[str]) -> list[str]:
    """Tags of one sentence computed the plain way: every window run on its own, and for every word
    a search over all windows for the one where its label position is farthest from an edge
    (the earlier window on a tie)."""
    enc = tagger.tokenizer([words], is_split_into_words=True, add_special_tokens=False)
    ids = enc["input_ids"][0]
    positions = label_positions(enc.word_ids(0), enc.tokens(0), len(words))
    size = tagger.max_length - 2
    starts = [0]
    while starts[-1] + size < len(ids):
        starts.append(starts[-1] + size - tagger.stride)
    logits = []
    for start in starts:
        window = np.array([[tagger.bos, *ids[start:start + size], tagger.eos]], dtype=np.int64)  # (1, T)
        logits.append(tagger.logits_fn(window, np.ones_like(window))[0])  # (T, L)
    tags = []
    for pos in positions:
        if pos is None:
            tags.append("O")
            continue
        margins = [min(pos - s, s + len(lg) - 2 - 1 - pos) for s, lg in zip(starts, logits, strict=True)]
        k = margins.index(max(margins))
        tags.append(tagger.labels[int(logits[k][pos - starts[k] + 1].argmax())])
    return tags


@pytest.fixture(scope="module")
def random_tagger() -> Tagger:
    """A tagger over an untrained tiny NER model (fixed seed) and a tokenizer trained on the embedded
    sentences: real model logits in milliseconds, nothing trained."""
    tokenizer = train_tiny_tokenizer(tokenizer_corpus(embedded_splits(400, 0, 0, seed=1)["train"]), 300)
    torch.manual_seed(0)
    model = NerModel(tiny_backbone(_TinySizes(), len(tokenizer), 24, tokenizer.pad_token_id)).eval()
    return Tagger(tokenizer, list(LABELS), max_length=24, stride=5, logits_fn=torch_logits(model, torch.device("cpu")),
                  batch_size=8)


class _TinySizes:
    hidden_size, num_layers, num_heads, intermediate_size = 32, 2, 2, 64


class _Counting:
    """A logits function that records the shape of every batch it is given, over ``inner``."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.shapes.append(ids.shape)
        return self.inner(ids, mask)


@pytest.mark.parametrize(("max_length", "stride"), [(10, 0), (10, 3), (10, 4), (11, 4), (24, 5), (64, 16)])
def test_best_window_arithmetic_is_the_search_over_all_windows(max_length, stride):
    specials = SimpleNamespace(cls_token_id=0, sep_token_id=2, pad_token_id=1)  # all the windows need of it
    tagger = Tagger(specials, list(LABELS), max_length, stride, logits_fn=None)
    size = max_length - 2
    for n in [*range(1, 3 * size + 2), 10 * size + 3]:
        starts = tagger.windows(n)
        lengths = [min(size, n - s) for s in starts]
        searched = [max(range(len(starts)), key=lambda k: min(p - starts[k], starts[k] + lengths[k] - 1 - p))
                    for p in range(n)]  # max() keeps the first of equals: the earlier window on a tie
        assert tagger.best_windows(np.arange(n), n).tolist() == searched, n


def test_multi_window_lines_get_the_reference_tags(random_tagger):
    for n in (1, 4, 30):  # one window, a few, many
        words = " ".join(_sentences(n)).split()
        expected = _reference_tags(random_tagger, words)
        assert random_tagger.tag([words]) == [expected]
        assert random_tagger.tag_long(words) == expected
    assert len(random_tagger.windows(len(random_tagger.tokenizer([words], is_split_into_words=True,
                                                                   add_special_tokens=False)["input_ids"][0]))) > 20


def test_a_long_line_costs_one_model_row_per_window_and_is_tokenized_once(random_tagger):
    counting = _Counting(random_tagger.logits_fn)
    tokenizer_words: list[int] = []
    inner_tokenizer = random_tagger.tokenizer

    class CountingTokenizer:
        def __call__(self, batch: list[list[str]], **kwargs: Any) -> Any:
            tokenizer_words.append(sum(len(words) for words in batch))
            return inner_tokenizer(batch, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(inner_tokenizer, name)

    tagger = Tagger(CountingTokenizer(), list(LABELS), max_length=24, stride=5, logits_fn=counting, batch_size=8,
                    long_line=1000)
    words = " ".join(_sentences(300)).split() * 4  # about 12,000 words, far over long_line
    n_pieces = len(inner_tokenizer([words], is_split_into_words=True, add_special_tokens=False)["input_ids"][0])
    tokenizer_words.clear()
    tags = tagger.tag([words])[0]
    size, step = 22, 22 - 5
    windows = 1 + math.ceil((n_pieces - size) / step)
    assert len(tags) == len(words)
    assert sum(tokenizer_words) == len(words)  # every word tokenized once
    assert sum(rows for rows, _ in counting.shapes) == windows  # every window run once
    assert len(counting.shapes) == math.ceil(windows / 8)  # in full batches but the last
    assert {shape for shape in counting.shapes[:-1]} == {(8, 24)}


def test_a_line_just_over_the_limit_gets_the_tags_of_the_batched_path(random_tagger):
    text = " ".join(_sentences(40))
    batched = Tagger(random_tagger.tokenizer, list(LABELS), 24, 5, random_tagger.logits_fn, batch_size=8,
                     long_line=len(text))
    alone = Tagger(random_tagger.tokenizer, list(LABELS), 24, 5, _Counting(random_tagger.logits_fn), batch_size=8,
                   long_line=len(text) - 1)
    lines = [_sentences(3)[1], text, _sentences(3)[2]]
    got = alone.tag_texts(lines)
    assert got == batched.tag_texts(lines)
    assert len(got[1]["entities"]) > 20
    windows = [len(alone.windows(len(ids))) for ids in
               random_tagger.tokenizer([line.split() for line in lines], is_split_into_words=True,
                                       add_special_tokens=False)["input_ids"]]
    assert windows[1] > 20

    def batches(n: int) -> list[int]:
        return [8] * (n // 8) + [n % 8] * (n % 8 > 0)

    # the two short lines' windows batched together, then the long line's alone, 8 windows a batch
    assert [rows for rows, _ in alone.logits_fn.shapes] == batches(windows[0] + windows[2]) + batches(windows[1])


@pytest.mark.slow
def test_the_trained_run_tags_a_long_line_alone_as_in_a_batch(ner_run, tmp_path):
    predictor = open_predictor(str(ner_run), "torch", "cpu", 32)
    words = " ".join(_sentences(60)).split()
    assert predictor.tagger.tag([words]) == [_reference_tags(predictor.tagger, words)]

    text = " ".join(_sentences(40))
    source = tmp_path / "texts.txt"
    source.write_text("\n".join([_sentences(2)[1], text, "Helen Adams flew to Lima ."]) + "\n", encoding="utf-8")
    outputs = {}
    for limit in (len(text), len(text) - 1):  # the long line batched with the others; then over the limit
        out = tmp_path / f"limit-{limit}.jsonl"
        code, log = run_cli("ner", str(source), "--model", str(ner_run), "--out", str(out), "--long-line", str(limit))
        assert code == 0, log
        outputs[limit] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert outputs[len(text)] == outputs[len(text) - 1]
    long = next(r for r in outputs[len(text)] if r["text"] == text)
    assert len(long["entities"]) > 20
    assert all(text[e["start"]:e["end"]] == e["text"] for e in long["entities"])  # offsets index the line


def test_long_line_must_be_positive(tmp_path: Path):
    code, out = run_cli("ner", "--model", str(tmp_path), "--text", "x", "--long-line", "0")
    assert code == 2
    assert "Invalid value for '--long-line': 0 is not in the range x>=1." in out
