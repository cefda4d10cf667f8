"""Chat prompts from files, and the chat family's generator (torch run or ONNX export)."""

from __future__ import annotations

from pathlib import Path

from dlhw.core.inputs import InputItem, convert_values, read_inputs, text_field
from dlhw.errors import ConfigError
from dlhw.lm.generate import as_conversation
from dlhw.lm.ort import load_generator as load_chat_generator
from dlhw.lm.template import Conversation

__all__ = ["load_chat_generator", "read_prompts"]


def read_prompts(path: Path) -> list[InputItem]:
    """The prompts of a ``--prompts`` file, read by the rules of :mod:`dlhw.core.inputs`; each
    usable item's value is its conversation.

    ``.txt``: one prompt per line, key ``FILE:LINE`` (the file's name). ``.jsonl``: per line
    ``{"prompt": ...}``, ``{"messages": [...]}`` or a list of messages, keyed by its ``"id"`` when
    it has one. An empty, non-UTF-8 or malformed line is an error item (one error record), not an
    abort; a repeated id is a ConfigError before anything runs.
    """
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

    # keyed by the file's name, not its path: the one --prompts file needs no more to be told apart
    return convert_values(read_inputs(path, id_field="id", label=path.name), conversation)
