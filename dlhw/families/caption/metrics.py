"""Text-generation metrics: corpus BLEU-1..4 (nltk) and CIDEr-D (pycocoevalcap)."""

from __future__ import annotations

from collections.abc import Sequence

from nltk.translate.bleu_score import corpus_bleu


def bleu_scores(references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-1..4; each hypothesis is scored against all references of its image."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} reference sets for {len(hypotheses)} hypotheses")
    weights = {
        "bleu_1": (1.0, 0, 0, 0),
        "bleu_2": (0.5, 0.5, 0, 0),
        "bleu_3": (1 / 3, 1 / 3, 1 / 3, 0),
        "bleu_4": (0.25, 0.25, 0.25, 0.25),
    }
    refs = [[list(r) for r in rs] for rs in references]
    hyps = [list(h) for h in hypotheses]
    return {name: float(corpus_bleu(refs, hyps, weights=w)) for name, w in weights.items()}


def cider_score(references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]]) -> float:
    """CIDEr-D over the corpus (document frequencies from these references, as in coco-caption)."""
    from pycocoevalcap.cider.cider import Cider

    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(references)}
    res = {i: [" ".join(h)] for i, h in enumerate(hypotheses)}
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def caption_metrics(references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]]) -> dict[str, float]:
    return {**bleu_scores(references, hypotheses), "cider": cider_score(references, hypotheses)}
