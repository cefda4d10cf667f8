"""Prompt runs to ONNX: the run's seq2seq model through dlhw's seq2seq export, checked against torch.

:func:`dlhw.lm.export.export_seq2seq` writes ``encoder_model.onnx`` (which also projects the decoder's
cross-attention keys/values, once per prompt) and ``decoder_model.onnx`` (one graph, with the KV cache);
:class:`dlhw.lm.ort.OrtSeq2Seq` runs them, which is what ``dlhw prompt bbh-sports --backend onnxruntime``
runs (:mod:`dlhw.families.prompting.infer`).
The parity check feeds the same CoT prompts to torch and ONNX Runtime: the encoder outputs and the
first decoder step's logits must agree within the tolerance, and the greedy chains token for token.
Causal LMs are not exported by this family (the chat family's export covers decoder-only models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlhw.core.family import HfExport
from dlhw.errors import ConfigError

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
    from dlhw.lm.export import export_seq2seq

    files = export_seq2seq(job.model, job.tokenizer, out_dir, opset)
    return {"family": "prompting", "opset": opset, "files": files}


def check_prompt_export(job: PromptExport, out_dir: Path, meta: dict[str, Any], atol: float) -> dict[str, Any]:
    """Encoder outputs and first-step logits within ``atol``; greedy tokens equal on every prompt."""
    from dlhw.backends.parity import check_parity
    from dlhw.lm.generate import TorchSeq2Seq
    from dlhw.lm.ort import OrtSeq2Seq
    from dlhw.lm.parity import greedy_tokens

    ours = OrtSeq2Seq(out_dir)
    reference = TorchSeq2Seq(job.model)
    outputs: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {"encoder": ([], []), "logits": ([], [])}
    for prompt in job.prompts:
        enc = job.tokenizer([prompt], return_tensors="pt")
        start = torch.full((1, 1), reference.decoder_start_token_id)  # (1, 1)
        with torch.no_grad():
            memory = reference.encode(enc["input_ids"], enc["attention_mask"])
            outputs["encoder"][0].append(memory[0])  # (1, S, H)
            outputs["logits"][0].append(reference.step(start, memory, None)[0])  # (1, 1, V)
            exported = ours.encode(enc["input_ids"], enc["attention_mask"])
            outputs["encoder"][1].append(torch.from_numpy(exported["encoder_hidden_states"]))
            outputs["logits"][1].append(ours.step(start, exported, None)[0])
    theirs = _greedy(ours, job.tokenizer, job.prompts)
    return check_parity(outputs, atol, decisions=[greedy_tokens(job.tokens, theirs, "prompt")],
                        what=f"{len(job.prompts)} prompts (encoder and first decoder step)",
                        extra={"prompts": len(job.prompts), "tokens_compared": sum(len(t) for t in job.tokens)})


def export_prompt_hf(run_dir: Path, out_dir: Path) -> HfExport:
    """``dlhw export RUN --hf``: the prompted seq2seq model as it is (nothing was trained), with its tokenizer
    and generation config; checked by greedy decoding of the check prompts from the reloaded folder."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from dlhw.core.download import is_hub_id
    from dlhw.errors import DlhwError
    from dlhw.families.prompting.model import run_model_path

    job = load_for_export(run_dir)
    job.model.save_pretrained(out_dir)
    job.tokenizer.save_pretrained(out_dir)
    theirs = _greedy(AutoModelForSeq2SeqLM.from_pretrained(out_dir).eval(), AutoTokenizer.from_pretrained(out_dir),
                     job.prompts)
    differ = [i for i, (a, b) in enumerate(zip(job.tokens, theirs, strict=True)) if a != b]
    if differ:
        raise DlhwError(f"--hf: the exported folder's greedy tokens differ from the run's on {len(differ)} of "
                        f"{len(theirs)} prompts; nothing was written")
    source = run_model_path(run_dir)
    load = ('folder = "path/to/this/folder"\nfrom transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n\n'
            "tokenizer = AutoTokenizer.from_pretrained(folder)\n"
            "model = AutoModelForSeq2SeqLM.from_pretrained(folder)")
    return HfExport(
        form="model", library="transformers", pipeline_tag="text2text-generation",
        base_model=source if is_hub_id(source) else None, method="none (prompted as is)", load=load,
        check=(f"greedy tokens of the reloaded folder equal the run's on {len(theirs)} check prompts "
               f"({sum(len(t) for t in theirs)} tokens)"),
        limits=("Nothing was trained: the weights are the prompted model's own; the metrics are the prompting "
                "strategies' accuracies (answer-only, few-shot, chain of thought, self-consistency) on BBH "
                "sports_understanding.",))
