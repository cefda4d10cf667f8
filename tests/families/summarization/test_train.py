"""Tiny summarization recipes end to end: SFT and LoRA reach ROUGE-L >= 0.5; the zero-shot base stays
below 0.2 and three examples lift it; few-shot examples come from train only; one comparison of all four."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlhw.config import from_dict
from dlhw.core.runs import run_config_dict
from dlhw.families.summarization.config import SummarizationConfig
from dlhw.families.summarization.data import prepare_summaries
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def _eval(run_dir: Path) -> dict:
    return json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))


def test_sft_learns_to_summarize_the_embedded_articles(summarization_runs: dict[str, Path]) -> None:
    run = summarization_runs["sft"]
    result = _eval(run)
    m = result["metrics"]
    assert m["rougeL"] >= 0.5, m
    assert m["rougeL_ci95"][0] <= m["rougeL"] <= m["rougeL_ci95"][1]
    assert result["base"]["rougeL"] < 0.2  # the base model, zero-shot, before training
    assert 0 < m["bertscore_f1"] <= 1 and m["bertscore_comparable"] is False
    rows = [json.loads(line) for line in (run / "predictions_test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == result["examples"] == 60
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_f1", "prediction", "references"} <= set(rows[0])
    stats = json.loads((run / "data_stats.json").read_text(encoding="utf-8"))
    assert stats["limits"]["max_input_tokens"] == stats["lengths"]["document_tokens"]["p95"]
    assert (run / "plots" / "lengths.png").stat().st_size > 0
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "### Examples" in report and "not comparable" in report
    summary = json.loads((run / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["model"]["trainable_percent"] == 100.0


def test_lora_learns_dialogue_summaries_with_frozen_base(summarization_runs: dict[str, Path]) -> None:
    run = summarization_runs["lora"]
    result = _eval(run)
    assert result["metrics"]["rougeL"] >= 0.5, result["metrics"]
    assert result["references_per_example"] == {"min": 2, "max": 3}
    summary = json.loads((run / "train_summary.json").read_text(encoding="utf-8"))
    check = summary["frozen_check"]
    assert check["identical"] == check["frozen_tensors"] > 0 and check["changed"] == check["trainable_tensors"] > 0
    config = from_dict(SummarizationConfig, run_config_dict(run))
    assert (config.method.r, config.method.alpha, config.method.target_modules) == (16, 64, ["q_proj", "v_proj"])
    assert (run / "model" / "adapter_config.json").is_file()


def test_prompting_baselines_and_few_shot_examples_from_train(summarization_runs: dict[str, Path]) -> None:
    zero = _eval(summarization_runs["zero-shot"])["metrics"]
    three_run = summarization_runs["3-shot"]
    three = _eval(three_run)["metrics"]
    assert zero["rougeL"] < 0.2
    summary = json.loads((three_run / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["label"] == "3-shot" and summary["shots_dropped"] == 0  # all three fit the 768-token context
    # three examples steer the base from its zero-shot guess (same documents, same greedy decoding)
    assert three["rougeL"] > zero["rougeL"] + 0.2, (zero["rougeL"], three["rougeL"])
    shots = [json.loads(line) for line in (three_run / "shots.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(shots) == 3
    config = from_dict(SummarizationConfig, run_config_dict(three_run))
    assert config.recipe == "summarize-sft" and config.prompting.shots == 3
    splits = prepare_summaries(config.data, config.seed)
    train_ids, held_out = {e.id for e in splits.train}, {e.id for e in splits.test + splits.val}
    assert {s["id"] for s in shots} <= train_ids and not {s["id"] for s in shots} & held_out
    assert all(s["summary"] == next(e for e in splits.train if e.id == s["id"]).references[0] for s in shots)


def test_report_compare_over_prompting_sft_and_lora(summarization_runs: dict[str, Path], tmp_path: Path) -> None:
    runs = [summarization_runs[n] for n in ("zero-shot", "3-shot", "sft", "lora")]
    code, out = run_cli("report", "compare", *map(str, runs), "--out", str(tmp_path))
    assert code == 0, out
    table = (tmp_path / "compare.md").read_text(encoding="utf-8")
    assert "ROUGE-L" in table and "BERTScore F1" in table
    for label in ("zero-shot", "3-shot", "SFT (full)", "LoRA r16"):
        assert f"| {label} |" in table
    base = _eval(runs[2])["base"]  # two bases (articles, dialogues): each named with its own numbers
    assert (f"Base model of SFT (full) (no fine-tuning): ROUGE-1 {base['rouge1']:.4f}, ROUGE-2 {base['rouge2']:.4f}, "
            f"ROUGE-L {base['rougeL']:.4f}") in table
    assert "Base model of LoRA r16 (no fine-tuning)" in table and "| zero-shot |  |  | 0 | 0.000 |  |  |  |" in table
    rows = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))
    assert [r["metrics"]["rougeL"] for r in rows] == [_eval(r)["metrics"]["rougeL"] for r in runs]
    assert (tmp_path / "plots" / "metrics.png").stat().st_size > 0
