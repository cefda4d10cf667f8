"""One parity check for exported language models: ONNX Runtime against torch, token for token.

The torch model decodes the check inputs greedily first, recording every step's (B, V) logits;
the export decodes the same inputs. The export is refused if one greedy token differs or the
largest logit difference over all steps exceeds the tolerance; otherwise the report says how
close they were.
"""

from __future__ import annotations

from typing import Any

import torch

from dlhw.errors import DlhwError


def compare_generations(torch_tokens: list[list[int]], torch_logits: list[torch.Tensor], ort_tokens: list[list[int]],
                        ort_logits: list[torch.Tensor], atol: float, unit: str = "prompt") -> dict[str, Any]:
    """The parity report (``atol``, counts, ``max_abs_diff``, a one-line ``summary``); raises
    :class:`DlhwError` naming the first differing ``unit`` or the measured logit difference."""
    total = len(torch_tokens)
    differ = [i for i, (a, b) in enumerate(zip(torch_tokens, ort_tokens, strict=True)) if a != b]
    if differ:
        i = differ[0]
        raise DlhwError(f"ONNX export differs from torch: greedy tokens of {len(differ)}/{total} {unit}s differ "
                        f"(first: {unit} {i}, torch {torch_tokens[i][:8]} vs ORT {ort_tokens[i][:8]})")
    diff = max(float((a - b).abs().max()) for a, b in zip(torch_logits, ort_logits, strict=True))
    if diff > atol:
        raise DlhwError(f"ONNX export differs from torch: largest logit difference {diff:.3g} over "
                        f"{len(torch_logits)} greedy steps exceeds the tolerance {atol:g}; nothing was written")
    tokens = sum(len(t) for t in torch_tokens)
    summary = (f"parity vs torch: max |diff| logits {diff:.2g} (tolerance {atol:g}); greedy tokens equal on "
               f"{total}/{total} {unit}s ({tokens} tokens)")
    return {"atol": atol, "prompts": total, "equal_prompts": total, "tokens_compared": tokens,
            "max_abs_diff": {"logits": diff}, "summary": summary}
