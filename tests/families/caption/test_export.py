"""Export the three tiny caption runs to ONNX and run them through ONNX Runtime (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from dlhw.families.caption.scenes import make_scenes
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
ARCHS = ["rnn", "attention", "transformer"]


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    for scene in make_scenes(40, seed=123):  # scenes the models never saw
        scene.render(96).save(folder / f"{scene.image_id}.png")
    return folder


def _captions(path) -> dict[str, str]:
    return {r["path"]: r["caption"] for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.parametrize("arch", ARCHS)
def test_export_passes_parity_and_ort_captions_match_torch(trained_runs, scene_folder, tmp_path, arch):
    run = trained_runs[arch]
    code, out = run_cli("export", str(run), "--onnx")
    assert code == 0, out
    export = run / "export" / "onnx"
    meta = json.loads((export / "export.json").read_text())
    assert {"encoder.onnx", "decoder_step.onnx", "vocab.json", "export.json"} <= {p.name for p in export.iterdir()}
    assert meta["parity"]["greedy_tokens_equal"] and max(meta["parity"]["max_abs_diff"].values()) <= 1e-3
    assert meta["spec"]["image_size"] == 96 and meta["preprocessing"]["mean"] == [0.485, 0.456, 0.406]

    results = {}
    for backend, model in (("torch", run), ("onnxruntime", export)):
        out_file = tmp_path / f"{backend}.jsonl"
        code, out = run_cli("caption", str(scene_folder), "--model", str(model), "--backend", backend,
                            "--batch-size", "16", "--out", str(out_file), "--num-workers", "0")
        assert code == 0, out
        results[backend] = _captions(out_file)
    assert len(results["torch"]) == 40 and results["torch"].keys() == results["onnxruntime"].keys()
    differ = [k for k in results["torch"] if results["torch"][k] != results["onnxruntime"][k]]
    assert not differ, f"the export promises equal greedy tokens; {len(differ)}/40 captions differ"

    torch_bleu = json.loads((run / "eval.json").read_text())
    if torch_bleu["split"] != "test" or torch_bleu["beam_size"] != 1:
        run_cli("evaluate", str(run))
        torch_bleu = json.loads((run / "eval.json").read_text())
    code, out = run_cli("evaluate", str(run), "--backend", "onnxruntime")
    assert code == 0, out
    ort_eval = json.loads((run / "eval.json").read_text())
    assert ort_eval["backend"] == "onnxruntime"
    assert abs(ort_eval["metrics"]["bleu_4"] - torch_bleu["metrics"]["bleu_4"]) * 100 <= 0.5


def test_export_beyond_tolerance_fails_with_the_difference_and_leaves_nothing(trained_runs, tmp_path):
    run = trained_runs["rnn"]
    target = tmp_path / "export"
    proc = subprocess.run([sys.executable, "-m", "dlhw", "export", str(run), "--onnx", "--atol", "1e-12",
                           "--out", str(target)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "differs from torch by" in proc.stderr and "tolerance 1e-12" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no export, no partial directory


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only failure")
@pytest.mark.parametrize("args", [["export", "{run}", "--onnx", "--tensorrt"],
                                  ["caption", "{folder}", "--model", "{run}", "--backend", "tensorrt",
                                   "--out", "{out}"]])
def test_tensorrt_without_a_gpu_fails_fast_and_says_why(trained_runs, scene_folder, tmp_path, args):
    run = trained_runs["rnn"]
    argv = [a.format(run=run, folder=scene_folder, out=tmp_path / "o.jsonl") for a in args]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlhw", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert time.perf_counter() - start < 30
    assert "TensorRT is not available" in proc.stderr and "NVIDIA GPU" in proc.stderr
    assert "--backend onnxruntime" in proc.stderr
    assert not (tmp_path / "o.jsonl").exists() or (tmp_path / "o.jsonl").read_text() == ""


@pytest.mark.gpu
def test_tensorrt_engines_are_built_cached_and_used(trained_runs, scene_folder, tmp_path):
    from dlhw.backends.tensorrt import tensorrt_missing

    if tensorrt_missing():
        pytest.skip("; ".join(tensorrt_missing()))
    run = trained_runs["transformer"]
    code, out = run_cli("export", str(run), "--onnx", "--tensorrt", "--max-batch", "8")
    assert code == 0, out
    export = run / "export" / "onnx"
    assert any((export / "trt_cache").iterdir())
    out_file = tmp_path / "trt.jsonl"
    code, out = run_cli("caption", str(scene_folder), "--model", str(export), "--backend", "tensorrt",
                        "--batch-size", "8", "--out", str(out_file), "--device", "cuda")
    assert code == 0, out
    assert len(_captions(out_file)) == 40
