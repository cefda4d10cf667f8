"""`--dtype` for chat runs: bf16 first-step logits against fp32, adapters and soft prompts included (slow).

Tolerances, measured on the tiny runs with six prompts on the CPU: the first decoding step's logits
(up to 8-13 in size) differed by at most 0.070 (LoRA), 0.083 (prefix tuning), 0.071 (prompt tuning)
between bf16 and fp32, with the same first token for every prompt.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from dlhw.families.chat.infer import open_predictor

pytestmark = pytest.mark.slow

LOGIT_ATOL = 0.3
"""Largest |bf16 - fp32| first-step logit (3.5x the largest measured)."""
PROMPTS = [[{"role": "user", "content": p}] for p in (
    "سلام، حالت چطور است؟", "What is the capital of France?", "یک جمله درباره هوا بنویس.", "Tell me a joke.",
    "اسم سه میوه را بگو.", "Translate: good morning")]


def _first_logits(generator: Any, conversations: list[Any]) -> torch.Tensor:
    steps: list[torch.Tensor] = []
    generator.generate(conversations, record=steps)
    return steps[0].float()  # (B, V)


def _compare(fp32: torch.Tensor, other: torch.Tensor) -> float:
    diff = (fp32 - other).abs().max().item()
    assert diff <= LOGIT_ATOL, f"max |first-step logit difference| {diff:.3f}"
    same = (fp32.argmax(-1) == other.argmax(-1)).sum().item()
    assert same >= len(fp32) - 1, f"the same first token for {same} of {len(fp32)} prompts"
    return diff


@pytest.mark.parametrize("method", ["lora", "prefix-tuning", "prompt-tuning"])
def test_bf16_on_the_cpu_answers_as_fp32_does(chat_runs, method: str) -> None:
    run = str(chat_runs[method])
    fp32 = open_predictor(run, "torch", "cpu", max_new_tokens=4, dtype="fp32").generator
    bf16 = open_predictor(run, "torch", "cpu", max_new_tokens=4, dtype="bf16").generator
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}  # adapters and soft prompts too
    assert _compare(_first_logits(fp32, PROMPTS), _first_logits(bf16, PROMPTS)) > 0.0


@pytest.mark.gpu
def test_cuda_bf16_answers_as_fp32_and_batches_as_one_at_a_time(chat_runs: Any, record_property: Any) -> None:
    run = str(chat_runs["lora"])  # one method: the GPU check has minutes for every family
    fp32 = open_predictor(run, "torch", "cuda", max_new_tokens=4, dtype="fp32").generator
    bf16 = open_predictor(run, "torch", "cuda", max_new_tokens=4, dtype="bf16").generator
    batched = _first_logits(bf16, PROMPTS)
    record_property("bf16_vs_fp32_max_logit_diff", round(_compare(_first_logits(fp32, PROMPTS), batched), 4))
    alone = torch.cat([_first_logits(bf16, [p]) for p in PROMPTS])  # (B, V), left padding differs
    record_property("batched_vs_alone_max_logit_diff", round(_compare(batched, alone), 4))
