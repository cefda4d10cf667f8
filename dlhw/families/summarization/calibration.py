"""Calibration batches for activation-aware pruning (``dlhw prune --method wanda``).

A family's ``Family.calibration`` names a function ``(run_dir, n_batches) -> list of forward
kwargs``: a few batches of the run's own training data, formatted exactly as in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

CALIBRATION_BATCH = 4


def _pad(examples: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)  # (B, T), right-padded
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        ids[row, : len(example)] = torch.tensor(example)
        mask[row, : len(example)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def summarization_calibration(run_dir: str | Path, n_batches: int) -> list[dict[str, Any]]:
    """Prompt + reference-summary ids of the first training examples, as the run was trained on them."""
    from transformers import AutoTokenizer

    from dlhw.config import from_dict
    from dlhw.core.runs import run_config_dict
    from dlhw.families.summarization.config import SummarizationConfig
    from dlhw.families.summarization.data import PromptBuilder, prepare_summaries
    from dlhw.families.summarization.model import read_prompt_info
    from dlhw.families.summarization.train import encode

    run_dir = Path(run_dir)
    config = from_dict(SummarizationConfig, run_config_dict(run_dir))
    info = read_prompt_info(run_dir / "model")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    splits = prepare_summaries(config.data, config.seed)
    builder = PromptBuilder(tokenizer, info["kind"], info["template"], info["max_input_tokens"], info["max_length"],
                            info["max_new_tokens"])
    pairs = encode(builder, splits, "train", config.data.train_reference, info["max_length"])
    pairs = pairs[: n_batches * CALIBRATION_BATCH]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return [_pad([p["input_ids"] for p in pairs[i: i + CALIBRATION_BATCH]], pad_id)
            for i in range(0, len(pairs), CALIBRATION_BATCH)]
