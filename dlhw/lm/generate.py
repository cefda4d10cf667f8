"""Language-model generation: left-padded causal batches, seq2seq with the encoder run once.

Both are step functions over dlhw's one decoding loop (:func:`dlhw.lm.decoding.decode_tokens`:
greedy, or sampled with :func:`dlhw.lm.sampling.sampler`; stop ids; pads after a row's end):

- :func:`causal_loop` -- a batch of prompts of different lengths is padded on the *left*, so every
  row's last prompt token sits in the last column and generation appends in step; the attention
  mask hides the pads and the position ids count from each row's first real token. Batched output
  therefore equals one-prompt-at-a-time output token for token (tests/lm/test_generate.py).
  :class:`ChatGenerator` runs it on torch, :class:`dlhw.lm.ort.OrtChatGenerator` on ONNX Runtime.
- :func:`seq2seq_loop` -- the encoder runs once, then the decoder steps from ``decoder_start_token_id``
  with its KV cache, through a :class:`Seq2SeqRunner` (:class:`TorchSeq2Seq`, or ``dlhw.lm.ort.OrtSeq2Seq``).
  For several sampled chains per prompt the first decoder step also runs once per prompt (it projects
  the encoder states into every layer's cross-attention keys/values), and the encoder states, that
  cache and the first logits are then repeated for the chains.

dlhw runs its own loop rather than ``generate``: peft's ``generate`` for prompt tuning puts the
virtual tokens before the pads and ignores position ids, so its answers change with padding. Greedy
output equals ``generate``'s token for token (tests/lm/test_generate.py); the generation config's
other logits processors (repetition penalty, forced tokens, ...) are not applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch

from dlhw.errors import ConfigError
from dlhw.lm.decoding import decode_tokens
from dlhw.lm.sampling import Pick
from dlhw.lm.template import ChatFormatter, Conversation

T = TypeVar("T")

CausalForward = Callable[[dict[str, Any], Any, Any, Any], tuple[torch.Tensor, Any]]
"""``forward(step_inputs, attention_mask, position_ids, cache) -> (last logits (B, V), cache)``."""


@dataclass
class Generation:
    text: str
    token_ids: list[int]


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """EOS of the tokenizer plus the generation config's (``<end_of_turn>``, ``<|eot_id|>``)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)``, both (B, T): each prompt right-aligned, pads on the left."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)  # (B, T)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(p)
        mask[row, width - len(p):] = 1
    return ids, mask


def cut_at_stop(row: list[int], stop_ids: list[int]) -> list[int]:
    """Generated ids up to (not including) the first stop token."""
    for i, tok in enumerate(row):
        if tok in stop_ids:
            return row[:i]
    return row


def to_generation(row: list[int], tokenizer: Any, stop_ids: list[int]) -> Generation:
    """The answer of one row of generated ids: cut at the first stop token, decoded."""
    kept = cut_at_stop(row, stop_ids)
    return Generation(tokenizer.decode(kept, skip_special_tokens=True).strip(), kept)


def causal_loop(forward: CausalForward, inputs: dict[str, Any], mask: Any, width: int, cache: Any,
                max_new_tokens: int, stop_ids: list[int], pad_id: int, streamer: Any = None,
                record: list[torch.Tensor] | None = None, pick: Pick | None = None,
                min_new_tokens: int = 0) -> list[list[int]]:
    """New token ids of a left-padded causal-LM batch, through :func:`~dlhw.lm.decoding.decode_tokens`.

    ``forward(step_inputs, attention_mask, position_ids, cache) -> (last logits (B, V), cache)``;
    ``inputs`` are the first step's (ids or embeddings, ``width`` columns), ``mask`` covers
    everything attended to so far (a prefix cache too). Works on torch tensors (torch backend)
    and on numpy arrays wrapped by the caller (ONNX Runtime). ``streamer``, ``record``, ``pick``
    and ``min_new_tokens`` are :func:`~dlhw.lm.decoding.decode_tokens`'s.
    """
    batch = mask.shape[0]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]  # (B, T) counted from the first real token
    logits, cache = forward(inputs, mask, positions, cache)  # (B, V)

    def step(token: torch.Tensor) -> torch.Tensor:
        nonlocal mask, positions, cache
        mask = torch.cat([mask, torch.ones((batch, 1), dtype=mask.dtype, device=mask.device)], 1)  # (B, P + T + t)
        positions = positions[:, -1:] + 1  # (B, 1)
        logits, cache = forward({"input_ids": token[:, None].to(mask.device)}, mask, positions, cache)
        return torch.as_tensor(logits)  # (B, V)

    out = decode_tokens(step, torch.as_tensor(logits), max_new_tokens, stop_ids, pad_id, pick, min_new_tokens,
                        streamer, record)
    return out.tokens.tolist()  # (B, new)


