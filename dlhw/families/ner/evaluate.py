"""NER evaluation: seqeval precision, recall and F1 in strict IOB2 mode, and token accuracy.

seqeval's default mode is lenient (it accepts an entity that starts with ``I-`` and guesses
boundaries); dlhw always scores with ``mode="strict", scheme=IOB2``: an entity counts only when
its type and both boundaries match exactly. Token accuracy is reported too, with the share of
``O`` tokens beside it: in NER most tokens are ``O``, so a model that tags nothing scores a high
accuracy and an F1 of zero.

:func:`make_compute_metrics` is the engine's ``compute_metrics`` (validation F1 picks the best
checkpoint); :func:`evaluate_ner_run` scores a run's test split with the batch tagger (long
sentences windowed, never truncated) and writes ``eval.json``, ``predictions_test.jsonl`` and the
per-type confusion matrix.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dlhw.core.atomic import write_json_atomic, write_jsonl_atomic
from dlhw.core.runs import RunFiles, read_json
from dlhw.errors import ConfigError
from dlhw.families.ner.data import LABELS, TYPES, NerSplits, Sentence
from dlhw.families.ner.infer import Tagger

logger = logging.getLogger(__name__)


def entity_scores(true: list[list[str]], pred: list[list[str]]) -> dict[str, Any]:
    """Strict IOB2 entity precision / recall / F1 (micro over types) and the same per type."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    kw: dict[str, Any] = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    out: dict[str, Any] = {
        "precision": float(precision_score(true, pred, **kw)),
        "recall": float(recall_score(true, pred, **kw)),
        "f1": float(f1_score(true, pred, **kw)),
    }
    report = classification_report(true, pred, output_dict=True, **kw) if any(t != "O" for s in true for t in s) else {}
    out["per_type"] = {k: {"precision": float(v["precision"]), "recall": float(v["recall"]),
                           "f1": float(v["f1-score"]), "support": int(v["support"])}
                       for k, v in report.items() if k in TYPES}
    return out


