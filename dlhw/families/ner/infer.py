"""Tagging text with a NER model on any backend (torch, onnxruntime, tensorrt).

:func:`pre_tokenize` splits a line into words with their character offsets: runs of letters,
digits and combining marks, with the zero-width (non-)joiner kept inside a word (so a Persian
word such as ``می‌شود`` stays whole) and inner ``.:'-/`` joining pieces (``10:30``, ``U.S``);
every other non-space character is a word of its own.

:class:`Tagger` turns words into IOB2 tags. A sentence longer than the model's window is cut
into windows of ``max_length`` sub-tokens overlapping by ``stride``; each word takes its tags
from the window in which its label position lies farthest from an edge, so no word is ever
dropped. :func:`entity_spans` reads entities (strict IOB2: a ``B-X`` and the ``I-X`` after it)
with character offsets into the original line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlhw.backends import Backend, open_export, open_session
from dlhw.core.devices import inference_dtype, resolve_device
from dlhw.errors import ConfigError
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


@dataclass
class Window:
    sentence: int
    start: int
    """Index of the window's first sub-token in the sentence's sub-tokens."""
    ids: list[int]
    """The window's sub-token ids with the special tokens around them."""


class Tagger:
    """IOB2 tags for lists of words, through ``logits(input_ids, attention_mask) -> (B, T, L)``."""

    def __init__(self, tokenizer: Any, labels: list[str], max_length: int, stride: int, logits_fn: Any,
                 batch_size: int = 32):
        self.tokenizer = tokenizer
        self.labels = labels
        self.max_length = max_length
        self.stride = stride
        self.logits_fn = logits_fn
        self.batch_size = batch_size
        self.bos, self.eos, self.pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id

    def windows(self, n_pieces: int) -> list[int]:
        """Start offsets of the windows covering ``n_pieces`` sub-tokens."""
        size = self.max_length - 2
        starts = [0]
        while starts[-1] + size < n_pieces:
            starts.append(starts[-1] + size - self.stride)
        return starts

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tags for each list of words (an empty list gets no tags)."""
        tags, _ = self.tag_with_scores(sentences)
        return tags

    def tag_with_scores(self, sentences: list[list[str]]) -> tuple[list[list[str]], list[np.ndarray]]:
        """Tags and the (words, L) logits at each word's label position."""
        enc = self.tokenizer([s or ["x"] for s in sentences], is_split_into_words=True, add_special_tokens=False)
        size = self.max_length - 2
        windows: list[Window] = []
        positions = []
        for i, words in enumerate(sentences):
            ids, word_ids = enc["input_ids"][i], enc.word_ids(i)
            positions.append(label_positions(word_ids, enc.tokens(i), len(words)))
            for start in self.windows(len(ids)):
                windows.append(Window(i, start, [self.bos, *ids[start:start + size], self.eos]))
        window_logits = self._run(windows)
        per_sentence: dict[int, list[tuple[int, np.ndarray]]] = {}
        for window, logits in zip(windows, window_logits, strict=True):
            per_sentence.setdefault(window.sentence, []).append((window.start, logits))
        all_tags, all_scores = [], []
        for i, words in enumerate(sentences):
            scores = np.zeros((len(words), len(self.labels)), dtype=np.float32)
            scores[:, 0] = 1.0  # a word without a sub-token is O
            for w, pos in enumerate(positions[i]):
                if pos is None:
                    continue
                # the window where this sub-token is farthest from an edge
                start, logits = max(per_sentence[i], key=lambda sl: _margin(pos, sl[0], len(sl[1]) - 2))
                scores[w] = logits[pos - start + 1]  # +1: the window's leading <s>
            all_scores.append(scores)
            all_tags.append([self.labels[k] for k in scores.argmax(-1)] if len(words) else [])
        return all_tags, all_scores

    def _run(self, windows: list[Window]) -> list[np.ndarray]:
        order = sorted(range(len(windows)), key=lambda k: len(windows[k].ids))  # less padding per batch
        results: dict[int, np.ndarray] = {}
        for b in range(0, len(order), self.batch_size):
            chunk = order[b:b + self.batch_size]
            longest = max(len(windows[k].ids) for k in chunk)
            ids = np.full((len(chunk), longest), self.pad, dtype=np.int64)  # (B, T)
            mask = np.zeros((len(chunk), longest), dtype=np.int64)  # (B, T)
            for row, k in enumerate(chunk):
                n = len(windows[k].ids)
                ids[row, :n] = windows[k].ids
                mask[row, :n] = 1
            logits = self.logits_fn(ids, mask)  # (B, T, L)
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


def _margin(pos: int, start: int, length: int) -> int:
    """How far sub-token ``pos`` lies inside the window [start, start+length) (negative: outside)."""
    return min(pos - start, start + length - 1 - pos)


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
                int8: bool = False, dtype: str = "auto") -> Tagger:
    """A tagger over a run directory (torch, in ``dtype``: see :func:`~dlhw.core.devices.inference_dtype`)
    or an ONNX export (onnxruntime, tensorrt)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if backend == "torch":
        if not (path / "model" / META_FILE).is_file():
            raise ConfigError(f"{path}: the torch backend needs a NER run directory (with model/{META_FILE}); "
                              "for an export directory use --backend onnxruntime")
        dev = resolve_device(device, "--device")
        model, tokenizer, meta = load_ner_model(path / "model", dev, inference_dtype(dtype, dev))
        return Tagger(tokenizer, meta["labels"], meta["max_length"], meta["stride"], torch_logits(model, dev),
                      batch_size)
    handle = open_export(path, backend, device)
    export_dir, export = handle.export_dir, handle.meta
    if export.get("family") != "ner":
        raise ConfigError(f"{export_dir}: an export of the {export.get('family')} family, not a NER model")
    meta = json.loads((export_dir / META_FILE).read_text(encoding="utf-8"))
    name = export["files"]["model"]
    if int8:
        if "int8" not in export:
            raise ConfigError(f"{export_dir}: no int8 model; make one with `dlhw export RUN --onnx --int8`")
        name = export["int8"]["file"]
    session = open_session(export_dir / name, handle.providers)
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    return Tagger(tokenizer, meta["labels"], meta["max_length"], meta["stride"], ort_logits(session), batch_size)


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
                   int8: bool = False, dtype: str = "auto") -> NerPredictor:
    """The NER family's batch predictor for a run (torch) or an export (onnxruntime, tensorrt)."""
    return NerPredictor(load_tagger(path, backend, device, batch_size, int8, dtype))  # type: ignore[arg-type]