def model_forward(model: Any) -> CausalForward:
    """The :data:`CausalForward` of a Hugging Face causal LM (KV cache, explicit position ids).

    Only the last position's logits are computed (``logits_to_keep=1``): at prefill the output
    layer runs once per row, not once per prompt token.
    """
    from dlhw.lm.onnx import cache_argument, returned_cache

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cache_kw = cache_argument(base)

    def forward(step: dict[str, Any], mask: torch.Tensor, positions: torch.Tensor, past: Any) -> tuple[Any, Any]:
        out = model(**step, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                    **{cache_kw: past})
        return out.logits[:, -1], returned_cache(out)  # (B, V)

    return forward


LENGTH_WINDOW = 8
"""Batch verbs hand a generator this many batches at once, which it sorts by prompt length and
splits (:func:`in_length_order`): little padding, a killed job loses at most one window."""


def in_length_order(prompts: list[list[int]], batch_size: int | None,
                    run: Callable[[list[list[int]]], list[T]]) -> list[T]:
    """``run`` over batches of at most ``batch_size`` prompts of similar length (longest first, so a
    memory problem shows at once); results in the order of ``prompts``. ``None``: one batch as given."""
    if not batch_size or len(prompts) <= batch_size:
        return run(prompts)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out: dict[int, T] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        out.update(zip(chunk, run([prompts[i] for i in chunk]), strict=True))
    return [out[i] for i in range(len(prompts))]


class Seq2SeqRunner(Protocol):
    """What :func:`seq2seq_loop` needs of an encoder-decoder LM (torch or ONNX Runtime)."""

    decoder_start_token_id: int

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        """Encoder states of (B, S) prompts (whatever :meth:`step` reads)."""
        ...

    def repeat(self, memory: Any, n: int) -> Any:
        """``memory`` with every row repeated ``n`` times (rows ``i * n ..`` are prompt ``i``'s)."""
        ...

    def repeat_cache(self, cache: Any, n: int) -> Any:
        """A cache from :meth:`step` with every row repeated ``n`` times, as :meth:`repeat` repeats ``memory``."""
        ...

    def step(self, tokens: torch.Tensor, memory: Any, cache: Any) -> tuple[torch.Tensor, Any]:
        """Logits (B, T, V) of decoder ids (B, T) after ``cache`` (None at the start), and the new cache."""
        ...


class TorchSeq2Seq:
    """A Hugging Face seq2seq LM as a :class:`Seq2SeqRunner`."""

    def __init__(self, model: Any):
        from dlhw.lm.onnx import cache_argument

        self.model = model
        start = getattr(getattr(model, "generation_config", None), "decoder_start_token_id", None)
        start = model.config.decoder_start_token_id if start is None else start
        if start is None:
            raise ConfigError(f"{type(model).__name__}: no decoder_start_token_id in its (generation) config")
        self.decoder_start_token_id = int(start)
        self.cache_kw = cache_argument(model)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        hidden = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return hidden, attention_mask  # (B, S, H), (B, S)

    def repeat(self, memory: Any, n: int) -> Any:
        hidden, mask = memory
        return hidden.repeat_interleave(n, dim=0), mask.repeat_interleave(n, dim=0)  # (B*n, S, H), (B*n, S)

    def repeat_cache(self, cache: Any, n: int) -> Any:
        cache.batch_repeat_interleave(n)  # an EncoderDecoderCache: self- and cross-attention keys/values, in place
        return cache

    def step(self, tokens: torch.Tensor, memory: Any, cache: Any) -> tuple[torch.Tensor, Any]:
        from transformers.modeling_outputs import BaseModelOutput

        from dlhw.lm.onnx import returned_cache

        hidden, mask = memory
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=mask,
                         decoder_input_ids=tokens, use_cache=True, **{self.cache_kw: cache})
        return out.logits, returned_cache(out)  # (B, T, V)


def seq2seq_runner(model: Any) -> Seq2SeqRunner:
    """``model`` itself when it is a runner already (ONNX Runtime), else the torch one around it."""
    return model if hasattr(model, "encode") and hasattr(model, "step") else TorchSeq2Seq(model)


