from __future__ import annotations

import json

from tests.conftest import run_cli


def test_env_prints_every_field_a_bug_report_needs():
    code, out = run_cli("env")
    assert code == 0
    for label in ("python", "torch", "torchvision", "transformers", "peft", "trl", "onnx",
                  "onnxruntime", "tensorrt", "ort providers", "cuda devices", "AVX2", "AVX-512", "VNNI",
                  "hf cache", "hf offline"):
        assert label in out, label
    import torch

    assert f"torch           {torch.__version__.split('+')[0]}" in out or torch.__version__ in out


def test_env_json_reports_offline_mode_and_versions(monkeypatch):
    code, out = run_cli("env", "--json")
    assert code == 0
    info = json.loads(out)
    major, minor = (int(part) for part in info["packages"]["transformers"].split(".")[:2])
    assert (major, minor) >= (5, 3)  # every release before 5.3.0 has CVE-2026-4372
    assert "optimum-onnx" not in info["packages"]
    assert isinstance(info["cpu"]["avx2"], bool) and info["cpu"]["cores"] >= 1
    assert info["hf_offline"] is True  # the test session runs with HF_HUB_OFFLINE=1


def test_env_names_the_onnxruntime_package_that_import_loads():
    from importlib import metadata

    import onnxruntime

    installed = [(d.metadata["Name"].lower(), d.version) for d in metadata.distributions()
                 if d.metadata["Name"].lower() in ("onnxruntime", "onnxruntime-gpu")]
    assert len(installed) == 1, f"this environment holds {installed or 'no ONNX Runtime'}"
    name, version = installed[0]
    code, out = run_cli("env", "--json")
    assert code == 0
    ort = json.loads(out)["onnxruntime"]
    assert (ort["package"], ort["version"]) == (name, version)
    assert ort["providers"] == onnxruntime.get_available_providers()
    assert "CPUExecutionProvider" in ort["providers"]
    code, text = run_cli("env")
    assert f"ort package     {name} {version}\n" in text


def test_env_warns_when_two_onnxruntime_packages_are_installed():
    from dlhw.cli.env_cmd import describe_onnxruntime

    line = describe_onnxruntime({"package": "onnxruntime-gpu", "version": "1.31.1", "providers": [],
                                 "installed": {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"}})
    assert line.startswith("onnxruntime-gpu 1.31.1; ALSO INSTALLED: onnxruntime 1.32.0 -- ")
    assert describe_onnxruntime({"package": None, "version": None, "providers": [], "installed": {}}) \
        == "not installed (pip install 'dlhw[cpu]' or 'dlhw[gpu]')"
