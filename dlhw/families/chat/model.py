"""The chat model: a causal-LM base (a Hub model, or the tiny base of :mod:`dlhw.families.chat.base`)
adapted by one PEFT method (:mod:`dlhw.lm.peft`) or partial fine-tuning, saved and loaded as a
language-model run (:mod:`dlhw.lm.run`: the adapter and its base, or the whole model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlhw.lm.run import load_chat_run


def load_run_model(run_dir: str | Path) -> tuple[Any, str]:
    """A chat run's model as trained (adapters, or all but the chosen layers frozen), and a label."""
    loaded = load_chat_run(run_dir, "cpu", trainable=True)
    return loaded.model, f"{run_dir} ({loaded.info['method']})"