@torch.no_grad()
def seq2seq_loop(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                 stop_ids: list[int], pad_id: int, repeat: int = 1, pick: Pick | None = None,
                 min_new_tokens: int = 0) -> list[list[int]]:
    """New token ids of an encoder-decoder LM: the encoder once, then decoder steps with the KV cache.

    Args:
        model: a Hugging Face seq2seq LM, or a :class:`Seq2SeqRunner` (``dlhw.lm.ort.OrtSeq2Seq``).
        input_ids: (B, S) prompts, padded on either side (the encoder mask hides the pads).
        attention_mask: (B, S).
        repeat: decode each prompt this many times (sampled chains): its encoder output and the cache
            of the first step (cross-attention keys/values included) are repeated ``repeat`` times along
            the batch, rows ``i * repeat ..`` belong to prompt ``i``.
        max_new_tokens, stop_ids, pad_id, pick, min_new_tokens: :func:`~dlhw.lm.decoding.decode_tokens`'s.
    """
    runner = seq2seq_runner(model)
    memory = runner.encode(input_ids, attention_mask)
    cache = None

    def step(token: torch.Tensor) -> torch.Tensor:
        nonlocal cache
        logits, cache = runner.step(token[:, None], memory, cache)
        return torch.as_tensor(logits)[:, -1]  # (B, V)

    first = step(torch.full((input_ids.shape[0],), runner.decoder_start_token_id, dtype=torch.long,
                            device=input_ids.device))
    if repeat > 1:  # the encoder and the cross-attention projections ran once per prompt; the chains share them
        memory = runner.repeat(memory, repeat)
        cache = runner.repeat_cache(cache, repeat)
        first = first.repeat_interleave(repeat, dim=0)  # (B * repeat, V)
    return decode_tokens(step, first, max_new_tokens, stop_ids, pad_id, pick, min_new_tokens).tokens.tolist()


