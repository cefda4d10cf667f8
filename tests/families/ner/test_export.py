"""NER export: ONNX parity (identical tags on the test split), int8 with its F1 change, the 1-point gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlhw.families.ner import export as ner_export_module
from dlhw.families.ner.infer import load_tagger
from tests.conftest import run_cli


@pytest.mark.slow
def test_export_tags_the_test_split_like_torch_and_reports_int8(ner_export):
    export_dir, output = ner_export
    meta = json.loads((export_dir / "export.json").read_text())
    assert meta["files"] == {"model": "model.onnx"} and meta["family"] == "ner"
    parity = meta["parity"]
    assert parity["identical_tag_sentences"] == parity["test_sentences"] == 300
    assert parity["max_abs_diff"]["logits"] <= 1e-3
    int8 = meta["int8"]
    assert (export_dir / "model.int8.onnx").is_file() and int8["bytes_int8"] < int8["bytes_fp32"]
    assert int8["f1_change_points"] >= -1.0
    assert abs(int8["f1_change_points"] - 100 * (int8["f1_int8"] - int8["f1_fp32"])) < 1e-9
    assert "tags equal on 300/300 test sentences" in output
    assert f"test entity F1 {int8['f1_fp32']:.4f} -> {int8['f1_int8']:.4f}" in output


@pytest.mark.slow
def test_onnx_runtime_accepts_other_batch_and_sequence_sizes(ner_run, ner_export):
    export_dir, _ = ner_export
    words = [["Nina", "Young", "visited", "Lima", "."], ["مینا"], ["Lima"] * 150]
    torch_tags = load_tagger(ner_run, "torch").tag(words)
    assert load_tagger(export_dir, "onnxruntime", batch_size=3).tag(words) == torch_tags


def _corrupting_quantizer(source: Path, target: Path) -> None:
    """Quantize a copy whose weight matrices had their rows shuffled: a planted bad quantization."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.ndim == 2 and array.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(rng.permutation(array), init.name))
    corrupted = target.with_name("corrupted.onnx")
    onnx.save(model, str(corrupted))
    REAL_QUANTIZER(corrupted, target)
    corrupted.unlink()


REAL_QUANTIZER = ner_export_module.quantize_weights


@pytest.mark.slow
def test_int8_gate_refuses_a_bad_quantization_and_force_keeps_it(ner_run, tmp_path, monkeypatch):
    monkeypatch.setattr(ner_export_module, "quantize_weights", _corrupting_quantizer)
    out = tmp_path / "exp"
    code, log = run_cli("export", str(ner_run), "--onnx", "--int8", "--out", str(out))
    assert code == 1
    assert "int8 refused: test entity F1 0." in log and "more than the 1-point limit" in log
    assert "model.int8.onnx was not written" in log and "--force" in log
    assert not out.exists() and not list(tmp_path.rglob("model.int8.onnx"))
    code, log = run_cli("export", str(ner_run), "--onnx", "--int8", "--force", "--out", str(out))
    assert code == 0, log
    meta = json.loads((out / "export.json").read_text())
    assert meta["int8"]["forced"] and meta["int8"]["f1_change_points"] < -1.0
    assert (out / "model.int8.onnx").is_file() and "kept by --force" in log


@pytest.mark.slow
def test_force_without_int8_is_a_usage_error(ner_run):
    code, log = run_cli("export", str(ner_run), "--onnx", "--force")
    assert code == 2 and "--force overrides the int8 quality gate; it goes with --int8" in log
