"""Prompt runs export to ONNX (dlhw's seq2seq graphs) with a parity check; ONNX Runtime answers as torch does."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dlhw.backends.tensorrt import tensorrt_missing
from tests.conftest import run_cli


def _raw(run: Path, strategy: str) -> list[str]:
    with (run / "predictions" / f"{strategy}.csv").open(encoding="utf-8", newline="") as handle:
        return [row["raw_output"] for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_export_checks_parity_and_the_onnxruntime_backend_gives_the_torch_answers(bbh_run, tmp_path):
    code, out = run_cli("export", str(bbh_run), "--onnx")
    assert code == 0, out
    export = bbh_run / "export" / "onnx"
    meta = json.loads((export / "export.json").read_text(encoding="utf-8"))
    assert meta["files"] == {"encoder": "encoder_model.onnx", "decoder": "decoder_model.onnx"}
    import onnx

    encoder = onnx.load(str(export / "encoder_model.onnx"), load_external_data=False)
    decoder = onnx.load(str(export / "decoder_model.onnx"), load_external_data=False)
    layers = json.loads((export / "config.json").read_text())["num_decoder_layers"]
    cross = [f"cross.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    assert [o.name for o in encoder.graph.output] == ["last_hidden_state", *cross]  # projected once per prompt
    assert {i.name for i in decoder.graph.input} >= {"decoder_input_ids", *cross, "past_key_values.0.key"}
    assert meta["parity"]["max_abs_diff"]["logits"] < 1e-3 and "greedy tokens equal on 6/6 prompts" in out
    ort_run = tmp_path / "ort"
    code, out = run_cli("prompt", "bbh-sports", "--preset", "tiny", "--model", str(bbh_run), "--backend",
                        "onnxruntime", "--strategy", "cot", "--max-items", "20", "--output-dir", str(ort_run))
    assert code == 0, out
    assert _raw(ort_run, "cot") == _raw(bbh_run, "cot")[:20]
    assert json.loads((ort_run / "train_summary.json").read_text())["model"]["backend"] == "onnxruntime"
    code, out = run_cli("evaluate", str(ort_run))  # re-scores the saved outputs of an ONNX Runtime run too
    assert code == 0, out


@pytest.mark.skipif(not tensorrt_missing(), reason="TensorRT can run here")
def test_tensorrt_export_on_a_machine_without_it_exits_2_before_loading(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    (run / "config.yaml").write_text("recipe: bbh-sports\npreset: tiny\n", encoding="utf-8")
    code, out = run_cli("export", str(run), "--onnx", "--tensorrt")
    assert code == 2 and "TensorRT is not available on this machine" in out
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "model"]
