from __future__ import annotations

import json

from tests.conftest import run_cli


def test_env_prints_every_field_a_bug_report_needs():
    code, out = run_cli("env")
    assert code == 0
    for label in ("python", "torch", "torchvision", "transformers", "peft", "trl", "optimum-onnx",
                  "onnxruntime", "tensorrt", "ort providers", "cuda devices", "AVX2", "AVX-512", "VNNI",
                  "hf cache", "hf offline"):
        assert label in out, label
    import torch

    assert f"torch           {torch.__version__.split('+')[0]}" in out or torch.__version__ in out


def test_env_json_reports_offline_mode_and_versions(monkeypatch):
    code, out = run_cli("env", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["packages"]["transformers"].startswith("4.")
    assert isinstance(info["cpu"]["avx2"], bool) and info["cpu"]["cores"] >= 1
    assert info["hf_offline"] is True  # the test session runs with HF_HUB_OFFLINE=1
