"""Summarization export: tokens equal torch vs ONNX Runtime on the test prompts; int8 reports the ROUGE
change; ``dlhw summarize --backend onnxruntime`` gives the torch summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_sft_export_parity_int8_and_onnxruntime_batch(summarization_runs: dict[str, Path], tmp_path: Path) -> None:
    run = summarization_runs["sft"]
    code, out = run_cli("export", str(run), "--onnx", "--int8", "--out", str(tmp_path / "onnx"))
    assert code == 0, out
    meta = json.loads((tmp_path / "onnx" / "export.json").read_text(encoding="utf-8"))
    parity = meta["parity"]
    assert parity["equal_prompts"] == parity["prompts"] == 8 and parity["max_abs_diff"]["logits"] <= 1e-3
    assert "greedy tokens equal on 8/8 test documents" in out
    int8 = meta["int8"]
    assert "test ROUGE-L" in out and int8["rougeL_change"] == pytest.approx(
        int8["rouge_int8"]["rougeL"] - int8["rouge_fp32"]["rougeL"])
    assert int8["bytes_int8"] < int8["bytes_fp32"]

    docs = tmp_path / "docs"
    docs.mkdir()
    rows = [json.loads(line) for line in (run / "predictions_test.jsonl").read_text(encoding="utf-8").splitlines()][:6]
    (docs / "test.jsonl").write_text("".join(json.dumps({"article": r["document"]}) + "\n" for r in rows),
                                     encoding="utf-8")
    torch_out, ort_out = tmp_path / "torch.jsonl", tmp_path / "ort.jsonl"
    assert run_cli("summarize", str(docs), "--model", str(run), "--out", str(torch_out))[0] == 0
    code, out = run_cli("summarize", str(docs), "--model", str(tmp_path / "onnx"), "--backend", "onnxruntime",
                        "--out", str(ort_out))
    assert code == 0, out
    read = lambda p: [json.loads(line)["summary"] for line in p.read_text(encoding="utf-8").splitlines()]  # noqa: E731
    assert read(ort_out) == read(torch_out) == [r["prediction"] for r in rows]


def test_lora_export_merges_the_adapter(summarization_runs: dict[str, Path], tmp_path: Path) -> None:
    run = summarization_runs["lora"]
    code, out = run_cli("export", str(run), "--onnx", "--out", str(tmp_path / "onnx"))
    assert code == 0, out
    meta = json.loads((tmp_path / "onnx" / "export.json").read_text(encoding="utf-8"))
    assert meta["method"] == "lora" and meta["parity"]["equal_prompts"] == 8
    assert json.loads((tmp_path / "onnx" / "summarize.json").read_text(encoding="utf-8"))["kind"] == "dialogue"
