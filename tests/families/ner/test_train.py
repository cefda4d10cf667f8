"""The ``ner`` recipe, tiny preset: learns the embedded task to the promised F1 on unseen names, offline;
the full preset fails within seconds offline, naming what to do."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import run_cli


@pytest.mark.slow
def test_tiny_ner_reaches_the_f1_targets_on_unseen_names(ner_run):
    result = json.loads((ner_run / "eval.json").read_text())
    m = result["metrics"]
    assert result["mode"] == "seqeval strict, IOB2" and result["split"] == "test"
    assert m["f1"] >= 0.85, m
    assert m["per_language"]["en"]["f1"] >= 0.80 and m["per_language"]["fa"]["f1"] >= 0.80, m["per_language"]
    assert result["untrained"]["f1"] < 0.10  # the same model before training
    assert m["o_share"] > 0.4 and m["accuracy"] > m["f1"] - 0.2
    assert set(m["per_type"]) == {"PER", "ORG", "LOC", "MISC", "DAT", "TIM", "MON", "PCT", "FAC", "PRO", "EVE"}


@pytest.mark.slow
def test_run_directory_holds_model_metrics_and_report(ner_run):
    names = {p.name for p in (ner_run / "model").iterdir()}
    assert {"config.json", "model.safetensors", "ner.json", "tokenizer.json"} <= names
    records = [json.loads(line) for line in (ner_run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval_f1" in r]
    assert len(evals) == 8 and evals[-1]["eval_f1"] > evals[0]["eval_f1"]
    summary = json.loads((ner_run / "train_summary.json").read_text())
    assert summary["train"]["best_metric_name"] == "validation f1"
    assert summary["model"]["layers"] == 3 and summary["model"]["labels"] == 23
    report = (ner_run / "report.md").read_text()
    assert "Token accuracy misleads here" in report and "| fa |" in report
    assert (ner_run / "plots" / "confusion_types.png").stat().st_size > 1000
    config = yaml.safe_load((ner_run / "config.yaml").read_text())
    assert config["model"]["name"] is None and config["data"]["source"] == "embedded"


@pytest.mark.slow
def test_evaluate_rescores_the_run(ner_run):
    before = json.loads((ner_run / "eval.json").read_text())["metrics"]["f1"]
    code, out = run_cli("evaluate", str(ner_run))
    assert code == 0, out
    assert json.loads((ner_run / "eval.json").read_text())["metrics"]["f1"] == before


def test_full_preset_offline_fails_within_seconds_naming_ids_data_dir_and_tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out = run_cli("train", "ner", "--output-dir", str(tmp_path / "run"))
    assert code == 1, out
    assert "eriktks/conll2003 and AliFartout/PEYMA-ARMAN-Mixed" in out
    assert "--data-dir" in out and "--preset tiny" in out
    assert not (tmp_path / "run").exists()
