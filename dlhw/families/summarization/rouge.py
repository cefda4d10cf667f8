"""ROUGE for any script, multi-reference, with bootstrap intervals; BERTScore.

``rouge_score``'s default tokenizer keeps only ``[a-z0-9]``: Persian, Arabic, Cyrillic or Chinese
summaries score 0 whatever they say. :class:`UnicodeTokenizer` keeps every script's letters and
digits (``[^\\W_]+``, lower-cased) and stems with Porter only when the language is English.

ROUGE-Lsum splits on newlines only; without them it equals ROUGE-L, while papers' "ROUGE-L" is
usually Lsum over sentences. References keep their newlines (CNN/DM highlights are one per line)
and generated summaries are sentence-split first (:func:`dlhw.families.summarization.data.sentences_to_lines`).

Multi-reference: for each ROUGE type, the best F1 over the references (``score_multi``), as the
TweetSumm paper reports. Intervals: percentile bootstrap over examples (95%).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from dlhw.families.summarization.data import sentences_to_lines

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
WORD = re.compile(r"[^\W_]+")


class UnicodeTokenizer:
    """Lower-cased runs of letters/digits of any script; Porter stems (English only, tokens > 3 chars,
    as rouge_score does)."""

    def __init__(self, stem: bool):
        self.stemmer = None
        if stem:
            from nltk.stem import porter

            self.stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        tokens = WORD.findall(text.lower())
        if self.stemmer is not None:
            tokens = [self.stemmer.stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]
        return tokens


def scorer(language: str = "en") -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=UnicodeTokenizer(stem=language == "en"))


def score_example(prediction: str, references: Sequence[str], rouge: Any) -> dict[str, float]:
    """F1 of each ROUGE type, the best over ``references``; the prediction sentence-split for Lsum."""
    scores = rouge.score_multi(list(references), sentences_to_lines(prediction))
    return {k: float(scores[k].fmeasure) for k in ROUGE_TYPES}


def bootstrap_interval(values: Sequence[float], samples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``values``."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0 or samples < 1:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)  # (samples,)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def corpus_rouge(predictions: Sequence[str], references: Sequence[Sequence[str]], language: str = "en",
                 samples: int = 1000, seed: int = 0) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Mean ROUGE F1 per type with 95% intervals, and the per-example scores."""
    rouge = scorer(language)
    per = [score_example(p, r, rouge) for p, r in zip(predictions, references, strict=True)]
    out: dict[str, Any] = {}
    for key in ROUGE_TYPES:
        values = [s[key] for s in per]
        out[key] = float(np.mean(values)) if values else 0.0
        out[f"{key}_ci95"] = list(bootstrap_interval(values, samples, seed))
    return out, per


def bertscore(predictions: Sequence[str], references: Sequence[Sequence[str]], model: str, language: str = "en",
              rescale: bool = True, num_layers: int | None = None, batch_size: int = 16,
              device: str = "cpu") -> dict[str, Any]:
    """BERTScore P/R/F1 (best reference per example, by F1); baseline rescaling only where the library
    ships a baseline for ``language`` and ``model``."""
    import os

    import bert_score

    baseline = os.path.join(os.path.dirname(bert_score.__file__), "rescale_baseline", language, f"{model}.tsv")
    can_rescale = rescale and os.path.isfile(baseline)
    kwargs: dict[str, Any] = {"model_type": model, "lang": language, "rescale_with_baseline": can_rescale,
                              "batch_size": batch_size, "device": device}
    if num_layers is not None:
        kwargs["num_layers"] = num_layers
    scorer_ = bert_score.BERTScorer(**kwargs)
    tokenizer = scorer_._tokenizer
    if tokenizer.model_max_length > 1_000_000:  # a tokenizer saved without a limit (the tiny base's)
        tokenizer.model_max_length = getattr(scorer_._model.config, "max_position_embeddings", 512)
    # an empty summary has no token to match (bert_score fails on it): it scores 0
    scored = [i for i, p in enumerate(predictions) if scorer_._tokenizer.tokenize(p.strip())]
    flat_preds = [predictions[i] for i in scored for _ in references[i]]
    flat_refs = [r for i in scored for r in references[i]]
    precision, recall, f1 = (t.tolist() for t in scorer_.score(flat_preds, flat_refs)) if flat_preds else ([], [], [])
    best: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * len(predictions)
    j = 0
    for i in scored:
        n = len(references[i])
        best[i] = max(zip(precision[j:j + n], recall[j:j + n], f1[j:j + n], strict=True), key=lambda t: t[2])
        j += n
    return {"bertscore_precision": float(np.mean([b[0] for b in best])),
            "bertscore_recall": float(np.mean([b[1] for b in best])),
            "bertscore_f1": float(np.mean([b[2] for b in best])),
            "bertscore_model": model, "bertscore_rescaled": can_rescale,
            "per_example_f1": [b[2] for b in best]}
