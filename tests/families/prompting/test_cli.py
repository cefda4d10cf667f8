"""`dlhw prompt bbh-sports` end to end on the tiny preset: files, accuracy, shots, reports, errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlhw.families.prompting.config import STRATEGIES
from tests.conftest import BBH_SAMPLES, run_cli

FIXTURES = Path(__file__).parent / "fixtures"


def _rows(run: Path, strategy: str) -> list[dict[str, str]]:
    with (run / "predictions" / f"{strategy}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_every_strategy_writes_its_csv_plots_and_report_and_the_best_reaches_075(bbh_run):
    evaluation = json.loads((bbh_run / "eval.json").read_text(encoding="utf-8"))
    results = evaluation["strategies"]
    assert list(results) == list(STRATEGIES)
    for strategy in STRATEGIES:
        rows = _rows(bbh_run, strategy)
        assert len(rows) == 250 and list(rows[0]) == ["input", "target", "prediction", "extracted", "raw_output", "votes"]
        correct = sum(r["prediction"] == r["target"] for r in rows)
        assert results[strategy]["accuracy"] == correct / 250
        assert results[strategy]["ci_low"] < results[strategy]["accuracy"] < results[strategy]["ci_high"]
        assert (bbh_run / "plots" / f"labels_{strategy}.png").stat().st_size > 1000
    accuracies = {s: r["accuracy"] for s, r in results.items()}
    assert max(accuracies.values()) >= 0.75, accuracies
    assert max(accuracies.values()) - min(accuracies.values()) >= 0.1, accuracies  # strategies differ
    assert evaluation["metrics"]["best_accuracy"] == max(accuracies.values())
    assert (bbh_run / "plots" / "accuracy.png").is_file()
    report = (bbh_run / "report.md").read_text(encoding="utf-8")
    assert "| cot |" in report and "![accuracy](plots/accuracy.png)" in report
    assert "recipe: bbh-sports" in (bbh_run / "config.yaml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_self_consistency_records_n_votes_per_item_and_counts_ties(bbh_run):
    rows = _rows(bbh_run, "cot-sc")
    votes = [json.loads(r["votes"]) for r in rows]
    assert all(v["yes"] + v["no"] + v["unknown"] == BBH_SAMPLES for v in votes)
    assert all(len(json.loads(r["raw_output"])) == BBH_SAMPLES and len(r["extracted"].split()) == BBH_SAMPLES for r in rows)
    result = json.loads((bbh_run / "eval.json").read_text(encoding="utf-8"))["strategies"]["cot-sc"]
    assert result["ties"] == sum(v["tie"] for v in votes)
    for r, v in zip(rows, votes, strict=True):
        if not v["tie"] and r["prediction"] != "unknown":
            assert v[r["prediction"]] > BBH_SAMPLES / 2 or v[r["prediction"]] == max(v["yes"], v["no"])


@pytest.mark.slow
def test_shots_are_written_and_identical_across_runs_with_the_same_seed(bbh_run, tmp_path):
    first = json.loads((bbh_run / "shots.json").read_text(encoding="utf-8"))
    assert len(first["shots"]) == 3 and first["seed"] == 42
    args = ["prompt", "bbh-sports", "--preset", "tiny", "--strategy", "few-shot", "--max-items", "8"]
    code, out = run_cli(*args, "--output-dir", str(tmp_path / "same"))
    assert code == 0, out
    assert json.loads((tmp_path / "same" / "shots.json").read_text(encoding="utf-8"))["shots"] == first["shots"]
    code, out = run_cli(*args, "--seed", "7", "--output-dir", str(tmp_path / "other"))
    assert code == 0, out
    assert json.loads((tmp_path / "other" / "shots.json").read_text(encoding="utf-8"))["shots"] != first["shots"]
    first_rows = _rows(bbh_run, "few-shot")[:8]
    assert [r["raw_output"] for r in _rows(tmp_path / "same", "few-shot")] == [r["raw_output"] for r in first_rows]


@pytest.mark.slow
def test_evaluate_rescores_and_report_compare_reads_prompt_runs(bbh_run, tmp_path):
    before = json.loads((bbh_run / "eval.json").read_text(encoding="utf-8"))["metrics"]
    code, out = run_cli("evaluate", str(bbh_run))
    assert code == 0, out
    assert json.loads((bbh_run / "eval.json").read_text(encoding="utf-8"))["metrics"] == before
    other = tmp_path / "cot-only"
    code, out = run_cli("prompt", "bbh-sports", "--preset", "tiny", "--model", str(bbh_run), "--strategy", "cot",
                        "--max-items", "20", "--output-dir", str(other))  # the model of another prompt run
    assert code == 0, out
    code, out = run_cli("report", "compare", str(bbh_run), str(other), "--out", str(tmp_path / "cmp"))
    assert code == 0, out
    table = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert "best accuracy" in table and "CoT + self-consistency" in table
    assert f"{before['accuracy_cot']:.4f}" in table
    assert (tmp_path / "cmp" / "plots" / "metrics.png").is_file()
    rows = _rows(other, "cot")
    assert [r["raw_output"] for r in rows] == [r["raw_output"] for r in _rows(bbh_run, "cot")[:20]]


@pytest.mark.slow
def test_local_bbh_files_run_and_the_planted_pool_items_are_reported(tmp_path):
    run = tmp_path / "local"
    code, out = run_cli("prompt", "bbh-sports", "--preset", "tiny", "--data-dir", str(FIXTURES), "--strategy",
                        "few-shot", "--strategy", "cot-few-shot", "--output-dir", str(run))
    assert code == 0, out
    summary = json.loads((run / "train_summary.json").read_text(encoding="utf-8"))
    assert (summary["data"]["test_items"], summary["data"]["pool_items"], summary["data"]["removed_from_pool"]) == (6, 6, 3)
    assert "**3 pool items were test items and were removed**" in (run / "report.md").read_text(encoding="utf-8")
    shots = json.loads((run / "shots.json").read_text(encoding="utf-8"))
    test_statements = {r["input"] for r in _rows(run, "few-shot")}
    assert len(shots["shots"]) == 3 and not {s["input"] for s in shots["shots"]} & test_statements
    assert shots["cot_exemplars"][0]["rationale"].startswith("Bam Adebayo is an American basketball player.")


def test_full_preset_offline_fails_fast_naming_model_datasets_and_the_ways_out(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlhw", "prompt", "bbh-sports", "--output-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 1, proc.stderr
    for needle in ("google/flan-t5-large", "lukaemon/bbh", "tasksource/bigbench", "--data-dir", "--preset tiny"):
        assert needle in proc.stderr, (needle, proc.stderr)
    assert "Traceback" not in proc.stderr and elapsed < 60
    assert not (tmp_path / "r").exists()


def test_an_unknown_strategy_is_a_usage_error():
    code, out = run_cli("prompt", "bbh-sports", "--preset", "tiny", "--strategy", "tree-of-thought")
    assert code == 2 and "'tree-of-thought' is not one of" in out
