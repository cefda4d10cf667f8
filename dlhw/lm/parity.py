"""Parity for exported language models: ONNX Runtime against torch, token for token.

The torch model decodes the check inputs greedily first, recording every step's (B, V) logits;
the export decodes the same inputs. :func:`dlhw.backends.parity.check_parity` refuses the export
if one greedy token differs or the largest logit difference over all steps exceeds the
tolerance; otherwise the report says how close they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dlhw.backends.parity import Decision, check_parity


def _first_tokens(tokens: Sequence[int]) -> list[int]:
    return list(tokens[:8])


def greedy_tokens(torch_tokens: Sequence[Sequence[int]], ort_tokens: Sequence[Sequence[int]], unit: str,
                  pad_id: int | None = None) -> Decision:
    """Greedy token ids that must be equal, one sequence per ``unit``; the summary counts the tokens
    (``pad_id`` not counted)."""
    tokens = sum(sum(1 for t in seq if t != pad_id) for seq in torch_tokens)
    return Decision("greedy tokens", unit, torch_tokens, ort_tokens, detail=f"{tokens} tokens", show=_first_tokens)


def compare_generations(torch_tokens: list[list[int]], torch_logits: list[torch.Tensor], ort_tokens: list[list[int]],
                        ort_logits: list[torch.Tensor], atol: float, unit: str = "prompt") -> dict[str, Any]:
    """The parity report (``atol``, ``max_abs_diff`` of the logits, ``prompts``, ``equal_prompts``,
    ``tokens_compared``, a one-line ``summary``); raises :class:`~dlhw.errors.DlhwError` naming the
    first differing ``unit`` or the measured logit difference."""
    total = len(torch_tokens)
    decision = greedy_tokens(torch_tokens, ort_tokens, unit)
    extra = {"prompts": total, "equal_prompts": total, "tokens_compared": sum(len(t) for t in torch_tokens)}
    return check_parity({"logits": (torch_logits, ort_logits)}, atol, decisions=[decision],
                        what=f"{total} {unit}s over {len(torch_logits)} greedy steps", extra=extra)
