"""`--dtype` for prompting: the tiny T5's logits in bf16 against fp32, and the flag's refusals.

Measured on the CPU with six sports statements: the first decoder step's logits (up to 8.9 in size)
differed by at most 0.026 between bf16 and fp32. The tiny T5's yes/no log-probability margins are
only 0.001-0.007, below bf16's rounding, so its answers flip in bf16 (answer-only by rank, 20 items:
accuracy 0.70 in fp32, 0.35 in bf16): `auto` keeps the tiny T5 in fp32 even on a GPU.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from dlhw.families.prompting.config import PromptModelConfig
from dlhw.families.prompting.model import load_prompt_model
from tests.conftest import run_cli

LOGIT_ATOL = 0.1
"""Largest |bf16 - fp32| first-step logit (4x the measured 0.026)."""
STATEMENTS = [f'Is the following sentence plausible? "Player {i} scored a touchdown in the {where}."'
              for i, where in enumerate(["NFL game", "World Cup", "third period", "penalty kick", "fourth quarter",
                                         "free throw"])]


def _first_logits(dtype: str, device: str, statements: list[str] = STATEMENTS) -> torch.Tensor:
    loaded = load_prompt_model(PromptModelConfig(name=None, dtype=dtype), torch.device(device))  # type: ignore[arg-type]
    enc = loaded.tokenizer(statements, return_tensors="pt", padding=True).to(device)
    start = torch.zeros((len(statements), 1), dtype=torch.long, device=device)  # the decoder's start token
    with torch.no_grad():
        return loaded.model(**enc, decoder_input_ids=start).logits[:, 0].float().cpu()  # (B, V)


@pytest.mark.slow
def test_bf16_on_the_cpu_keeps_the_tiny_t5_logits_and_auto_keeps_fp32() -> None:
    auto = load_prompt_model(PromptModelConfig(name=None, dtype="auto"), torch.device("cpu"))
    assert next(auto.model.parameters()).dtype is torch.float32
    diff = (_first_logits("float32", "cpu") - _first_logits("bfloat16", "cpu")).abs().max().item()
    assert 0.0 < diff <= LOGIT_ATOL


def test_dtype_with_onnxruntime_is_refused_before_a_run_directory_exists(tmp_path: Any) -> None:
    code, out = run_cli("prompt", "bbh-sports", "--preset", "tiny", "--backend", "onnxruntime", "--model",
                        str(tmp_path), "--dtype", "bf16", "--output-dir", str(tmp_path / "run"))
    assert code == 2
    assert out.startswith("error: --dtype bf16 is for --backend torch")
    assert not (tmp_path / "run").exists()


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_bf16_keeps_the_tiny_t5_logits_and_batches_as_one_at_a_time(record_property: Any) -> None:
    batched = _first_logits("bfloat16", "cuda")
    diff = (_first_logits("float32", "cuda") - batched).abs().max().item()
    alone = torch.cat([_first_logits("bfloat16", "cuda", [s]) for s in STATEMENTS])  # (B, V) without padding
    padding = (batched - alone).abs().max().item()
    record_property("bf16_vs_fp32_max_logit_diff", round(diff, 4))
    record_property("batched_vs_alone_max_logit_diff", round(padding, 4))
    assert diff <= LOGIT_ATOL and padding <= LOGIT_ATOL
