"""Chat prompts from files, and the chat family's generator (torch run or ONNX export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlhw.core.inputs import InputItem, convert_values, read_inputs, text_field
from dlhw.errors import ConfigError
from dlhw.lm.generate import as_conversation
from dlhw.lm.ort import load_generator as load_chat_generator
from dlhw.lm.template import Conversation

__all__ = ["load_chat_generator", "read_prompts"]


def read_prompts(path: Path) -> list[InputItem]:
    """The prompts of a ``--prompts`` file, read by the rules of :mod:`dlhw.core.inputs`; each
    usable item's value is its conversation.

    ``.txt``: one prompt per line, key ``FILE:LINE`` (the path as given, so that answers to ``a/p.txt``
    and ``b/p.txt`` in one output are told apart). ``.jsonl``: per line
    ``{"prompt": ...}``, ``{"messages": [...]}`` or a list of messages, keyed by its ``"id"`` when
    it has one (a string; another ``"id"`` makes the line an error item keyed by its ``FILE:LINE``).
    An empty, non-UTF-8 or malformed line is an error item (one error record), not an abort; a
    repeated id is a ConfigError before anything runs.
    """
    import dataclasses
    import json

    from dlhw.families.chat.data import parse_messages

    if not path.is_file():
        raise ConfigError(f"--prompts {path}: no such file")

    def conversation(item: InputItem) -> Conversation:
        value = item.value
        if isinstance(value, str):  # a .txt line
            return as_conversation(value.strip())
        if isinstance(value, dict) and "prompt" in value:
            return as_conversation(text_field(value, ("prompt",)).strip())
        messages = parse_messages(value, item.where)
        if not messages:
            raise ValueError("no messages")
        return messages

    def checked_id(item: InputItem) -> InputItem:
        # the answers are keyed by the id: one that is not text would be keyed by its Python spelling
        ident = item.value.get("id") if item.error is None and isinstance(item.value, dict) else None
        if ident is None or isinstance(ident, str):
            return item
        return dataclasses.replace(item, key=item.where, value=None,
                                   error=f'"id" must be a string, got {json.dumps(ident)}')

    return convert_values([checked_id(item) for item in read_inputs(path, id_field="id")], conversation)


class ChatPredictor:
    """``dlhw chat --prompts``'s predictor: a prompt (text or messages) -> ``{"prompt", "answer", "tokens"}``."""

    result_key = "answer"

    def __init__(self, generator: Any, system: str | None = None):
        self.generator = generator
        self.system = system
        self.tokens = 0

    def load(self, key: str, raw: Any) -> Conversation:
        return as_conversation(raw, self.system)

    def predict(self, batch: list[Conversation]) -> list[dict[str, Any]]:
        gens = self.generator.generate(batch)
        self.tokens += sum(len(g.token_ids) for g in gens)
        return [{"prompt": conv[-1]["content"], "answer": g.text, "tokens": len(g.token_ids)}
                for conv, g in zip(batch, gens, strict=True)]

    def throughput(self, seconds: float) -> str | None:
        return f"{self.tokens} tokens generated in {seconds:.1f} s ({self.tokens / max(seconds, 1e-9):.1f} tokens/s)"


def open_predictor(path: str, backend: str = "torch", device: str = "auto", max_new_tokens: int = 128,
                   int8: bool = False, system: str | None = None, dtype: str = "auto") -> ChatPredictor:
    """The chat family's batch predictor for a run (torch, in ``dtype``: see
    :func:`~dlhw.core.devices.inference_dtype`) or an export (onnxruntime, tensorrt)."""
    from dlhw.lm.run import chat_run_generator, is_chat_run

    if backend == "torch" and not int8 and is_chat_run(Path(path)):
        return ChatPredictor(chat_run_generator(path, device, dtype, max_new_tokens), system)
    # exports, and the refusals (--int8 on torch, an export directory on torch)
    return ChatPredictor(load_chat_generator(path, backend, device, max_new_tokens, int8), system)