class ChatGenerator:
    """Greedy (or sampled) answers from a causal LM (plain or peft-wrapped) and its chat template."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 64, max_length: int = 4096,
                 pick: Pick | None = None, batch_size: int | None = None, static_cache: bool = False,
                 compile: bool = False):
        self.model = model.eval()
        self.batch_size = batch_size
        """Prompts per decoding batch: more prompts than this are sorted by length and split."""
        self.static_cache = static_cache
        """Decode into a preallocated ``StaticCache`` (fixed shapes: what ``torch.compile`` needs)."""
        self.compiled: dict[int, Any] | None = None
        """``torch.compile``d models by ``id`` of the module decoded (the base under soft prompts); None: eager."""
        if compile:
            self.use_compile()
        self.tokenizer = tokenizer
        # a base model's tokenizer may have no chat template: it then generates from token ids only
        self.formatter = ChatFormatter(tokenizer, max_length) if tokenizer.chat_template is not None else None
        self.max_new_tokens = max_new_tokens
        self.pick = pick
        self.stop_ids = stop_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def use_compile(self) -> None:
        """Decode steps through ``torch.compile(mode="reduce-overhead")`` over a static cache (CUDA only)."""
        if self.device.type != "cuda":
            raise ConfigError("--compile (static cache + torch.compile with CUDA graphs) runs on a CUDA GPU; "
                              f"this model is on {self.device.type}: leave --compile out")
        self.static_cache = True
        self.compiled = {}

    def left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = left_pad(prompts, self.pad_id)
        return ids.to(self.device), mask.to(self.device)

    def _soft_prompt(self) -> str | None:
        """``prompt`` (virtual-token embeddings), ``prefix`` (key/value prefixes) or None."""
        config = getattr(self.model, "peft_config", {}).get(getattr(self.model, "active_adapter", "default"))
        if config is None or not config.is_prompt_learning:
            return None
        return "prefix" if config.peft_type.value == "PREFIX_TUNING" else "prompt"

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        if self.formatter is None:
            raise ConfigError("the tokenizer has no chat template: give prompts as token ids (generate_ids)")
        return self.formatter.prompt_ids(conversation)

    def generate(self, conversations: list[Conversation], streamer: Any = None,
                 record: list[torch.Tensor] | None = None) -> list[Generation]:
        """Answers of conversations formatted with the chat template (see :meth:`generate_ids`)."""
        return self.generate_ids([self.prompt_ids(c) for c in conversations], streamer, record)

    def generate_ids(self, prompts: list[list[int]], streamer: Any = None,
                     record: list[torch.Tensor] | None = None, max_new_tokens: int | None = None,
                     pick: Pick | None = None, min_new_tokens: int = 0) -> list[Generation]:
        """Greedy answers (or ``pick``'s choice) to prompt token ids, decoded step by step with the KV
        cache (``record`` collects each step's (B, V) logits, for export parity checks).
        ``max_new_tokens`` and ``pick`` given here override the generator's for this call. More
        prompts than ``batch_size`` decode in batches of similar length (:func:`in_length_order`).
        """
        return in_length_order(prompts, self.batch_size, lambda batch: self._generate_batch(
            batch, streamer, record, max_new_tokens, pick, min_new_tokens))

    @torch.no_grad()
    def _generate_batch(self, prompts: list[list[int]], streamer: Any, record: list[torch.Tensor] | None,
                        max_new_tokens: int | None, pick: Pick | None, min_new_tokens: int) -> list[Generation]:
        """One left-padded batch.

        Position ids come from the attention mask, so a row's numbers do not depend on how much
        padding the batch gave it. Soft prompts sit right before each row's first real token
        (prompt tuning, P-tuning: as embeddings; prefix tuning: as the initial key/values), where
        training put them.
        """
        ids, mask = self.left_pad(prompts)  # (B, T)
        batch = ids.shape[0]
        soft = self._soft_prompt()
        model = self.model.get_base_model() if soft else self.model
        inputs: dict[str, Any] = {"input_ids": ids}
        cache = None
        if soft == "prompt":
            virtual = self.model.get_prompt(batch_size=batch)  # (B, n, H)
            words = model.get_input_embeddings()(ids)  # (B, T, H)
            n, width = virtual.shape[1], ids.shape[1]
            embeds = torch.zeros((batch, n + width, words.shape[-1]), dtype=words.dtype, device=words.device)
            new_mask = torch.zeros((batch, n + width), dtype=mask.dtype, device=mask.device)
            for row in range(batch):
                pads = int((mask[row] == 0).sum())
                embeds[row, :pads] = words[row, :pads]  # (pads, H) pad embeddings, masked out
                embeds[row, pads:pads + n] = virtual[row].to(words.dtype)  # (n, H) virtual tokens
                embeds[row, pads + n:] = words[row, pads:]  # (T - pads, H) the prompt
                new_mask[row, pads:] = 1
            inputs, mask = {"inputs_embeds": embeds}, new_mask
        elif soft == "prefix":
            cache = self.model.get_prompt(batch_size=batch)  # key/values of n virtual positions
            n = self.model.peft_config[self.model.active_adapter].num_virtual_tokens
            mask = torch.cat([torch.ones((batch, n), dtype=mask.dtype, device=mask.device), mask], dim=1)
        width = next(iter(inputs.values())).shape[1]
        new = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        forward = model_forward(model)
        if self.static_cache:
            forward, cache = self._static_forward(model, forward, mask.shape[1] + new, cache)
        rows = causal_loop(forward, inputs, mask, width, cache, new, self.stop_ids, self.pad_id, streamer, record,
                           pick or self.pick, min_new_tokens)
        return [to_generation(row, self.tokenizer, self.stop_ids) for row in rows]

    def _static_forward(self, model: Any, eager: CausalForward, length: int, prefix: Any) -> tuple[CausalForward, Any]:
        """A forward over a ``StaticCache`` of ``length`` slots: masks padded to it; decode steps (one
        token) through the compiled model when ``compile`` is on, prefill eager."""
        from transformers import StaticCache

        if prefix is not None:
            raise ConfigError("a static cache does not take a prefix-tuning prefix: decode it with the dynamic cache")
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        cache = StaticCache(config=base.config, max_cache_len=length)
        compiled = eager
        if self.compiled is not None:  # the module this batch decodes with (the base model under soft prompts)
            if id(model) not in self.compiled:
                self.compiled[id(model)] = torch.compile(model, mode="reduce-overhead", fullgraph=False)
            compiled = model_forward(self.compiled[id(model)])

        def forward(step: dict[str, Any], mask: torch.Tensor, positions: torch.Tensor, past: Any) -> tuple[Any, Any]:
            full = torch.nn.functional.pad(mask, (0, length - mask.shape[1]))  # (B, length): unwritten slots hidden
            one = next(iter(step.values())).shape[1] == 1
            return (compiled if one else eager)(step, full, positions, past)

        return forward, cache

    def answer(self, prompts: list[str], system: str | None = None) -> list[Generation]:
        return self.generate([as_conversation(p, system) for p in prompts])


def as_conversation(prompt: str | Conversation, system: str | None = None) -> Conversation:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}, *messages]
    return messages
