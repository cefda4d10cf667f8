"""Summaries in batches from a run, an ONNX export or a Hub model, with any backend.

:class:`Summarizer` builds each prompt with :class:`dlhw.families.summarization.data.PromptBuilder` (the one
training used), then decodes with the one language-model loop (:class:`dlhw.lm.generate.ChatGenerator`
on torch, :class:`dlhw.lm.ort.OrtChatGenerator` on ONNX Runtime): left padding, KV
cache, greedy by default, sampling on request, stopping at EOS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dlhw.errors import ConfigError
from dlhw.families.summarization.data import PromptBuilder, SummaryExample


@dataclass
class Summary:
    text: str
    tokens: int
    truncated: bool
    """The document was cut to the input limit before summarizing."""
    shots_dropped: int = 0


class Summarizer:
    """Documents -> summaries through ``generator`` (torch or ONNX Runtime)."""

    def __init__(self, generator: Any, builder: PromptBuilder, shots: list[SummaryExample] | None = None):
        self.generator = generator
        self.builder = builder
        self.shots = list(shots or [])

    @property
    def tokenizer(self) -> Any:
        return self.builder.tokenizer

    def summarize(self, documents: list[str]) -> list[Summary]:
        prompts = [self.builder.prompt(d, self.shots) for d in documents]
        gens = self.generator.generate_ids([p.ids for p in prompts])
        return [Summary(self.builder.summary_text(g.text), len(g.token_ids), p.truncated, p.shots_dropped)
                for p, g in zip(prompts, gens, strict=True)]


def builder_for(tokenizer: Any, info: dict[str, Any]) -> PromptBuilder:
    return PromptBuilder(tokenizer, info["kind"], info["template"], info["max_input_tokens"], info["max_length"],
                         info["max_new_tokens"])


def read_shots(path: str | Path | None, k: int) -> list[SummaryExample]:
    """The first ``k`` examples of a .jsonl/.csv file with a document field and a summary field."""
    if k == 0:
        return []
    if path is None:
        raise ConfigError(f"--shots {k}: give the examples with --shots-from FILE.jsonl (document + summary fields)")
    from dlhw.families.summarization.data import read_flat_file

    examples = read_flat_file(Path(path))
    if len(examples) < k:
        raise ConfigError(f"--shots-from {path}: {len(examples)} examples, fewer than --shots {k}")
    return examples[:k]


def load_summarizer(path: str, backend: str = "torch", device: str = "auto", shots: int = 0,
                    shots_from: str | None = None, kind: str = "article", max_new_tokens: int | None = None,
                    int8: bool = False, pick: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    dtype: str | None = None) -> Summarizer:
    """A summarizer for a run directory (torch), an export directory (onnxruntime / tensorrt) or a Hub id
    / model folder (torch, plain or chat template by name).

    ``dtype`` (torch): ``--dtype`` (see :func:`~dlhw.core.devices.inference_dtype`); None = a run's
    ``model.dtype``, auto for a Hub model.
    """
    from dlhw.core.runs import export_dir_of
    from dlhw.families.summarization.model import (
        is_summarization_run,
        load_summarization_run,
        read_prompt_info,
    )
    from dlhw.lm.generate import ChatGenerator

    folder = Path(path)
    if backend == "torch" and is_summarization_run(folder):
        loaded = load_summarization_run(folder, device, dtype=dtype)
        info = dict(loaded.prompt)
        info["max_new_tokens"] = max_new_tokens or info["max_new_tokens"]
        shot_list = read_shots(shots_from, shots) if shots_from or shots else []
        if shots and not shots_from:
            from dlhw.families.summarization.data import prepare_summaries

            shot_list = prepare_summaries(loaded.config.data, loaded.config.seed).train[:shots]
        generator = ChatGenerator(loaded.model, loaded.tokenizer, info["max_new_tokens"], info["max_length"], pick)
        return Summarizer(generator, builder_for(loaded.tokenizer, info), shot_list)
    if backend in ("onnxruntime", "tensorrt"):
        from dlhw.lm.ort import load_generator

        export_dir = export_dir_of(folder)
        info = read_prompt_info(export_dir)
        info["max_new_tokens"] = max_new_tokens or info["max_new_tokens"]
        generator = load_generator(export_dir, backend, device, info["max_new_tokens"], int8)
        generator.pick = pick
        return Summarizer(generator, builder_for(generator.tokenizer, info), read_shots(shots_from, shots))
    if (folder / "config.yaml").is_file():
        raise ConfigError(f"{folder}: a run directory without a summarization model; train it with "
                          "`dlhw train summarize-sft` (or use its export with --backend onnxruntime)")
    from dlhw.core.devices import dtype_name, inference_dtype, resolve_device
    from dlhw.families.summarization.model import resolve_template
    from dlhw.lm.hub import load_hub_model

    dev = resolve_device(device, "--device")
    tokenizer, model = load_hub_model(path, "causal-lm", dev, dtype_name(inference_dtype(dtype or "auto", dev)))
    model = model.to(dev)
    template = resolve_template("auto", path)
    limit = getattr(model.config, "max_position_embeddings", 2048)
    new = max_new_tokens or 128
    info = {"kind": kind, "template": template, "max_input_tokens": max(16, limit - new - 256), "max_length": limit,
            "max_new_tokens": new}
    generator = ChatGenerator(model, tokenizer, new, limit, pick)
    return Summarizer(generator, builder_for(tokenizer, info), read_shots(shots_from, shots))


def write_shots(path: Path, shots: list[SummaryExample]) -> None:
    """The few-shot examples a run used, for the record (``shots.jsonl``)."""
    with path.open("w", encoding="utf-8") as handle:
        for s in shots:
            handle.write(json.dumps({"id": s.id, "document": s.document, "summary": s.references[0]},
                                    ensure_ascii=False) + "\n")


class SummaryPredictor:
    """``dlhw summarize``'s predictor: a document -> ``{"summary", "truncated", "tokens"}``."""

    result_key = "summary"

    def __init__(self, summarizer: Summarizer):
        self.summarizer = summarizer

    def load(self, key: str, raw: Any) -> str:
        return str(raw)

    def predict(self, batch: list[str]) -> list[dict[str, Any]]:
        return [{"summary": s.text, "truncated": s.truncated, "tokens": s.tokens}
                for s in self.summarizer.summarize(batch)]

    def throughput(self, seconds: float) -> str | None:
        return None


def open_predictor(path: str, backend: str = "torch", device: str = "auto", shots: int = 0,
                   shots_from: str | None = None, kind: str = "article", max_new_tokens: int | None = None,
                   int8: bool = False, pick: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   dtype: str = "auto") -> SummaryPredictor:
    """The summarization family's batch predictor for a run, an export or a Hub model (torch in ``dtype``)."""
    return SummaryPredictor(load_summarizer(path, backend, device, shots, shots_from, kind, max_new_tokens, int8, pick,
                                            dtype))
