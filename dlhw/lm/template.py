"""Conversations -> token ids through the tokenizer's chat template, loss on assistant tokens only.

The template is rendered as text; the characters of each assistant turn (its content and the
template's end-of-turn marker, so the model learns to stop) are located by rendering the
conversation up to that turn twice -- with the generation prompt (where the answer starts) and
with the turn (where it ends). Tokens whose first character lies in such a span get their id
as label; every other token gets -100. This works for any template, including those without
``{% generation %}`` markers (Gemma, Llama 3).

Gemma's template has no system role and raises on one: :class:`ChatFormatter` then merges the
system message into the first user turn.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import torch

from dlhw.errors import DataError

IGNORE = -100
Conversation = list[dict[str, str]]
"""A conversation: ``{"role", "content"}`` messages in order."""


def template_supports_system(tokenizer: Any) -> bool:
    marker = "dlhw-system-probe"
    probe = [{"role": "system", "content": marker}, {"role": "user", "content": "hello"}]
    try:
        text = tokenizer.apply_chat_template(probe, tokenize=False)
    except Exception:  # noqa: BLE001 - jinja raise_exception: "System role not supported"
        return False
    return marker in text


def merge_system(messages: Conversation) -> Conversation:
    """System message folded into the first user turn (for templates without a system role)."""
    if not messages or messages[0]["role"] != "system":
        return messages
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    for msg in rest:
        if msg["role"] == "user":
            msg["content"] = f"{system}\n\n{msg['content']}"
            return rest
    return [{"role": "user", "content": system}, *rest]


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


@dataclass
class LengthStats:
    count: int = 0
    truncated: int = 0
    """Conversations cut at max_length (kept if an assistant token survived)."""
    dropped: int = 0
    """Conversations with no assistant token left after the cut."""
    lengths: list[int] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        ls = sorted(self.lengths) or [0]
        return {
            "conversations": self.count, "truncated": self.truncated, "dropped": self.dropped,
            "tokens_mean": round(statistics.fmean(ls), 1), "tokens_p50": ls[len(ls) // 2],
            "tokens_p95": ls[min(len(ls) - 1, int(0.95 * len(ls)))], "tokens_max": ls[-1],
        }


class ChatFormatter:
    """Formats conversations with ``tokenizer``'s chat template for training and generation."""

    def __init__(self, tokenizer: Any, max_length: int):
        if tokenizer.chat_template is None:
            raise DataError("the tokenizer has no chat template; use an -Instruct / -it model")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.system_role = template_supports_system(tokenizer)

    def prepare(self, messages: Conversation) -> Conversation:
        return messages if self.system_role else merge_system(messages)

    def render(self, messages: Conversation, generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def assistant_spans(self, messages: Conversation) -> tuple[str, list[tuple[int, int]]]:
        """The rendered text and the ``[start, end)`` character span of every assistant turn."""
        text = self.render(messages)
        spans = []
        for i, msg in enumerate(messages):
            if msg["role"] != "assistant":
                continue
            before = self.render(messages[:i], generation_prompt=True)
            through = self.render(messages[: i + 1])
            if not (text.startswith(before) and text.startswith(through)):
                raise DataError("the chat template does not render a conversation's turns as prefixes "
                                "of the whole; the assistant-only loss mask cannot be located")
            spans.append((len(before), len(through)))
        return text, spans

    def encode(self, messages: Conversation) -> Encoded:
        """Token ids and labels (-100 outside assistant turns), cut at ``max_length``."""
        messages = self.prepare(messages)
        text, spans = self.assistant_spans(messages)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        labels = [
            tok if any(s <= start < e for s, e in spans) else IGNORE
            for tok, (start, _) in zip(ids, enc["offset_mapping"], strict=True)
        ]
        truncated = len(ids) > self.max_length
        return Encoded(ids[: self.max_length], labels[: self.max_length], truncated)

    def encode_all(self, conversations: list[Conversation], stats: LengthStats | None = None) -> list[dict[str, list[int]]]:
        out = []
        for conv in conversations:
            enc = self.encode(conv)
            if stats is not None:
                stats.count += 1
                stats.truncated += enc.truncated
                stats.lengths.append(len(enc.input_ids))
            if all(label == IGNORE for label in enc.labels):
                if stats is not None:
                    stats.dropped += 1
                continue
            out.append({"input_ids": enc.input_ids, "labels": enc.labels})
        return out

    def prompt_ids(self, messages: Conversation) -> list[int]:
        """Ids of ``messages`` followed by the generation prompt (the answer comes next)."""
        text = self.render(self.prepare(messages), generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass
class ChatCollator:
    """Pads a batch to its longest example (dynamic padding) or, with ``pad_to``, to a fixed length."""

    pad_id: int
    pad_to: int | None = None
    pad_to_multiple_of: int | None = None

    def __call__(self, items: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        longest = max(len(it["input_ids"]) for it in items)
        width = self.pad_to or longest
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)  # (B, T) right padding
        labels = torch.full((len(items), width), IGNORE, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(items), width), dtype=torch.long)  # (B, T)
        for row, it in enumerate(items):
            n = len(it["input_ids"])
            ids[row, :n] = torch.tensor(it["input_ids"])
            labels[row, :n] = torch.tensor(it["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
