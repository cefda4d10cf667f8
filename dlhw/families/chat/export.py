"""Chat runs to ONNX through :mod:`dlhw.lm.export` (adapters merged, soft prompts folded, one decoder
graph with KV cache), checked on Persian prompts: the torch PEFT model decodes them greedily first
(keeping every step's logits), then ONNX Runtime must give the same tokens with every logit within
the tolerance (``--atol``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlhw.core.family import HfExport

PARITY_PROMPTS = 12
PARITY_NEW_TOKENS = 24


@dataclass
class ChatExport:
    """A chat run loaded once for its whole export, with the torch reference decoded before the
    model is merged or folded."""

    run_dir: Path
    loaded: Any
    prompts: list[list[dict[str, str]]] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)
    """Greedy token ids of the torch PEFT model, per check prompt."""
    logits: list[Any] = field(default_factory=list)
    """(B, V) logits of every greedy step of the torch PEFT model."""


def load_for_export(run_dir: Path) -> ChatExport:
    """Load the run (once) and decode the check prompts with the torch PEFT model."""
    from dlhw.lm.generate import ChatGenerator
    from dlhw.lm.run import load_chat_run

    loaded = load_chat_run(run_dir, "cpu")
    job = ChatExport(run_dir, loaded, parity_prompts(loaded))
    generator = ChatGenerator(loaded.model, loaded.tokenizer, max_new_tokens=PARITY_NEW_TOKENS)
    job.tokens = [g.token_ids for g in generator.generate(job.prompts, record=job.logits)]
    return job


def parity_prompts(loaded: Any) -> list[list[dict[str, str]]]:
    from dlhw.families.chat.persian_tasks import PROBES, make_examples

    questions = [e.messages(with_answer=False) for e in make_examples(PARITY_PROMPTS - len(PROBES), loaded.config.seed + 7)]
    return [[{"role": "user", "content": p}] for p in PROBES] + questions


def check_chat_export(job: ChatExport, out_dir: Path, meta: dict[str, Any], atol: float) -> dict[str, Any]:
    """ORT's greedy tokens must equal the torch PEFT model's, prompt by prompt, and every step's
    logits must agree within ``atol``."""
    from dlhw.lm.ort import OrtChatGenerator
    from dlhw.lm.parity import compare_generations

    ort_logits: list[torch.Tensor] = []
    theirs = OrtChatGenerator(out_dir, max_new_tokens=PARITY_NEW_TOKENS).generate(job.prompts, record=ort_logits)
    return compare_generations(job.tokens, job.logits, [g.token_ids for g in theirs], ort_logits, atol, "prompt")


def quantize_chat_export(job: ChatExport, out_dir: Path, force: bool = False) -> dict[str, Any]:
    """``model.int8.onnx`` (dynamic int8 weights) and the test perplexity before and after (no quality
    gate: ``force`` changes nothing)."""
    from dlhw.backends.quantize import quantize_int8
    from dlhw.families.chat.data import prepare_conversations
    from dlhw.lm.ort import OrtChatGenerator
    from dlhw.lm.template import ChatFormatter

    quantize_int8(out_dir / "model.onnx", out_dir / "model.int8.onnx")
    loaded = job.loaded
    splits = prepare_conversations(loaded.config.data, loaded.config.seed)
    test = ChatFormatter(loaded.tokenizer, loaded.config.data.max_length).encode_all(splits.test)
    fp32 = OrtChatGenerator(out_dir).loss(test)
    int8 = OrtChatGenerator(out_dir, model_file="model.int8.onnx").loss(test)
    sizes = {f: (out_dir / f).stat().st_size for f in ("model.onnx", "model.int8.onnx")}
    change = 100 * (int8["perplexity"] - fp32["perplexity"]) / fp32["perplexity"]
    summary = (f"int8: model.int8.onnx ({sizes['model.int8.onnx'] / 2**20:.1f} MiB, fp32 "
               f"{sizes['model.onnx'] / 2**20:.1f} MiB); test perplexity {fp32['perplexity']:.3f} -> "
               f"{int8['perplexity']:.3f} ({change:+.2f}%)")
    return {"file": "model.int8.onnx", "test_perplexity_fp32": fp32["perplexity"],
            "test_perplexity_int8": int8["perplexity"], "perplexity_change_percent": change,
            "bytes_fp32": sizes["model.onnx"], "bytes_int8": sizes["model.int8.onnx"], "summary": summary}


def export_chat(job: ChatExport, out_dir: Path, opset: int) -> dict[str, Any]:
    """Write ``model.onnx``, the tokenizer and ``chat.json`` (and ``prefix.npz``) into ``out_dir``."""
    from dlhw.lm.export import export_causal_lm

    return export_causal_lm(job.loaded, out_dir, opset, "chat")


def export_chat_hf(run_dir: Path, out_dir: Path) -> HfExport:
    """``dlhw export RUN --hf``: the merged model (or the PEFT adapter of a soft prompt), checked on the
    :data:`PARITY_PROMPTS` Persian prompts of the ONNX check (:func:`dlhw.lm.hf_export.export_causal_hf`)."""
    from dlhw.lm.hf_export import export_causal_hf
    from dlhw.lm.template import ChatFormatter

    def prompts(loaded: Any) -> list[list[int]]:
        formatter = ChatFormatter(loaded.tokenizer, loaded.config.data.max_length)
        return [formatter.prompt_ids(c) for c in parity_prompts(loaded)]

    return export_causal_hf(run_dir, out_dir, prompts, PARITY_NEW_TOKENS, "Persian chat prompts",
                            ("Answers follow the tokenizer's chat template (saved with the tokenizer); the model "
                             "was tuned on Persian instructions.",))