def token_accuracy(true: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    pairs = [(t, p) for ts, ps in zip(true, pred, strict=True) for t, p in zip(ts, ps, strict=True)]
    n = max(len(pairs), 1)
    return {"accuracy": sum(t == p for t, p in pairs) / n, "o_share": sum(t == "O" for t, _ in pairs) / n}


def make_compute_metrics() -> Any:
    """``compute_metrics`` over argmax ids (``preprocess_logits_for_metrics`` = :func:`argmax_logits`)."""

    def compute(prediction: Any) -> dict[str, float]:
        preds, labels = np.asarray(prediction.predictions), np.asarray(prediction.label_ids)
        true, pred = [], []
        for p_row, l_row in zip(preds, labels, strict=True):
            keep = l_row != -100
            true.append([LABELS[i] for i in l_row[keep]])
            pred.append([LABELS[i] for i in p_row[keep]])
        scores = entity_scores(true, pred)
        return {"precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
                "accuracy": token_accuracy(true, pred)["accuracy"]}

    return compute


def argmax_logits(logits: Any, labels: Any) -> Any:
    """Keep only the argmax during evaluation (the logits of a whole split need not be held)."""
    if isinstance(logits, tuple | list):
        logits = logits[0]
    return logits.argmax(-1)


def score_sentences(tagger: Tagger, sentences: list[Sentence]) -> tuple[dict[str, Any], list[list[str]]]:
    """Metrics (overall, per type, per language, token accuracy) of ``tagger`` on ``sentences``."""
    pred = tagger.tag([s.tokens for s in sentences])
    true = [s.tags for s in sentences]
    metrics: dict[str, Any] = {**entity_scores(true, pred), **token_accuracy(true, pred)}
    by_lang: dict[str, Any] = {}
    for lang in sorted({s.lang for s in sentences}):
        idx = [i for i, s in enumerate(sentences) if s.lang == lang]
        scores = entity_scores([true[i] for i in idx], [pred[i] for i in idx])
        by_lang[lang] = {k: scores[k] for k in ("precision", "recall", "f1")} | {"sentences": len(idx)}
    metrics["per_language"] = by_lang
    metrics["sentences"] = len(sentences)
    metrics["tokens"] = sum(len(s.tokens) for s in sentences)
    return metrics, pred


def type_confusion(true: list[list[str]], pred: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """Token-level confusion of entity types (B-/I- merged, O included): rows true, columns predicted."""
    kinds = ["O", *TYPES]
    matrix = np.zeros((len(kinds), len(kinds)), dtype=np.int64)
    for ts, ps in zip(true, pred, strict=True):
        for t, p in zip(ts, ps, strict=True):
            matrix[kinds.index(t[2:] if t != "O" else "O"), kinds.index(p[2:] if p != "O" else "O")] += 1
    used = [i for i in range(len(kinds)) if matrix[i].sum() or matrix[:, i].sum()]
    return [kinds[i] for i in used], matrix[np.ix_(used, used)]


def evaluate_sentences(run_dir: Path, tagger: Tagger, splits: NerSplits, split: str = "test",
                       backend: str = "torch") -> dict[str, Any]:
    """Score one split; write eval.json, predictions_<split>.jsonl and plots/confusion_types.png."""
    from dlhw.families.ner.report import confusion_png

    sentences = getattr(splits, split)
    metrics, pred = score_sentences(tagger, sentences)
    kinds, matrix = type_confusion([s.tags for s in sentences], pred)
    files = RunFiles(run_dir)
    plot = confusion_png(kinds, matrix, files.plot("confusion_types.png"))
    write_jsonl_atomic(files.predictions(split), ({"tokens": s.tokens, "tags": s.tags, "predicted": p, "lang": s.lang}
                                                  for s, p in zip(sentences, pred, strict=True)))
    base = read_json(files.base_eval)
    result = {"split": split, "backend": backend, "mode": "seqeval strict, IOB2", "metrics": metrics,
              "untrained": base.get("metrics", {}), "label_counts": dict(Counter(t for s in sentences for t in s.tags)),
              "plots": {"confusion of entity types": str(plot.relative_to(run_dir))}}
    write_json_atomic(files.eval, result)
    langs = ", ".join(f"{k} {v['f1']:.3f}" for k, v in metrics["per_language"].items())
    logger.info(f"{split}: entity F1 {metrics['f1']:.4f} (P {metrics['precision']:.4f}, R {metrics['recall']:.4f}; {langs}); "
                f"token accuracy {metrics['accuracy']:.4f} with {metrics['o_share']:.1%} O tokens")
    return result


def evaluate_ner_run(run_dir: Path, split: str | None = "test", batch_size: int | None = None, device: str | None = None,
                     backend: str = "torch") -> dict[str, Any]:
    """``dlhw evaluate RUN`` for NER runs: re-read the run's data, tag the split, score it."""
    from dlhw.core.registry import resolve_config
    from dlhw.families.ner.config import NerConfig
    from dlhw.families.ner.data import prepare_ner_data
    from dlhw.families.ner.infer import load_tagger
    from dlhw.reports.run_report import write_run_report

    run_dir = Path(run_dir)
    config: NerConfig = resolve_config(config_file=RunFiles(run_dir).config,
                                       preset=str(_saved_preset(run_dir)))
    split = split or "test"
    if split not in ("train", "val", "test"):
        raise ConfigError(f"--split {split}: use train, val or test")
    splits = prepare_ner_data(config.data, config.seed)
    tagger = load_tagger(run_dir, backend, device or "cpu", batch_size or config.eval.batch_size)  # type: ignore[arg-type]
    result = evaluate_sentences(run_dir, tagger, splits, split, backend)
    write_run_report(run_dir)
    return result


def _saved_preset(run_dir: Path) -> str:
    from dlhw.config import load_yaml

    return str(load_yaml(RunFiles(run_dir).config).get("preset", "full"))
