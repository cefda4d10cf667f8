from __future__ import annotations

import pytest

from dlhw.families.caption.metrics import bleu_scores, caption_metrics, cider_score

REFS = [[["a", "red", "circle", "in", "the", "top", "left"], ["there", "is", "a", "red", "circle"]],
        [["a", "blue", "square", "above", "a", "green", "triangle"]]]


def test_perfect_captions_score_one_and_wrong_ones_zero():
    perfect = bleu_scores(REFS, [REFS[0][0], REFS[1][0]])
    assert all(v == pytest.approx(1.0) for v in perfect.values())
    wrong = bleu_scores(REFS, [["dog"] * 7, ["cat"] * 7])
    assert wrong["bleu_1"] == 0.0 and wrong["bleu_4"] == 0.0


def test_bleu_uses_every_reference_of_an_image():
    # matches the second reference of image 0 exactly
    assert bleu_scores(REFS[:1], [REFS[0][1]])["bleu_4"] == pytest.approx(1.0)


def test_cider_ranks_better_captions_higher():
    good = cider_score(REFS, [REFS[0][0], REFS[1][0]])
    half = cider_score(REFS, [REFS[0][0], ["a", "dog"]])
    assert good > half > 0.0
    assert set(caption_metrics(REFS, [REFS[0][0], REFS[1][0]])) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider"}
