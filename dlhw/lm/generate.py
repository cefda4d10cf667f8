"""Greedy chat generation with left padding and the KV cache, one prompt or many at once.

A batch of prompts of different lengths is padded on the *left*, so every row's last prompt
token sits in the last column and generation appends in step; the attention mask hides the
pads and the position ids count from each row's first real token. Batched output therefore
equals one-prompt-at-a-time output token for token (tests/inference/test_chat.py). dlhw runs
its own decoding loop rather than ``generate``: peft's ``generate`` for prompt tuning puts the
virtual tokens before the pads and ignores position ids, so its answers change with padding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dlhw.errors import ConfigError
from dlhw.lm.template import ChatFormatter, Conversation


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


class ChatGenerator:
    """Greedy answers from a causal LM (plain or peft-wrapped) and its chat template."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 64, max_length: int = 4096,
                 pick: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.model = model.eval()
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

    @torch.no_grad()
    def generate_ids(self, prompts: list[list[int]], streamer: Any = None,
                     record: list[torch.Tensor] | None = None) -> list[Generation]:
        """Greedy answers (or ``pick``'s choice) to prompt token ids, decoded step by step with the KV
        cache (``record`` collects each step's (B, V) logits, for export parity checks).

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

        def forward(step: dict[str, Any], full_mask: torch.Tensor, positions: torch.Tensor, past: Any) -> tuple[Any, Any]:
            out = model(**step, attention_mask=full_mask, position_ids=positions, past_key_values=past, use_cache=True)
            return out.logits[:, -1], out.past_key_values  # (B, V)

        rows = greedy_loop(forward, inputs, mask, width, cache, self.max_new_tokens, self.stop_ids, self.pad_id,
                           streamer, record, self.pick)
        return [to_generation(row, self.tokenizer, self.stop_ids) for row in rows]

    def answer(self, prompts: list[str], system: str | None = None) -> list[Generation]:
        return self.generate([as_conversation(p, system) for p in prompts])


def as_conversation(prompt: str | Conversation, system: str | None = None) -> Conversation:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}, *messages]
    return messages


def greedy_loop(forward: Any, inputs: dict[str, Any], mask: Any, width: int, cache: Any, max_new_tokens: int,
                stop_ids: list[int], pad_id: int, streamer: Any = None,
                record: list[torch.Tensor] | None = None,
                pick: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[list[int]]:
    """Greedy decoding shared by every backend.

    ``forward(step_inputs, attention_mask, position_ids, cache) -> (last logits (B, V), cache)``;
    ``inputs`` are the first step's (ids or embeddings, ``width`` columns), ``mask`` covers
    everything attended to so far (a prefix cache too). Works on torch tensors (torch backend)
    and on numpy arrays wrapped by the caller (ONNX Runtime), through torch here. ``record``, when
    given, receives every step's (B, V) logits as float32 on the CPU. ``pick``, when given, chooses
    each step's (B,) tokens from the (B, V) logits instead of the argmax (sampling).
    """
    batch = mask.shape[0]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]  # (B, T) counted from the first real token
    logits, cache = forward(inputs, mask, positions, cache)
    done = torch.zeros(batch, dtype=torch.bool)
    stop = torch.tensor(stop_ids)
    new: list[torch.Tensor] = []
    for _ in range(max_new_tokens):
        if record is not None:
            record.append(torch.as_tensor(logits).float().cpu())  # (B, V)
        scores = torch.as_tensor(logits)
        token = (pick(scores) if pick is not None else scores.argmax(-1)).cpu()  # (B,)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        new.append(token)
        if streamer is not None:
            streamer.put(token)
        done |= torch.isin(token, stop)
        if bool(done.all()):
            break
        mask = torch.cat([mask, torch.ones((batch, 1), dtype=mask.dtype, device=mask.device)], 1)  # (B, P + T + t)
        positions = positions[:, -1:] + 1  # (B, 1)
        logits, cache = forward({"input_ids": token[:, None].to(mask.device)}, mask, positions, cache)
    if streamer is not None:
        streamer.end()
    return torch.stack(new, dim=1).tolist() if new else [[] for _ in range(batch)]  # (B, new)
