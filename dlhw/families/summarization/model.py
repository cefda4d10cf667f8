"""Summarization models: the prompt format a model gets, and a run's model on disk.

A summarization run is saved like a chat run (:mod:`dlhw.lm.run`: the whole model for
``method.kind = full``, the adapter plus its base for LoRA), so the chat exporter and generation
loop serve it unchanged; ``model/summarize.json`` adds what prompting needs: the document kind,
the template (plain or chat), the input token limit and ``max_new_tokens`` chosen from the data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlhw.core.atomic import write_json_atomic
from dlhw.errors import ConfigError

PROMPT_FILE = "summarize.json"
INSTRUCT = re.compile(r"(instruct|-it\b|-it-|chat)", re.IGNORECASE)


def resolve_template(template: str, name: str | None) -> str:
    """plain or chat: ``auto`` = chat for instruct / -it / chat models, plain for base models."""
    if template != "auto":
        return template
    return "chat" if name and INSTRUCT.search(name) else "plain"


def save_prompt_info(model_dir: Path, info: dict[str, Any]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(model_dir / PROMPT_FILE, info)


def read_prompt_info(folder: Path) -> dict[str, Any]:
    path = folder / PROMPT_FILE
    if not path.is_file():
        raise ConfigError(f"{folder}: no {PROMPT_FILE}; not a summarization run or export")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class LoadedSummarizer:
    model: Any
    tokenizer: Any
    config: Any
    prompt: dict[str, Any]
    """kind, template, max_input_tokens, max_new_tokens, max_length."""


def is_summarization_run(path: Path) -> bool:
    return (path / "model" / PROMPT_FILE).is_file()


def load_summarization_run(run_dir: str | Path, device: str = "auto", trainable: bool = False,
                           dtype: str | None = None) -> LoadedSummarizer:
    """The fine-tuned model of a summarize-sft / summarize-lora run, ready to generate (``dtype``: see
    :func:`dlhw.lm.run.load_chat_run`)."""
    from dlhw.lm.run import load_chat_run

    run_dir = Path(run_dir)
    if not is_summarization_run(run_dir):
        raise ConfigError(f"{run_dir}: not a finished summarization run (no model/{PROMPT_FILE})")
    loaded = load_chat_run(run_dir, device, trainable=trainable, dtype=dtype)
    return LoadedSummarizer(loaded.model, loaded.tokenizer, loaded.config, read_prompt_info(run_dir / "model"))


def load_run_model(run_dir: str | Path) -> tuple[Any, str]:
    """A run's model as trained (``dlhw model summary``)."""
    loaded = load_summarization_run(run_dir, "cpu", trainable=True)
    return loaded.model, f"{run_dir} ({loaded.config.method.kind})"
