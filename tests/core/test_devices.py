"""--dtype and --device resolved for inference, the one-line refusals, and the device line every batch
verb prints (dlhw.core.devices, dlhw.core.options)."""

from __future__ import annotations

import pytest
import torch

from dlhw.core.devices import inference_dtype, placement_line
from dlhw.core.options import check_dtype
from dlhw.errors import ConfigError
from tests.conftest import run_cli

CPU = torch.device("cpu")
no_cuda_here = pytest.mark.skipif(torch.cuda.is_available(), reason="what a machine without CUDA answers")


def test_auto_is_fp32_on_the_cpu_and_bf16_runs_there() -> None:
    assert inference_dtype("auto", CPU) is torch.float32
    assert inference_dtype("fp32", CPU) is torch.float32
    assert inference_dtype("bf16", CPU) is torch.bfloat16
    assert inference_dtype("bfloat16", CPU) is torch.bfloat16  # the config spelling (model.dtype) too


def test_fp16_on_the_cpu_and_an_unknown_dtype_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        inference_dtype("fp16", CPU)
    assert str(err.value) == "--dtype fp16 is for CUDA GPUs; on the CPU use --dtype bf16 or fp32"
    with pytest.raises(ConfigError, match=r"^--dtype fp8: use auto, fp32, bf16 or fp16$"):
        inference_dtype("fp8", CPU)


def test_dtype_other_than_auto_is_for_the_torch_backend_only() -> None:
    check_dtype("auto", "onnxruntime")
    check_dtype("bf16", "torch")
    with pytest.raises(ConfigError) as err:
        check_dtype("bf16", "onnxruntime")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("--dtype bf16 is for --backend torch; an ONNX export carries its own precision")
    assert "`dlhw export RUN --onnx --tensorrt --fp16`" in message and "`dlhw export RUN --onnx --int8`" in message


@no_cuda_here
def test_the_device_line_names_backend_device_why_and_dtype_on_the_cpu() -> None:
    assert placement_line("torch", "auto") == "torch on cpu (auto: no CUDA GPU visible), float32"
    assert placement_line("torch", "cpu", "bf16") == "torch on cpu, bfloat16"
    assert placement_line("onnxruntime", "auto", providers=["CPUExecutionProvider"]) == \
        "onnxruntime on cpu (auto: no CUDA GPU visible), providers CPUExecutionProvider"
    with pytest.raises(ConfigError) as err:
        placement_line("torch", "cuda")
    assert str(err.value) == ("--device cuda: CUDA is not available on this machine (torch sees no GPU); "
                              "use --device auto or cpu")
    with pytest.raises(ConfigError, match="fp16 is for CUDA GPUs"):
        placement_line("torch", "cpu", "fp16")


@pytest.mark.gpu
def test_the_device_line_on_a_cuda_gpu() -> None:
    name = torch.cuda.get_device_name(0)
    auto = "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    assert placement_line("torch", "auto") == f"torch on cuda:0 ({name}; auto: a CUDA GPU is visible), {auto}"
    assert placement_line("torch", "cuda:0", "fp16") == f"torch on cuda:0 ({name}), float16"
    assert placement_line("onnxruntime", "cuda", providers=[("CUDAExecutionProvider", {"device_id": 0}),
                                                            "CPUExecutionProvider"]) == \
        f"onnxruntime on cuda:0 ({name}), providers CUDAExecutionProvider, CPUExecutionProvider"


@pytest.mark.parametrize("verb", [("caption",), ("chat",), ("ner",), ("summarize",), ("tts",),
                                  ("prompt", "bbh-sports")])
def test_every_torch_inference_verb_takes_dtype(verb: tuple[str, ...]) -> None:
    code, out = run_cli(*verb, "--help")
    assert code == 0, out
    assert "--dtype [auto|fp32|bf16|fp16]" in out
