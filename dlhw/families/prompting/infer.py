"""Generation for prompting strategies: batched, sorted by length, and self-consistency sampling.

:class:`PromptGenerator` wraps a seq2seq LM (torch, or its ONNX export through
:class:`dlhw.lm.ort.OrtSeq2Seq`, a :class:`dlhw.lm.generate.Seq2SeqRunner` like torch's) or a causal LM,
and decodes with dlhw's one loop (:mod:`dlhw.lm.decoding`), not ``model.generate``: seq2seq through
:func:`dlhw.lm.generate.seq2seq_loop`, causal through :class:`dlhw.lm.generate.ChatGenerator`.

- :meth:`PromptGenerator.greedy` sorts the prompts by token length, generates in batches (little
  padding), and returns the texts in the original order; the tokens equal ``generate``'s greedy
  ones (tests/families/prompting/test_infer.py);
- :meth:`PromptGenerator.sample` draws ``n`` chains per prompt with :func:`dlhw.lm.sampling.sampler`
  (temperature, top-p; seeded per batch). For a seq2seq model the encoder and the first decoder step
  (the cross-attention projections of the encoder states) run **once per prompt**; their outputs are
  repeated ``n`` times along the batch and the ``n`` chains decode as one batch. A
  causal LM decodes each prompt ``n`` times in one batch;
- :meth:`PromptGenerator.rank` picks, per prompt, the label whose tokens the model scores most
  likely (answer-only / few-shot with ``scoring: rank``).

Texts are cut where a new ``Q:`` block begins on a new line (:func:`cut_at_question`): a causal LM
continuing the few-shot pattern stops there, and a capital Q inside a chain ("Quentin", "QB")
never cuts it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

from dlhw.errors import ConfigError
from dlhw.families.prompting.model import SMALL_MODEL, cpu_threads_for
from dlhw.lm.generate import ChatGenerator, cut_at_stop, seq2seq_loop, stop_token_ids
from dlhw.lm.sampling import Pick, sampler

NEXT_QUESTION = re.compile(r"\n\s*Q:")
T = TypeVar("T")


def _threads(method: Callable[..., T]) -> Callable[..., T]:
    """Run ``method`` on one CPU thread when the model is small (see ``cpu_threads_for``)."""

    @functools.wraps(method)
    def wrapper(self: PromptGenerator, *args: Any, **kwargs: Any) -> T:
        with cpu_threads_for(self.parameters):
            return method(self, *args, **kwargs)

    return wrapper


def cut_at_question(text: str) -> str:
    """``text`` up to a line that starts a new ``Q:`` block (nothing else cuts it)."""
    match = NEXT_QUESTION.search(text)
    return (text[: match.start()] if match else text).strip()


class PromptGenerator:
    """Batched greedy generation, self-consistency sampling and label ranking for one model."""

    def __init__(self, model: Any, tokenizer: Any, kind: str = "seq2seq", batch_size: int = 16,
                 progress: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.kind = kind
        self.batch_size = batch_size
        self.progress = progress
        self.use_chat_template = kind == "causal" and bool(getattr(tokenizer, "chat_template", None))
        params = getattr(model, "parameters", None)  # ONNX Runtime models have none: ORT sets its own threads
        self.parameters = sum(p.numel() for p in params()) if callable(params) else SMALL_MODEL
        self.stop_ids = stop_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]
        self.causal = ChatGenerator(model, tokenizer) if kind == "causal" else None

    @property
    def device(self) -> torch.device:
        return getattr(self.model, "device", torch.device("cpu"))

    def _texts(self, prompts: Sequence[str]) -> list[str]:
        if not self.use_chat_template:
            return list(prompts)
        return [self.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                   add_generation_prompt=True) for p in prompts]

    def _encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        texts = self._texts(prompts)
        extra = {"add_special_tokens": False} if self.use_chat_template else {}
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, **extra)
        return {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    def _texts_of(self, rows: list[list[int]]) -> list[str]:
        """Generated ids (new tokens only) -> texts, cut at the first stop id and at a new ``Q:``."""
        kept = [cut_at_stop(row, self.stop_ids) for row in rows]
        return [cut_at_question(t) for t in self.tokenizer.batch_decode(kept, skip_special_tokens=True)]

    def _generate(self, prompts: Sequence[str], max_new_tokens: int, repeat: int = 1, pick: Pick | None = None,
                  min_new_tokens: int = 0) -> list[str]:
        """Texts of ``prompts`` through the lm loop, each prompt decoded ``repeat`` times (adjacent rows)."""
        if self.causal is not None:
            enc = self.tokenizer(self._texts(prompts), add_special_tokens=not self.use_chat_template)
            ids = [row for row in enc["input_ids"] for _ in range(repeat)]  # n chains: the prompt n times
            gens = self.causal.generate_ids(ids, max_new_tokens=max_new_tokens, pick=pick,
                                            min_new_tokens=min_new_tokens)
            return self._texts_of([g.token_ids for g in gens])
        batch = self._encode(prompts)
        rows = seq2seq_loop(self.model, batch["input_ids"], batch["attention_mask"], max_new_tokens, self.stop_ids,
                            self.pad_id, repeat, pick, min_new_tokens)
        return self._texts_of(rows)

    def by_length(self, prompts: Sequence[str]) -> list[int]:
        """Prompt indices, longest first, so each batch holds prompts of similar length."""
        lengths = [len(ids) for ids in self.tokenizer(self._texts(prompts))["input_ids"]]
        return sorted(range(len(prompts)), key=lambda i: -lengths[i])

    def _batches(self, prompts: Sequence[str], size: int, desc: str) -> Any:
        order = self.by_length(prompts)
        chunks = [order[i:i + size] for i in range(0, len(order), size)]
        return tqdm(chunks, desc=desc, unit="batch", disable=not self.progress)

    @_threads
    @torch.no_grad()
    def greedy(self, prompts: Sequence[str], max_new_tokens: int, desc: str = "generating",
               min_new_tokens: int = 0) -> list[str]:
        """Greedy answers in the order of ``prompts`` (generated longest-first in batches)."""
        out: list[str] = [""] * len(prompts)
        for chunk in self._batches(prompts, self.batch_size, desc):
            texts = self._generate([prompts[i] for i in chunk], max_new_tokens, min_new_tokens=min_new_tokens)
            for i, text in zip(chunk, texts, strict=True):
                out[i] = text
        return out

    @_threads
    @torch.no_grad()
    def sample(self, prompts: Sequence[str], n: int, max_new_tokens: int, temperature: float, top_p: float,
               seed: int, desc: str = "sampling", min_new_tokens: int = 0) -> list[list[str]]:
        """``n`` sampled chains per prompt; seq2seq: the encoder runs once per prompt (see module doc).

        Batch ``b`` draws with ``seed + b``: the same seed and batch size draw the same chains.
        """
        out: list[list[str]] = [[] for _ in prompts]
        per_batch = max(1, self.batch_size // n)  # prompts per batch: n rows each
        for b, chunk in enumerate(self._batches(prompts, per_batch, desc)):
            pick = sampler(temperature, top_p, top_k=0, seed=seed + b)
            texts = self._generate([prompts[i] for i in chunk], max_new_tokens, n, pick, min_new_tokens)
            for j, i in enumerate(chunk):
                out[i] = texts[j * n:(j + 1) * n]
        return out

    @_threads
    @torch.no_grad()
    def rank(self, prompts: Sequence[str], options: Sequence[str], desc: str = "ranking") -> list[str]:
        """Per prompt, the option with the highest total log-probability of its tokens."""
        out: list[str] = [""] * len(prompts)
        option_ids = [self.tokenizer(o, add_special_tokens=self.kind == "seq2seq")["input_ids"] for o in options]
        for chunk in self._batches(prompts, self.batch_size, desc):
            enc = self._encode([prompts[i] for i in chunk])
            scores = torch.stack([self._option_logprob(enc, ids) for ids in option_ids], dim=1)  # (B, options)
            for i, best in zip(chunk, scores.argmax(dim=1).tolist(), strict=True):
                out[i] = options[best]
        return out

    def _option_logprob(self, enc: dict[str, torch.Tensor], ids: list[int]) -> torch.Tensor:
        batch = enc["input_ids"].shape[0]
        target = torch.tensor([ids] * batch, device=self.device)  # (B, K)
        if self.kind == "seq2seq" and hasattr(self.model, "teacher_logits"):  # ONNX Runtime
            logits = self.model.teacher_logits(enc["input_ids"], enc["attention_mask"], target)  # (B, K, V)
        elif self.kind == "seq2seq":
            logits = self.model(**enc, labels=target).logits  # (B, K, V)
        else:
            full = torch.cat([enc["input_ids"], target], dim=1)  # (B, S+K): left-padded prompt, then the option
            mask = torch.cat([enc["attention_mask"], torch.ones_like(target)], dim=1)
            logits = self.model(input_ids=full, attention_mask=mask).logits[:, -target.shape[1] - 1:-1]  # (B, K, V)
        logp = torch.log_softmax(logits.float(), dim=-1)
        return logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).sum(dim=1)  # (B,)


def load_prompt_generator(model_path: str | Path, backend: str, device: str, batch_size: int,
                          export_dir: str | Path | None = None, progress: bool = True) -> PromptGenerator:
    """A generator for ``model_path`` on ``backend`` (torch, or onnxruntime / tensorrt from ``export_dir``)."""
    from dlhw.core.devices import resolve_device
    from dlhw.families.prompting.model import load_folder

    if backend == "torch":
        loaded = load_folder(model_path, resolve_device(device))
        return PromptGenerator(loaded.model, loaded.tokenizer, loaded.kind, batch_size, progress)
    if backend not in ("onnxruntime", "tensorrt"):
        raise ConfigError(f"--backend {backend}: the prompting family runs on torch, onnxruntime or tensorrt")
    if backend == "tensorrt":
        from dlhw.backends.tensorrt import require_tensorrt

        require_tensorrt()  # before the path is read
    if export_dir is None or not (Path(export_dir) / "export.json").is_file():
        raise ConfigError(f"{export_dir}: no ONNX export; make one with `dlhw export RUN --onnx`")
    from transformers import AutoTokenizer

    from dlhw.backends import open_export
    from dlhw.lm.ort import OrtSeq2Seq

    export = open_export(export_dir, backend, device)
    model = OrtSeq2Seq(export.export_dir, providers_for=export.providers_for)
    return PromptGenerator(model, AutoTokenizer.from_pretrained(str(export_dir)), "seq2seq", batch_size, progress)
