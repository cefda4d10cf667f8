"""Greedy chat generation with left padding, one prompt or many at once (torch backend).

A batch of prompts of different lengths is padded on the *left*, so every row's last prompt
token sits in the last column and generation appends in step; the attention mask hides the
pads and the position ids count from each row's first real token. Batched output therefore
equals one-prompt-at-a-time output token for token (tests/inference/test_chat.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dlhw.data.chat_format import ChatFormatter
from dlhw.data.conversations import Conversation
from dlhw.errors import ConfigError


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


class ChatGenerator:
    """Greedy answers from a causal LM (plain or peft-wrapped) and its chat template."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 64, max_length: int = 4096):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.formatter = ChatFormatter(tokenizer, max_length)
        self.max_new_tokens = max_new_tokens
        self.stop_ids = stop_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)  # (B, T)
        for row, p in enumerate(prompts):
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        return ids.to(self.device), mask.to(self.device)

    def cut(self, row: list[int]) -> list[int]:
        """Generated ids up to (not including) the first stop token."""
        for i, tok in enumerate(row):
            if tok in self.stop_ids:
                return row[:i]
        return row

    @torch.no_grad()
    def generate(self, conversations: list[Conversation], streamer: Any = None) -> list[Generation]:
        prompts = [self.formatter.prompt_ids(c) for c in conversations]
        ids, mask = self.left_pad(prompts)
        out = self.model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=self.max_new_tokens, do_sample=False,
            eos_token_id=self.stop_ids, pad_token_id=self.pad_id, streamer=streamer,
        )  # (B, T + new)
        new = out[:, ids.shape[1]:].tolist()
        gens = []
        for row in new:
            kept = self.cut(row)
            gens.append(Generation(self.tokenizer.decode(kept, skip_special_tokens=True).strip(), kept))
        return gens

    def answer(self, prompts: list[str], system: str | None = None) -> list[Generation]:
        return self.generate([as_conversation(p, system) for p in prompts])


def as_conversation(prompt: str | Conversation, system: str | None = None) -> Conversation:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}, *messages]
    return messages


def read_prompts(path: Path) -> list[tuple[str, Conversation]]:
    """``(key, messages)`` per prompt. ``.txt``: one prompt per non-empty line, key ``FILE:LINE``.
    ``.jsonl``: per line ``{"prompt": ...}`` or ``{"messages": [...]}`` (optional ``"id"``) or a list."""
    from dlhw.data.conversations import _messages

    if not path.is_file():
        raise ConfigError(f"--prompts {path}: no such file")
    out = []
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        key = f"{path.name}:{lineno}"
        if path.suffix.lower() != ".jsonl":
            out.append((key, as_conversation(line.strip())))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{lineno}:{err.colno}: not valid JSON ({err.msg})") from None
        if isinstance(record, dict) and "id" in record:
            key = str(record["id"])
        if isinstance(record, dict) and "prompt" in record:
            out.append((key, as_conversation(str(record["prompt"]))))
        else:
            out.append((key, _messages(record, f"{path}:{lineno}")))
    keys = [k for k, _ in out]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--prompts {path}: duplicate ids; each prompt needs its own id")
    return out
