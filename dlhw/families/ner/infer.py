"""Tagging text with a NER model on any backend (torch, onnxruntime, tensorrt).

:func:`pre_tokenize` splits a line into words with their character offsets: runs of letters,
digits and combining marks, with the zero-width (non-)joiner kept inside a word (so a Persian
word such as ``می‌شود`` stays whole) and inner ``.:'-/`` joining pieces (``10:30``, ``U.S``);
every other non-space character is a word of its own.

:class:`Tagger` turns words into IOB2 tags. A sentence longer than the model's window is cut
into windows of ``max_length`` sub-tokens overlapping by ``stride``; each word takes its tags
from the window in which its label position lies farthest from an edge, so no word is ever
dropped. That window is found by index arithmetic over the window layout (a position lies in
the last window starting at or before it and at most ``ceil(size / step)`` before that), so
tagging is linear in the line's length. A line longer than ``long_line`` characters is tagged
alone, a batch of windows at a time (:meth:`Tagger.tag_long`). :func:`entity_spans` reads
entities (strict IOB2: a ``B-X`` and the ``I-X`` after it) with character offsets into the
original line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlhw.backends import Backend, open_export, open_session, read_export_meta
from dlhw.core.devices import inference_dtype, resolve_device
from dlhw.errors import ConfigError
from dlhw.families.ner.config import LONG_LINE_CHARS
from dlhw.families.ner.model import META_FILE, label_positions, load_ner_model

_WORD = r"[\w\u064b-\u065f\u0670\u200c\u200d]+"
_TOKEN = re.compile(rf"{_WORD}(?:[.:'’/\-]{_WORD})*|[^\s\w]", re.UNICODE)


def pre_tokenize(text: str) -> list[tuple[str, int, int]]:
    """``(word, start, end)`` per word of ``text``; ``text[start:end] == word``."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def entity_spans(words: list[tuple[str, int, int]], tags: list[str], text: str) -> list[dict[str, Any]]:
    """Entities as ``{"type", "text", "start", "end", "words": [i, j)}``; ``text[start:end]`` is the entity."""
    spans: list[dict[str, Any]] = []
    i = 0
    while i < len(tags):
        if not tags[i].startswith("B-"):
            i += 1
            continue
        kind = tags[i][2:]
        j = i + 1
        while j < len(tags) and tags[j] == f"I-{kind}":
            j += 1
        start, end = words[i][1], words[j - 1][2]
        spans.append({"type": kind, "text": text[start:end], "start": start, "end": end, "words": [i, j]})
        i = j
    return spans


def inline(text: str, spans: list[dict[str, Any]]) -> str:
    """``[PER Ali Rezaei] went to [LOC Paris]``: the line with its entities marked."""
    out, last = [], 0
    for span in spans:
        out += [text[last:span["start"]], f"[{span['type']} {span['text']}]"]
        last = span["end"]
    return "".join([*out, text[last:]])


_WORDS_PER_ENCODE = 4096
"""Words tokenized per call on a long line: each word is tokenized on its own (``is_split_into_words``),
so pieces of a line give the same sub-tokens as the whole line, without the whole line's Python lists."""


@dataclass
class Window:
    sentence: int
    start: int
    """Index of the window's first sub-token in the sentence's sub-tokens."""
    ids: list[int]
    """The window's sub-token ids with the special tokens around them."""


