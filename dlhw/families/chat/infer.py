"""Chat prompts from files, and the chat family's generator (torch run or ONNX export)."""

from __future__ import annotations

import json
from pathlib import Path

from dlhw.errors import ConfigError
from dlhw.lm.generate import as_conversation
from dlhw.lm.ort import load_generator as load_chat_generator
from dlhw.lm.template import Conversation

__all__ = ["load_chat_generator", "read_prompts"]


def read_prompts(path: Path) -> list[tuple[str, Conversation]]:
    """``(key, messages)`` per prompt. ``.txt``: one prompt per non-empty line, key ``FILE:LINE``.
    ``.jsonl``: per line ``{"prompt": ...}`` or ``{"messages": [...]}`` (optional ``"id"``) or a list."""
    from dlhw.families.chat.data import parse_messages

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
            out.append((key, parse_messages(record, f"{path}:{lineno}")))
    keys = [k for k, _ in out]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--prompts {path}: duplicate ids; each prompt needs its own id")
    return out
