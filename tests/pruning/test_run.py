"""`dlhw prune` on runs of any family, and `dlhw train --init-from` keeping the zeros."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from dlhw.core.runs import model_files
from tests.conftest import run_cli


def _weights(run_dir, names):
    found = {}
    for path in model_files(run_dir):
        for key, tensor in load_file(str(path)).items():
            for name in names:
                if key == f"{name}.weight" or key.endswith(f".{name}.weight"):
                    found[name] = tensor
    return found


@pytest.mark.slow
def test_a_caption_run_pruned_per_layer_has_30_percent_zeros_in_every_module_and_evaluates(trained_runs, tmp_path):
    parent = trained_runs["rnn"]
    out = tmp_path / "pruned"
    code, log = run_cli("prune", str(parent), "--amount", "0.3", "--scope", "layer", "--output-dir", str(out))
    assert code == 0, log
    summary = json.loads((out / "sparsity.json").read_text())
    assert summary["layers"] and summary["parent"] == str(parent.resolve())
    weights = _weights(out, summary["modules"])
    assert set(weights) == set(summary["modules"])
    for row in summary["layers"]:
        zeros = int((weights[row["name"]] == 0).sum())
        assert zeros == row["zeros"] and abs(zeros - 0.3 * row["total"]) <= 1
    for path in model_files(out):
        assert not [k for k in load_file(str(path)) if k.endswith(("weight_orig", "weight_mask"))]
    assert (out / "plots" / "sparsity.png").stat().st_size > 5000
    assert "| **all pruned modules** |" in (out / "sparsity.md").read_text()
    assert "gzip" in (out / "report.md").read_text()
    assert not (out / "checkpoints").exists() and not (out / "eval.json").exists()
    code, log = run_cli("evaluate", str(out))
    assert code == 0, log
    pruned_bleu = json.loads((out / "eval.json").read_text())["metrics"]["bleu_4"]
    dense_bleu = json.loads((parent / "eval.json").read_text())["metrics"]["bleu_4"]
    assert pruned_bleu != dense_bleu  # the pruned weights are the ones evaluated


@pytest.mark.slow
def test_a_pruned_chat_run_evaluates_and_retraining_from_it_keeps_every_zero(chat_runs, tmp_path):
    parent = chat_runs["partial"]
    pruned = tmp_path / "pruned"
    code, log = run_cli("prune", str(parent), "--amount", "0.3", "--scope", "global", "--output-dir", str(pruned))
    assert code == 0, log
    summary = json.loads((pruned / "sparsity.json").read_text())
    rates = {row["sparsity"] for row in summary["layers"]}
    assert summary["pruned_modules"]["sparsity"] == pytest.approx(0.3, abs=1e-4) and len(rates) > 1
    code, log = run_cli("evaluate", str(pruned))
    assert code == 0, log
    assert json.loads((pruned / "eval.json").read_text())["metrics"]["perplexity"] > 0
    again = tmp_path / "again"
    code, log = run_cli("train", "chat-partial", "--preset", "tiny", "--init-from", str(pruned),
                        "--output-dir", str(again), "--set", "train.max_steps=6")
    assert code == 0, log
    before, after = _weights(pruned, summary["modules"]), _weights(again, summary["modules"])
    changed = 0
    for name, weight in before.items():
        assert torch.equal(after[name] == 0, weight == 0), name  # exactly the same positions
        changed += int(not torch.equal(after[name], weight))
    assert changed > 0  # the trained layers moved, their zeros did not
    record = json.loads((again / "sparsity.json").read_text())
    assert record["init_from"] == str(pruned.resolve())
    assert record["pruned_modules"]["zeros"] == summary["pruned_modules"]["zeros"]


@pytest.mark.slow
def test_wanda_on_a_family_without_calibration_data_says_to_use_l1(trained_runs, tmp_path):
    code, log = run_cli("prune", str(trained_runs["rnn"]), "--method", "wanda", "--output-dir", str(tmp_path / "w"))
    assert code == 2 and "has no calibration data; use --method l1" in log
    assert not (tmp_path / "w").exists()


def _rouge_l(run_dir):
    return json.loads((run_dir / "eval.json").read_text())["metrics"]["rougeL"]


@pytest.mark.slow
def test_a_summarization_run_pruned_30_percent_per_layer_and_globally(summarization_runs, tmp_path):

    parent = summarization_runs["sft"]
    rates = {}
    for scope in ("layer", "global"):
        out = tmp_path / scope
        code, log = run_cli("prune", str(parent), "--amount", "0.3", "--scope", scope, "--output-dir", str(out))
        assert code == 0, log
        summary = json.loads((out / "sparsity.json").read_text())
        wanted = 0.3 * summary["pruned_modules"]["total"]  # per layer: each layer rounds on its own
        assert abs(summary["pruned_modules"]["zeros"] - wanted) <= (1 if scope == "global" else len(summary["layers"]))
        assert "lm_head" not in " ".join(summary["modules"]) and len(summary["modules"]) >= 7
        weights = _weights(out, summary["modules"])
        rates[scope] = {row["name"]: int((weights[row["name"]] == 0).sum()) / row["total"] for row in summary["layers"]}
        for path in model_files(out):
            assert not [k for k in load_file(str(path)) if k.endswith(("weight_orig", "weight_mask"))]
        assert (out / "plots" / "sparsity.png").is_file() and (out / "sparsity.md").is_file()
    totals = {row["name"]: row["total"] for row in summary["layers"]}
    for name, rate in rates["layer"].items():
        assert abs(rate - 0.3) * totals[name] <= 1, (name, rate)  # every layer: 30% of its weights, +-1
    assert max(rates["global"].values()) - min(rates["global"].values()) > 0.05  # layers differ


@pytest.mark.slow
def test_retraining_a_pruned_summarizer_keeps_its_zeros_and_recovers_rouge(summarization_runs, tmp_path):

    parent = summarization_runs["sft"]
    pruned, again = tmp_path / "pruned", tmp_path / "again"
    code, log = run_cli("prune", str(parent), "--amount", "0.75", "--scope", "global", "--output-dir", str(pruned))
    assert code == 0, log
    code, log = run_cli("evaluate", str(pruned))
    assert code == 0, log
    dense, cut = _rouge_l(parent), _rouge_l(pruned)
    assert dense - cut > 0.1  # a drop worth recovering from
    code, log = run_cli("train", "summarize-sft", "--preset", "tiny", "--init-from", str(pruned),
                        "--output-dir", str(again), "--set", "train.epochs=2")
    assert code == 0, log
    summary = json.loads((pruned / "sparsity.json").read_text())
    before, after = _weights(pruned, summary["modules"]), _weights(again, summary["modules"])
    for name, weight in before.items():
        assert torch.equal(after[name] == 0, weight == 0), name
    recovered = _rouge_l(again)
    assert recovered - cut >= 0.5 * (dense - cut), (dense, cut, recovered)
    out = tmp_path / "compare"
    code, log = run_cli("report", "compare", str(parent), str(pruned), str(again), "--out", str(out))
    assert code == 0, log
    text = (out / "compare.md").read_text()
    assert "pruned l1 global 75%" in text and "re-fine-tuned from pruned" in text and "| 75.0% |" in text
