"""`--dtype` for summarization runs (bf16 first-step logits against fp32), and BERTScore on the device
the summaries were generated on.

Tolerances, measured on the tiny summarize-sft run with 16 test documents on the CPU: the first
decoding step's logits (up to 15 in size) differed by at most 0.083 between bf16 and fp32, with the
same first token for every document; 11 of the 16 greedy summaries were identical, the others
parted after 12 or more equal tokens.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from dlhw.families.summarization.evaluate import scoring_device
from dlhw.families.summarization.infer import Summarizer, open_predictor

LOGIT_ATOL = 0.3
"""Largest |bf16 - fp32| first-step logit (3.5x the measured 0.083)."""


class _Session:
    def __init__(self, providers: list[str], options: dict[str, dict[str, str]]):
        self.providers, self.options = providers, options

    def get_providers(self) -> list[str]:
        return self.providers

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        return self.options


def test_bertscore_runs_where_the_summaries_were_generated() -> None:
    def on(generator: Any) -> str:
        return scoring_device(Summarizer(generator, builder=None))  # type: ignore[arg-type]

    assert on(SimpleNamespace(device=torch.device("cpu"))) == "cpu"  # a torch model's device
    assert on(SimpleNamespace(device=torch.device("cuda", 1))) == "cuda:1"
    assert on(SimpleNamespace(session=_Session(["CPUExecutionProvider"], {}))) == "cpu"  # ONNX Runtime
    cuda = _Session(["CUDAExecutionProvider", "CPUExecutionProvider"], {"CUDAExecutionProvider": {"device_id": "2"}})
    assert on(SimpleNamespace(session=cuda)) == "cuda:2"
    trt = _Session(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], {})
    assert on(SimpleNamespace(session=trt)) == "cuda:0"


def _documents(run: Path, n: int = 16) -> list[str]:
    from dlhw.config import from_dict
    from dlhw.core.runs import run_config_dict
    from dlhw.families.summarization.config import SummarizationConfig
    from dlhw.families.summarization.data import prepare_summaries

    config = from_dict(SummarizationConfig, run_config_dict(run))
    return [e.document for e in prepare_summaries(config.data, config.seed).test[:n]]


def _first_logits(summarizer: Summarizer, documents: list[str]) -> torch.Tensor:
    steps: list[torch.Tensor] = []
    summarizer.generator.generate_ids([summarizer.builder.prompt(d, []).ids for d in documents], record=steps,
                                      max_new_tokens=2)
    return steps[0].float()  # (B, V)


def _compare(fp32: torch.Tensor, other: torch.Tensor) -> float:
    diff = (fp32 - other).abs().max().item()
    assert diff <= LOGIT_ATOL, f"max |first-step logit difference| {diff:.3f}"
    same = (fp32.argmax(-1) == other.argmax(-1)).sum().item()
    assert same >= len(fp32) - 1, f"the same first token for {same} of {len(fp32)} documents"
    return diff


@pytest.mark.slow
def test_bf16_on_the_cpu_summarizes_as_fp32_does(summarization_runs: dict[str, Path]) -> None:
    run = summarization_runs["sft"]
    documents = _documents(run)
    fp32 = open_predictor(str(run), "torch", "cpu", dtype="fp32").summarizer
    bf16 = open_predictor(str(run), "torch", "cpu", dtype="bf16").summarizer
    assert bf16.generator.model.dtype is torch.bfloat16
    assert _compare(_first_logits(fp32, documents), _first_logits(bf16, documents)) > 0.0


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_bf16_summarizes_as_fp32_and_batches_as_one_at_a_time(summarization_runs: dict[str, Path],
                                                                     record_property: Any) -> None:
    run = summarization_runs["sft"]
    documents = _documents(run)
    bf16 = open_predictor(str(run), "torch", "cuda", dtype="bf16").summarizer
    batched = _first_logits(bf16, documents)
    fp32 = _first_logits(open_predictor(str(run), "torch", "cuda", dtype="fp32").summarizer, documents)
    record_property("bf16_vs_fp32_max_logit_diff", round(_compare(fp32, batched), 4))
    alone = torch.cat([_first_logits(bf16, [d]) for d in documents])
    record_property("batched_vs_alone_max_logit_diff", round(_compare(batched, alone), 4))
    assert scoring_device(bf16) == "cuda:0"
