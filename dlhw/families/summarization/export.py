"""Summarization runs to ONNX through the language-model exporter: one decoder graph with KV cache.

SFT runs export as they are, LoRA runs with the adapter merged (:func:`dlhw.lm.export.export_causal_lm`).
``summarize.json`` (prompt kind, template, limits) goes next to ``model.onnx`` so ``dlhw summarize
--backend onnxruntime`` builds the same prompts. Parity: the torch model summarizes test documents
greedily first (keeping every step's logits); ONNX Runtime must produce the same tokens, with every
logit within the tolerance. ``--int8`` writes ``model.int8.onnx`` and reports the ROUGE change on
the test split.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlhw.core.family import HfExport
from dlhw.core.runs import RunFiles
from dlhw.families.summarization.model import PROMPT_FILE

PARITY_DOCUMENTS = 8


@dataclass
class SummarizerExport:
    """A run loaded once, with the torch reference decoded before any merge."""

    run_dir: Path
    loaded: Any
    """The :class:`dlhw.lm.run.LoadedChat` the chat exporter takes."""
    info: dict[str, Any]
    prompts: list[list[int]] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)
    logits: list[Any] = field(default_factory=list)


def _builder(tokenizer: Any, info: dict[str, Any]) -> Any:
    from dlhw.families.summarization.infer import builder_for

    return builder_for(tokenizer, info)


def load_for_export(run_dir: Path) -> SummarizerExport:
    from dlhw.families.summarization.data import prepare_summaries
    from dlhw.families.summarization.model import read_prompt_info
    from dlhw.lm.generate import ChatGenerator
    from dlhw.lm.run import load_chat_run

    loaded = load_chat_run(run_dir, "cpu")
    info = read_prompt_info(RunFiles(run_dir).model)
    test = prepare_summaries(loaded.config.data, loaded.config.seed).test[:PARITY_DOCUMENTS]
    builder = _builder(loaded.tokenizer, info)
    job = SummarizerExport(run_dir, loaded, info, [builder.prompt(e.document).ids for e in test])
    generator = ChatGenerator(loaded.model, loaded.tokenizer, info["max_new_tokens"], info["max_length"])
    job.tokens = [g.token_ids for g in generator.generate_ids(job.prompts, record=job.logits)]
    return job


def export_summarizer(job: SummarizerExport, out_dir: Path, opset: int) -> dict[str, Any]:
    from dlhw.lm.export import export_causal_lm

    meta = export_causal_lm(job.loaded, out_dir, opset, "summarization")
    shutil.copy(RunFiles(job.run_dir).model / PROMPT_FILE, out_dir / PROMPT_FILE)
    return {**meta, "files": {**meta["files"], "prompt": PROMPT_FILE}}


def check_summarizer_export(job: SummarizerExport, out_dir: Path, meta: dict[str, Any], atol: float) -> dict[str, Any]:
    """ONNX Runtime's greedy tokens must equal torch's on the test prompts; logits within ``atol``."""
    from dlhw.lm.ort import OrtChatGenerator
    from dlhw.lm.parity import compare_generations

    ort_logits: list[torch.Tensor] = []
    theirs = OrtChatGenerator(out_dir, max_new_tokens=job.info["max_new_tokens"]).generate_ids(job.prompts, record=ort_logits)
    return compare_generations(job.tokens, job.logits, [g.token_ids for g in theirs], ort_logits, atol, "test document")


def quantize_summarizer_export(job: SummarizerExport, out_dir: Path, force: bool = False) -> dict[str, Any]:
    """``model.int8.onnx`` (dynamic int8 weights) and ROUGE on the test split before and after (no
    quality gate: ``force`` changes nothing)."""
    from dlhw.backends.quantize import quantize_int8
    from dlhw.families.summarization.data import prepare_summaries
    from dlhw.families.summarization.infer import Summarizer
    from dlhw.families.summarization.rouge import corpus_rouge
    from dlhw.lm.ort import OrtChatGenerator

    quantize_int8(out_dir / "model.onnx", out_dir / "model.int8.onnx")
    config = job.loaded.config
    test = prepare_summaries(config.data, config.seed).test
    scores = {}
    for name in ("model.onnx", "model.int8.onnx"):
        generator = OrtChatGenerator(out_dir, max_new_tokens=job.info["max_new_tokens"], model_file=name)
        summarizer = Summarizer(generator, _builder(generator.tokenizer, job.info))
        preds = []
        for i in range(0, len(test), config.eval.batch_size):
            preds += [s.text for s in summarizer.summarize([e.document for e in test[i:i + config.eval.batch_size]])]
        scores[name], _ = corpus_rouge(preds, [list(e.references) for e in test], config.eval.language, 200)
    fp32, int8 = scores["model.onnx"], scores["model.int8.onnx"]
    sizes = {f: (out_dir / f).stat().st_size for f in ("model.onnx", "model.int8.onnx")}
    summary = (f"int8: model.int8.onnx ({sizes['model.int8.onnx'] / 2**20:.1f} MiB, fp32 {sizes['model.onnx'] / 2**20:.1f} "
               f"MiB); test ROUGE-L {fp32['rougeL']:.4f} -> {int8['rougeL']:.4f} ({int8['rougeL'] - fp32['rougeL']:+.4f}), "
               f"ROUGE-1 {fp32['rouge1']:.4f} -> {int8['rouge1']:.4f} ({int8['rouge1'] - fp32['rouge1']:+.4f}) "
               f"on {len(test)} documents")
    return {"file": "model.int8.onnx", "rouge_fp32": {k: fp32[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")},
            "rouge_int8": {k: int8[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")},
            "rougeL_change": int8["rougeL"] - fp32["rougeL"], "bytes_fp32": sizes["model.onnx"],
            "bytes_int8": sizes["model.int8.onnx"], "summary": summary}


HF_CHECK_DOCUMENTS = 5


def export_summarizer_hf(run_dir: Path, out_dir: Path) -> HfExport:
    """``dlhw export RUN --hf``: the fine-tuned (SFT) or merged (LoRA) model with ``summarize.json``, checked
    on :data:`HF_CHECK_DOCUMENTS` test documents (:func:`dlhw.lm.hf_export.export_causal_hf`)."""
    from dlhw.families.summarization.data import prepare_summaries
    from dlhw.families.summarization.model import read_prompt_info
    from dlhw.lm.hf_export import export_causal_hf

    info = read_prompt_info(RunFiles(run_dir).model)

    def prompts(loaded: Any) -> list[list[int]]:
        test = prepare_summaries(loaded.config.data, loaded.config.seed).test[:HF_CHECK_DOCUMENTS]
        builder = _builder(loaded.tokenizer, info)
        return [builder.prompt(e.document).ids for e in test]

    made = export_causal_hf(run_dir, out_dir, prompts, info["max_new_tokens"], "test documents",
                            (f"Prompts are built as in training ({info['template']} template, documents cut to "
                             f"{info['max_input_tokens']} tokens): {PROMPT_FILE} in this folder says how; "
                             "`dlhw summarize --model FOLDER` is not needed to use it, but other prompt formats "
                             "give worse summaries.",))
    shutil.copy(RunFiles(run_dir).model / PROMPT_FILE, out_dir / PROMPT_FILE)
    return made
