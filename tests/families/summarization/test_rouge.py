"""ROUGE for any script, Lsum vs L, multi-reference best-of, bootstrap intervals."""

from __future__ import annotations

import pytest

from dlhw.families.summarization.rouge import (
    UnicodeTokenizer,
    bootstrap_interval,
    corpus_rouge,
    score_example,
    scorer,
)


def test_persian_identical_scores_one_and_disjoint_scores_zero() -> None:
    rouge = scorer("fa")
    same = score_example("کتاب روی میز است", ["کتاب روی میز است"], rouge)
    assert same == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0, "rougeLsum": 1.0}
    other = score_example("کتاب روی میز است", ["باران در شهر بارید"], rouge)
    assert other == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "rougeLsum": 0.0}


def test_rouge_score_default_tokenizer_would_score_persian_zero() -> None:
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rouge1"]).score("کتاب روی میز", "کتاب روی میز")
    assert default["rouge1"].fmeasure == 0.0  # the trap this module avoids


def test_tokenizer_keeps_letters_and_digits_of_every_script_and_stems_english_only() -> None:
    assert UnicodeTokenizer(stem=False).tokenize("Привет, мир! ۱۲۳ 東京 e-mail") == ["привет", "мир", "۱۲۳", "東京", "e", "mail"]
    assert UnicodeTokenizer(stem=True).tokenize("running dogs") == ["run", "dog"]


def test_lsum_differs_from_l_on_reordered_sentences() -> None:
    scores = score_example("The cat sat on the mat. The dog ran home.", ["the dog ran home\nthe cat sat on the mat"],
                           scorer("en"))
    assert scores["rougeLsum"] == pytest.approx(1.0)
    assert scores["rougeL"] == pytest.approx(0.6)  # LCS "the cat sat on the mat": 6 of 10 words
    assert scores["rougeL"] != scores["rougeLsum"]


def test_multi_reference_takes_the_best_reference() -> None:
    rouge = scorer("en")
    best = score_example("a storm hit the coast", ["prices rose again", "a storm hit the coast"], rouge)
    assert best["rouge1"] == 1.0
    alone = score_example("a storm hit the coast", ["prices rose again"], rouge)
    assert alone["rouge1"] == 0.0


def test_corpus_rouge_means_and_bootstrap_interval() -> None:
    metrics, per = corpus_rouge(["a b", "c d"], [["a b"], ["x y"]], samples=500, seed=1)
    assert [p["rouge1"] for p in per] == [1.0, 0.0]
    assert metrics["rouge1"] == 0.5
    low, high = metrics["rouge1_ci95"]
    assert low == 0.0 and high == 1.0
    assert bootstrap_interval([0.3] * 20) == pytest.approx((0.3, 0.3))


def test_bertscore_best_reference_and_empty_prediction(tmp_path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "storm", "hit", "the", "coast", "prices", "rose"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    BertTokenizerFast(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path)
    from dlhw.families.summarization.rouge import bertscore

    out = bertscore(["a storm hit the coast", ""], [["prices rose", "a storm hit the coast"], ["the coast"]],
                    str(tmp_path), num_layers=2)
    assert out["per_example_f1"][0] == pytest.approx(1.0, abs=1e-5)  # the identical reference wins
    assert out["per_example_f1"][1] == 0.0
    assert out["bertscore_rescaled"] is False  # no baseline file for a local model
