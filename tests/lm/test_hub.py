"""k-bit loading: where the model goes under torchrun, and the one error for 4-bit and 8-bit."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
import torch

from dlhw.errors import ConfigError, DlhwError
from dlhw.lm import hub


class _Recorder:
    """Stands in for an auto class / AutoTokenizer: records what ``from_pretrained`` was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def from_pretrained(self, name: str, **kwargs: Any) -> Any:
        self.calls.append((name, kwargs))
        return types.SimpleNamespace(pad_token="<pad>", eos_token="</s>")


@pytest.fixture
def fake_loading(monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    """No Hub, no GPU: from_pretrained records its arguments; bitsandbytes and k-bit preparation are
    stand-ins, so what is checked is the arguments dlhw passes."""
    import peft
    import transformers

    models = _Recorder()
    monkeypatch.setattr(hub, "auto_class", lambda task: models)
    monkeypatch.setattr(transformers, "AutoTokenizer", _Recorder())
    monkeypatch.setitem(sys.modules, "bitsandbytes", types.ModuleType("bitsandbytes"))
    monkeypatch.setattr(peft, "prepare_model_for_kbit_training", lambda model, **_: model)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return models


@pytest.mark.parametrize("quantization", ["nf4", "int8"])
def test_kbit_model_loads_on_the_local_rank_gpu(fake_loading: _Recorder, monkeypatch: pytest.MonkeyPatch,
                                                quantization: str) -> None:
    # torchrun's second process on a node: LOCAL_RANK=1, the device the config named is plain "cuda"
    monkeypatch.setenv("LOCAL_RANK", "1")
    hub.load_hub_model("org/model", "causal-lm", torch.device("cuda"), quantization=quantization)
    (_, kwargs), = fake_loading.calls
    assert kwargs["device_map"] == {"": 1}
    config = kwargs["quantization_config"]
    assert (config.load_in_4bit, config.load_in_8bit) == ((True, False) if quantization == "nf4" else (False, True))


def test_kbit_model_without_torchrun_loads_on_the_named_gpu(fake_loading: _Recorder,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    hub.load_hub_model("org/model", "causal-lm", torch.device("cuda", 3), quantization="nf4")
    assert fake_loading.calls[0][1]["device_map"] == {"": 3}


@pytest.mark.parametrize(("quantization", "bits"), [("nf4", "4-bit NF4"), ("int8", "8-bit")])
def test_kbit_without_bitsandbytes_is_the_same_error(monkeypatch: pytest.MonkeyPatch, quantization: str,
                                                     bits: str) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    with pytest.raises(DlhwError) as err:
        hub.check_quantization(quantization, torch.device("cuda", 0))
    assert str(err.value) == (f"model.quantization={quantization}: {bits} loading needs bitsandbytes: "
                              "pip install 'dlhw[gpu]', or --set model.quantization=none")


@pytest.mark.parametrize("quantization", ["nf4", "int8"])
def test_kbit_on_cpu_is_refused_before_loading(quantization: str) -> None:
    with pytest.raises(ConfigError, match=rf"model.quantization={quantization}: .* needs a CUDA GPU and the model is on cpu"):
        hub.load_hub_model("org/model", "causal-lm", torch.device("cpu"), quantization=quantization)


def test_no_quantization_loads_without_device_map(fake_loading: _Recorder) -> None:
    hub.load_hub_model("org/model", "causal-lm", torch.device("cpu"), quantization="none")
    (_, kwargs), = fake_loading.calls
    assert "device_map" not in kwargs and kwargs["dtype"] == torch.float32
