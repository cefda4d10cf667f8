"""Prompt runs to ONNX: the run's seq2seq model through optimum's seq2seq export, checked against torch.

optimum-onnx's ``text2text-generation-with-past`` writes ``encoder_model.onnx`` and the decoder
(with and without past key/values); :class:`~optimum.onnxruntime.ORTModelForSeq2SeqLM` loads them,
which is what ``dlhw prompt bbh-sports --backend onnxruntime`` runs (:mod:`dlhw.families.prompting.infer`).
The parity check feeds the same CoT prompts to torch and ONNX Runtime: the encoder outputs and the
first decoder step's logits must agree within the tolerance, and the greedy chains token for token.
Causal LMs are not exported by this family (the chat family's export covers decoder-only models).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlhw.errors import ConfigError, DlhwError

PARITY_PROMPTS = 6
PARITY_NEW_TOKENS = 40


@dataclass
class PromptExport:
    """A prompt run's model, loaded once, with the torch reference of the check prompts."""

    run_dir: Path
    model: Any
    tokenizer: Any
    prompts: list[str] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)


def parity_prompts() -> list[str]:
    from dlhw.families.prompting import sports_tasks
    from dlhw.families.prompting.data import build_prompt

    items = sports_tasks.test_items()[:PARITY_PROMPTS]
    return [build_prompt("cot" if i % 2 else "answer-only", item.input) for i, item in enumerate(items)]


def load_for_export(run_dir: Path) -> PromptExport:
    """Load the run's model (its ``model/`` folder or the id it names) and decode the check prompts."""
    from dlhw.families.prompting.model import load_folder, run_model_path

    loaded = load_folder(run_model_path(run_dir), torch.device("cpu"), "float32")
    if loaded.kind != "seq2seq":
        raise ConfigError(f"{run_dir}: the prompting family exports seq2seq models; {loaded.name} is a causal LM")
    job = PromptExport(run_dir, loaded.model, loaded.tokenizer, parity_prompts())
    job.tokens = _greedy(loaded.model, loaded.tokenizer, job.prompts)
    return job


def _greedy(model: Any, tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    """Greedy new tokens through the loop that serves answers (:func:`dlhw.lm.generate.seq2seq_loop`)."""
    from dlhw.lm.generate import seq2seq_loop, stop_token_ids

    stops = stop_token_ids(model, tokenizer)
    out: list[list[int]] = []
    for prompt in prompts:  # one at a time: no padding differences between the backends
        enc = tokenizer([prompt], return_tensors="pt")
        with torch.no_grad():
            out += seq2seq_loop(model, enc["input_ids"], enc["attention_mask"], PARITY_NEW_TOKENS, stops,
                                tokenizer.pad_token_id)
    return out


def export_prompt_model(job: PromptExport, out_dir: Path, opset: int) -> dict[str, Any]:
    """Write the encoder and decoder ONNX files and the tokenizer into ``out_dir``."""
    try:
        from optimum.exporters.onnx import main_export
    except ImportError:
        raise DlhwError("exporting seq2seq models needs optimum-onnx: pip install optimum-onnx") from None
    with tempfile.TemporaryDirectory() as tmp:
        job.model.save_pretrained(tmp)
        job.tokenizer.save_pretrained(tmp)
        main_export(tmp, output=out_dir, task="text2text-generation-with-past", opset=opset, device="cpu",
                    do_validation=False)
    files = {p.stem: p.name for p in sorted(out_dir.glob("*.onnx"))}
    return {"family": "prompting", "opset": opset, "files": files}


def check_prompt_export(job: PromptExport, out_dir: Path, meta: dict[str, Any], atol: float) -> dict[str, Any]:
    """Encoder outputs and first-step logits within ``atol``; greedy tokens equal on every prompt."""
    from optimum.onnxruntime import ORTModelForSeq2SeqLM

    from dlhw.backends.parity import check_parity
    from dlhw.lm.parity import greedy_tokens

    ort_model = ORTModelForSeq2SeqLM.from_pretrained(str(out_dir), use_cache=True)
    outputs: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {"encoder": ([], []), "logits": ([], [])}
    for prompt in job.prompts:
        enc = job.tokenizer([prompt], return_tensors="pt")
        start = torch.full((1, 1), job.model.config.decoder_start_token_id)  # (1, 1)
        with torch.no_grad():
            for side, model in enumerate((job.model, ort_model)):
                outputs["encoder"][side].append(model.get_encoder()(**enc).last_hidden_state)  # (1, S, H)
                outputs["logits"][side].append(model(**enc, decoder_input_ids=start).logits)  # (1, 1, V)
    theirs = _greedy(ort_model, job.tokenizer, job.prompts)
    return check_parity(outputs, atol, decisions=[greedy_tokens(job.tokens, theirs, "prompt")],
                        what=f"{len(job.prompts)} prompts (encoder and first decoder step)",
                        extra={"prompts": len(job.prompts), "tokens_compared": sum(len(t) for t in job.tokens)})