class Tagger:
    """IOB2 tags for lists of words, through ``logits(input_ids, attention_mask) -> (B, T, L)``.

    Lines up to ``long_line`` characters are tagged together, their windows sorted by length into
    batches of ``batch_size``. A longer line is tagged alone (:meth:`tag_long`): its windows are cut
    from its sub-token ids one batch at a time and each batch's logits are dropped once its words
    have their tags, so its memory is its sub-token ids and its tags, not every window's logits.
    """

    def __init__(self, tokenizer: Any, labels: list[str], max_length: int, stride: int, logits_fn: Any,
                 batch_size: int = 32, long_line: int = LONG_LINE_CHARS):
        if not 0 <= stride < max_length - 2:
            raise ConfigError(f"stride {stride}: must be >= 0 and below the window of {max_length - 2} sub-tokens")
        self.tokenizer = tokenizer
        self.labels = labels
        self.max_length = max_length
        self.stride = stride
        self.logits_fn = logits_fn
        self.batch_size = batch_size
        self.long_line = long_line
        self.bos, self.eos, self.pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id

    def windows(self, n_pieces: int) -> list[int]:
        """Start offsets of the windows covering ``n_pieces`` sub-tokens: every ``size - stride``
        sub-tokens, until one reaches the end."""
        size = self.max_length - 2
        step = size - self.stride
        count = 1 + max(0, -(-(n_pieces - size) // step))  # ceil((n - size) / step) more after the first
        return list(range(0, count * step, step))

    def best_windows(self, positions: np.ndarray, n_pieces: int) -> np.ndarray:
        """Per sub-token position (a sorted or unsorted (n,) array), the index of the window among
        :meth:`windows` in which it lies farthest from an edge; on a tie the earlier window.

        Index arithmetic, not a search: the last window starting at or before a position holds it,
        and only the ``ceil(size / step)`` windows before that one can hold it too.
        """
        size = self.max_length - 2
        step = size - self.stride
        starts = np.asarray(self.windows(n_pieces), dtype=np.int64)  # (K,)
        ends = np.minimum(starts + size, n_pieces)  # (K,) exclusive
        positions = np.asarray(positions, dtype=np.int64)  # (n,)
        last = np.minimum(positions // step, len(starts) - 1)  # (n,) the last window that starts <= pos
        best = last
        margin = np.minimum(positions - starts[best], ends[best] - 1 - positions)  # (n,) >= 0: it holds pos
        for back in range(1, -(-size // step) + 1):
            k = last - back  # (n,)
            valid = k >= 0
            kk = np.where(valid, k, 0)
            m = np.minimum(positions - starts[kk], ends[kk] - 1 - positions)  # negative: kk does not hold pos
            better = valid & (m >= margin)  # >=: the earlier window wins a tie
            best, margin = np.where(better, kk, best), np.where(better, m, margin)
        return best

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tags for each list of words (an empty list gets no tags); a sentence longer than
        ``long_line`` characters goes through :meth:`tag_long`."""
        long = {i for i, words in enumerate(sentences) if _joined_length(words) > self.long_line}
        short = [i for i in range(len(sentences)) if i not in long]
        tags: list[list[str]] = [[] for _ in sentences]
        for i, t in zip(short, self.tag_with_scores([sentences[i] for i in short])[0], strict=True):
            tags[i] = t
        for i in sorted(long):
            tags[i] = self.tag_long(sentences[i])
        return tags

    def tag_with_scores(self, sentences: list[list[str]]) -> tuple[list[list[str]], list[np.ndarray]]:
        """Tags and the (words, L) logits at each word's label position."""
        if not sentences:
            return [], []
        enc = self.tokenizer([s or ["x"] for s in sentences], is_split_into_words=True, add_special_tokens=False)
        size = self.max_length - 2
        windows: list[Window] = []
        first_window, positions = [], []
        for i, words in enumerate(sentences):
            ids = enc["input_ids"][i]
            positions.append(label_positions(enc.word_ids(i), enc.tokens(i), len(words)))
            first_window.append(len(windows))
            windows += [Window(i, start, [self.bos, *ids[start:start + size], self.eos])
                        for start in self.windows(len(ids))]
        window_logits = self._run(windows)
        all_tags, all_scores = [], []
        for i, words in enumerate(sentences):
            scores = np.zeros((len(words), len(self.labels)), dtype=np.float32)
            scores[:, 0] = 1.0  # a word without a sub-token is O
            tagged = [w for w, pos in enumerate(positions[i]) if pos is not None]
            pos_array = np.array([positions[i][w] for w in tagged], dtype=np.int64)
            best = self.best_windows(pos_array, len(enc["input_ids"][i]))
            for w, pos, k in zip(tagged, pos_array.tolist(), best.tolist(), strict=True):
                window = windows[first_window[i] + k]
                scores[w] = window_logits[first_window[i] + k][pos - window.start + 1]  # +1: the leading <s>
            all_scores.append(scores)
            all_tags.append([self.labels[k] for k in scores.argmax(-1)] if len(words) else [])
        return all_tags, all_scores

    def tag_long(self, words: list[str]) -> list[str]:
        """Tags of one long sentence, the same as :meth:`tag_with_scores` gives it: tokenized once
        (in pieces of words), windows sliced from its sub-token ids, ``batch_size`` windows per
        model call, each word's tag read from its best window as that window's batch comes back."""
        if not words:
            return []
        ids, positions = self._encode(words)  # (P,), (W,) with -1 for a word without a sub-token
        size = self.max_length - 2
        starts = np.asarray(self.windows(len(ids)), dtype=np.int64)  # (K,)
        tagged = np.flatnonzero(positions >= 0)  # (n,) words with a label position
        owner = self.best_windows(positions[tagged], len(ids))  # (n,) the window each word is read from
        order = np.argsort(owner, kind="stable")  # words grouped by window: each batch takes one slice
        owner_sorted, tagged_sorted = owner[order], tagged[order]
        label_ids = np.zeros(len(words), dtype=np.int64)  # 0 = O, the tag of a word without a sub-token
        for first in range(0, len(starts), self.batch_size):
            last = min(first + self.batch_size, len(starts))
            rows_ids = [np.concatenate(([self.bos], ids[starts[k]:starts[k] + size], [self.eos]))
                        for k in range(first, last)]
            logits = self.logits_fn(*self._padded(rows_ids))  # (B, T, L)
            lo, hi = np.searchsorted(owner_sorted, [first, last])
            rows = owner_sorted[lo:hi]  # (m,) window index of each word read from this batch
            word_pos = positions[tagged_sorted[lo:hi]]  # (m,)
            columns = word_pos - starts[rows] + 1  # +1: the leading <s>
            label_ids[tagged_sorted[lo:hi]] = logits[rows - first, columns].argmax(-1)  # (m, L) -> (m,)
        return [self.labels[k] for k in label_ids.tolist()]

    def _encode(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Sub-token ids of ``words`` (no special tokens) and each word's label position in them (-1: none)."""
        ids, positions, offset = [], [], 0
        for first in range(0, len(words), _WORDS_PER_ENCODE):
            chunk = words[first:first + _WORDS_PER_ENCODE]
            enc = self.tokenizer([chunk], is_split_into_words=True, add_special_tokens=False)
            chunk_ids = np.asarray(enc["input_ids"][0], dtype=np.int64)
            pos = label_positions(enc.word_ids(0), enc.tokens(0), len(chunk))
            positions.append(np.array([-1 if p is None else p + offset for p in pos], dtype=np.int64))
            ids.append(chunk_ids)
            offset += len(chunk_ids)
        return np.concatenate(ids), np.concatenate(positions)

    def _padded(self, rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Token id rows (``<s>`` ... ``</s>`` each) right-padded into one batch, and its attention mask."""
        longest = max(len(row) for row in rows)
        ids = np.full((len(rows), longest), self.pad, dtype=np.int64)  # (B, T)
        mask = np.zeros((len(rows), longest), dtype=np.int64)  # (B, T)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        return ids, mask

    def _run(self, windows: list[Window]) -> list[np.ndarray]:
        order = sorted(range(len(windows)), key=lambda k: len(windows[k].ids))  # less padding per batch
        results: dict[int, np.ndarray] = {}
        for b in range(0, len(order), self.batch_size):
            chunk = order[b:b + self.batch_size]
            logits = self.logits_fn(*self._padded([windows[k].ids for k in chunk]))  # (B, T, L)
            for row, k in enumerate(chunk):
                results[k] = logits[row, :len(windows[k].ids)]
        return [results[k] for k in range(len(windows))]

    def tag_text(self, text: str) -> dict[str, Any]:
        """The record of one line: tokens, tags, entity spans with offsets, and the inline form."""
        return self.tag_texts([text])[0]

    def tag_texts(self, texts: list[str]) -> list[dict[str, Any]]:
        words = [pre_tokenize(t) for t in texts]
        tags = self.tag([[w for w, _, _ in ws] for ws in words])
        out = []
        for text, ws, ts in zip(texts, words, tags, strict=True):
            spans = entity_spans(ws, ts, text)
            out.append({"text": text, "tokens": [w for w, _, _ in ws], "tags": ts,
                        "entities": [{k: v for k, v in s.items() if k != "words"} for s in spans],
                        "tagged": inline(text, spans)})
        return out


def _joined_length(words: list[str]) -> int:
    """Characters of ``words`` joined by single spaces."""
    return sum(map(len, words)) + max(len(words) - 1, 0)


def torch_logits(model: Any, device: torch.device) -> Any:
    @torch.no_grad()
    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = model(input_ids=torch.from_numpy(ids).to(device), attention_mask=torch.from_numpy(mask).to(device))
        return out["logits"].float().cpu().numpy()  # (B, T, L)

    return run


def ort_logits(session: Any) -> Any:
    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]  # (B, T, L)

    return run


def load_tagger(path: str | Path, backend: Backend = "torch", device: str = "cpu", batch_size: int = 32,
                int8: bool = False, dtype: str = "auto", long_line: int = LONG_LINE_CHARS) -> Tagger:
    """A tagger over a run directory (torch, in ``dtype``: see :func:`~dlhw.core.devices.inference_dtype`)
    or an ONNX export (onnxruntime, tensorrt); lines over ``long_line`` characters are tagged alone."""
    from transformers import AutoTokenizer

    path = Path(path)
    if backend == "torch":
        if not (path / "model" / META_FILE).is_file():
            raise ConfigError(f"{path}: the torch backend needs a NER run directory (with model/{META_FILE}); "
                              "for an export directory use --backend onnxruntime")
        dev = resolve_device(device, "--device")
        model, tokenizer, meta = load_ner_model(path / "model", dev, inference_dtype(dtype, dev))
        return Tagger(tokenizer, meta["labels"], meta["max_length"], meta["stride"], torch_logits(model, dev),
                      batch_size, long_line)
    handle = open_export(path, backend, device)
    export_dir, export = handle.export_dir, handle.meta
    if export.get("family") != "ner":
        raise ConfigError(f"{export_dir}: an export of the {export.get('family')} family, not a NER model")
    meta = read_export_meta(export_dir, META_FILE)
    name = export["files"]["model"]
    if int8:
        if "int8" not in export:
            raise ConfigError(f"{export_dir}: no int8 model; make one with `dlhw export RUN --onnx --int8`")
        name = export["int8"]["file"]
    session = open_session(export_dir / name, handle.providers)
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    return Tagger(tokenizer, meta["labels"], meta["max_length"], meta["stride"], ort_logits(session), batch_size,
                  long_line)


class NerPredictor:
    """``dlhw ner``'s predictor: a line of text -> its tokens, IOB2 tags and entity spans."""

    result_key = "tagged"

    def __init__(self, tagger: Tagger):
        self.tagger = tagger
        self.words = 0

    def load(self, key: str, raw: Any) -> str:
        return str(raw)

    def predict(self, batch: list[str]) -> list[dict[str, Any]]:
        records = self.tagger.tag_texts(batch)
        self.words += sum(len(r["tokens"]) for r in records)
        return records

    def throughput(self, seconds: float) -> str | None:
        return f"{self.words} words tagged in {seconds:.1f} s ({self.words / max(seconds, 1e-9):.1f} words/s)"


def open_predictor(path: str, backend: str = "torch", device: str = "auto", batch_size: int = 32,
                   int8: bool = False, dtype: str = "auto", long_line: int = LONG_LINE_CHARS) -> NerPredictor:
    """The NER family's batch predictor for a run (torch) or an export (onnxruntime, tensorrt)."""
    return NerPredictor(load_tagger(path, backend, device, batch_size, int8, dtype,  # type: ignore[arg-type]
                                    long_line))
