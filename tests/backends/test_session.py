"""Provider choice, the asked-vs-got check and export opening in :mod:`dlhw.backends.session`.

Each test fixes what the machine looks like (torch's CUDA, ONNX Runtime's providers, the tensorrt
package) with monkeypatch, so the answers are the same on a laptop and on a GPU box.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from dlhw.backends import (
    BACKENDS,
    Backend,
    ExportHandle,
    choose_providers,
    open_export,
    open_session,
)
from dlhw.errors import ConfigError, DlhwError

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
W1 = np.array([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0]], dtype=np.float32)  # (2, 3)
W2 = np.array([[2.0], [-1.0], [4.0]], dtype=np.float32)  # (3, 1)


def _machine(monkeypatch: pytest.MonkeyPatch, *, cuda: bool, ort_providers: list[str], tensorrt: bool = False) -> None:
    """Make torch, ONNX Runtime and the tensorrt package look like ``cuda`` / ``ort_providers`` / ``tensorrt``."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(ort_providers))
    if not tensorrt:
        monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    """Two linear layers with a ReLU between them: y = relu(x @ W1) @ W2, batch dynamic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "two_linear", [x], [y],
                              [numpy_helper.from_array(W1, "w1"), numpy_helper.from_array(W2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every ONNX Runtime dlhw supports
    path = tmp_path / "two_linear.onnx"
    onnx.save(model, str(path))
    return path


def _export(root: Path, meta: dict[str, typing.Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "export.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def test_the_backend_type_and_its_tuple_name_the_same_three_backends():
    assert typing.get_args(Backend) == BACKENDS == ("torch", "onnxruntime", "tensorrt")


def test_importing_the_package_loads_neither_torch_nor_onnxruntime():
    code = "import sys, dlhw.backends; print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_cpu_and_auto_on_a_machine_without_cuda_choose_the_cpu_provider_only(monkeypatch, device):
    _machine(monkeypatch, cuda=False, ort_providers=[CPU])
    assert choose_providers("onnxruntime", device) == [CPU]


def test_cpu_stays_on_the_cpu_even_where_cuda_is_there(monkeypatch):
    _machine(monkeypatch, cuda=True, ort_providers=[CUDA, CPU])
    assert choose_providers("onnxruntime", "cpu") == [CPU]


@pytest.mark.parametrize(("device", "index"), [("auto", 0), ("cuda", 0), ("cuda:1", 1)])
def test_cuda_devices_choose_the_cuda_provider_on_that_gpu_then_the_cpu(monkeypatch, device, index):
    _machine(monkeypatch, cuda=True, ort_providers=[TRT, CUDA, CPU])
    assert choose_providers("onnxruntime", device) == [(CUDA, {"device_id": index}), CPU]


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_asked_for_on_a_machine_without_cuda_is_refused(monkeypatch, device):
    _machine(monkeypatch, cuda=False, ort_providers=[CPU])
    with pytest.raises(ConfigError) as err:
        choose_providers("onnxruntime", device)
    assert str(err.value) == (f"--device {device}: CUDA is not available on this machine "
                              "(torch.cuda.is_available() is False); use --device cpu or auto")


def test_a_gpu_with_the_cpu_onnxruntime_package_names_the_package_to_install(monkeypatch):
    _machine(monkeypatch, cuda=True, ort_providers=["AzureExecutionProvider", CPU])
    with pytest.raises(DlhwError) as err:
        choose_providers("onnxruntime", "auto")
    message = str(err.value)
    assert message.startswith("--device auto: this machine has a CUDA GPU but ONNX Runtime here has no "
                              "CUDAExecutionProvider (available: AzureExecutionProvider, CPUExecutionProvider)")
    assert "pip uninstall -y onnxruntime && pip install 'onnxruntime-gpu[cuda,cudnn]'" in message


@pytest.mark.parametrize(("backend", "device", "fragment"), [
    ("onnxruntime", "mps", "--device mps: ONNX Runtime runs on auto, cpu, cuda or cuda:N"),
    ("onnxruntime", "cuda:x", "--device cuda:x: ONNX Runtime runs on auto, cpu, cuda or cuda:N"),
    ("torch", "cpu", "--backend torch: ONNX Runtime sessions run on onnxruntime or tensorrt"),
])
def test_unknown_devices_and_the_torch_backend_are_config_errors(monkeypatch, backend, device, fragment):
    _machine(monkeypatch, cuda=False, ort_providers=[CPU])
    with pytest.raises(ConfigError, match="^" + fragment.replace("(", r"\(")):
        choose_providers(backend, device)


def test_tensorrt_without_a_gpu_names_everything_that_is_missing(monkeypatch, tmp_path):
    _machine(monkeypatch, cuda=False, ort_providers=[CPU])
    export = _export(tmp_path / "export", {"family": "ner", "tensorrt": {"fp16": False}})
    with pytest.raises(ConfigError) as err:
        choose_providers("tensorrt", "cuda", export, json.loads((export / "export.json").read_text()))
    assert str(err.value) == (
        "TensorRT is not available on this machine: it needs an NVIDIA GPU with CUDA "
        "(torch.cuda.is_available() is False); onnxruntime-gpu with the TensorRT execution provider "
        "(available providers: CPUExecutionProvider); the tensorrt Python package (pip install 'dlhw[gpu,tensorrt]'). "
        "Use --backend onnxruntime instead, or run on a CUDA machine (the dlhw Docker image has all of it).")


def test_tensorrt_is_checked_before_the_path_so_a_cpu_machine_fails_at_once(monkeypatch, tmp_path):
    _machine(monkeypatch, cuda=False, ort_providers=[CPU])
    with pytest.raises(ConfigError, match="^TensorRT is not available on this machine"):
        open_export(tmp_path / "no-such-export", "tensorrt", "auto")
    with pytest.raises(ConfigError, match="no ONNX export found"):
        open_export(tmp_path / "no-such-export", "onnxruntime", "auto")


def test_an_export_without_engines_says_how_to_build_them_when_tensorrt_is_there(monkeypatch, tmp_path):
    monkeypatch.setattr("dlhw.backends.tensorrt.tensorrt_missing", lambda: [])
    export = _export(tmp_path / "run" / "export" / "onnx", {"family": "ner", "files": {"model": "model.onnx"}})
    with pytest.raises(ConfigError) as err:
        open_export(tmp_path / "run", "tensorrt", "auto")
    assert str(err.value) == f"{export}: no TensorRT engines; build them with `dlhw export ... --tensorrt`"
    with pytest.raises(ConfigError) as err:
        choose_providers("tensorrt", "auto", export, {"family": "ner"})
    assert str(err.value) == f"{export}: no TensorRT engines; build them with `dlhw export ... --tensorrt`"


def test_an_export_with_engines_gets_the_tensorrt_providers_and_each_graph_its_profile(monkeypatch, tmp_path):
    monkeypatch.setattr("dlhw.backends.tensorrt.tensorrt_missing", lambda: [])
    profile = {"trt_profile_min_shapes": "pixel_values:1x3x8x8", "trt_profile_opt_shapes": "pixel_values:2x3x8x8",
               "trt_profile_max_shapes": "pixel_values:4x3x8x8"}
    export = _export(tmp_path / "exp", {"family": "caption", "tensorrt": {"fp16": True, "encoder": profile}})
    handle = open_export(export, "tensorrt", "cpu")  # TensorRT runs on the GPU whatever --device says
    assert isinstance(handle, ExportHandle) and handle.export_dir == export
    assert handle.meta["family"] == "caption"
    name, options = handle.providers[0]
    assert name == TRT and handle.providers[1:] == [CUDA, CPU]
    assert options["trt_engine_cache_path"] == str(export / "trt_cache") and options["trt_fp16_enable"] is True
    assert "trt_profile_min_shapes" not in options
    encoder = handle.providers_for("encoder")[0][1]
    assert encoder["trt_profile_max_shapes"] == "pixel_values:4x3x8x8" and encoder["trt_fp16_enable"] is True
    assert handle.providers_for("decoder_step") == handle.providers  # no profile of its own


def test_open_export_of_a_run_reads_its_export_and_chooses_the_cpu(monkeypatch, tmp_path):
    _machine(monkeypatch, cuda=False, ort_providers=[CPU])
    export = _export(tmp_path / "run" / "export" / "onnx", {"family": "ner", "files": {"model": "model.onnx"}})
    handle = open_export(tmp_path / "run", "onnxruntime", "auto")
    assert handle == ExportHandle(export, {"family": "ner", "files": {"model": "model.onnx"}}, [CPU])
    assert handle.providers_for("model") == [CPU]


def test_open_session_runs_on_the_cpu_and_computes_the_graph(tiny_onnx):
    session = open_session(tiny_onnx, [CPU], threads=1)
    assert session.get_providers() == [CPU]
    x = np.array([[1.0, 2.0], [-1.0, 0.5]], dtype=np.float32)  # (2, 2)
    (y,) = session.run(None, {"x": x})  # (2, 1)
    np.testing.assert_allclose(y, np.maximum(x @ W1, 0) @ W2, rtol=1e-6)
    assert y[:, 0].tolist() == [14.0, -1.5]  # relu(7, 0, -1.5) @ W2 and relu(0.5, 2.5, -1) @ W2


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_cuda_asked_but_a_cpu_only_onnxruntime_falls_back_is_refused_naming_the_package(monkeypatch, tiny_onnx):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    monkeypatch.setattr(ort.InferenceSession, "get_providers", lambda self: [CPU])
    with pytest.raises(DlhwError) as err:
        open_session(tiny_onnx, [(CUDA, {"device_id": 0}), CPU])
    message = str(err.value)
    assert message.startswith(f"{tiny_onnx}: ONNX Runtime was asked for CUDAExecutionProvider, CPUExecutionProvider "
                              "but the session got CPUExecutionProvider: this ONNX Runtime has no "
                              "CUDAExecutionProvider (available: CPUExecutionProvider)")
    assert "pip install 'onnxruntime-gpu[cuda,cudnn]'" in message


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_an_installed_provider_that_did_not_start_is_refused_naming_asked_and_got(monkeypatch, tiny_onnx):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, CUDA, CPU])
    monkeypatch.setattr(ort.InferenceSession, "get_providers", lambda self: [CPU])
    with pytest.raises(DlhwError) as err:
        open_session(tiny_onnx, [(TRT, {"trt_fp16_enable": False}), CUDA, CPU])
    assert str(err.value) == (
        f"{tiny_onnx}: ONNX Runtime was asked for TensorrtExecutionProvider, CUDAExecutionProvider, "
        "CPUExecutionProvider but the session got CPUExecutionProvider: the provider is installed but did "
        "not start; the ONNX Runtime log above says why (usually a CUDA, cuDNN or TensorRT library that is "
        "missing or of another version)")


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_the_first_provider_is_what_counts_cuda_got_with_tensorrt_missing_is_refused(monkeypatch, tiny_onnx):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort.InferenceSession, "get_providers", lambda self: [CUDA, CPU])
    with pytest.raises(DlhwError, match="asked for TensorrtExecutionProvider, CUDAExecutionProvider, "
                                        "CPUExecutionProvider but the session got CUDAExecutionProvider, "
                                        r"CPUExecutionProvider: this ONNX Runtime has no TensorrtExecutionProvider"
                                        r" \(available: CUDAExecutionProvider, CPUExecutionProvider\); install "
                                        r"onnxruntime-gpu with TensorRT \(pip install 'dlhw\[gpu,tensorrt\]'\)"):
        open_session(tiny_onnx, [(TRT, {}), CUDA, CPU])
    assert open_session(tiny_onnx, [CUDA, CPU]).get_providers() == [CUDA, CPU]  # what was asked for: accepted
