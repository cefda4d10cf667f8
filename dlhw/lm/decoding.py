"""Batched greedy and beam-search decoding over a step function.

A *stepper* is anything with

- ``init_state(memory) -> state``
- ``step(tokens (B,), state) -> (logits (B, V), state, alpha (B, P) | None)``
- ``reorder_state(state, index (B',)) -> state`` (rows picked / repeated by ``index``)

The caption decoders implement it in torch; the ONNX backends implement it over exported
decoder-step graphs, so both decode with exactly this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor


class Stepper(Protocol):
    def init_state(self, memory: Any) -> Any: ...
    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any, Tensor | None]: ...
    def reorder_state(self, state: Any, index: Tensor) -> Any: ...


@dataclass
class Decoded:
    tokens: Tensor
    """(B, L) generated ids, ``<eos>`` then ``pad_id`` after the end."""
    scores: Tensor
    """(B,) sum of log-probabilities of the chosen tokens (length-normalised for beams)."""
    alphas: Tensor | None = None
    """(B, L, P) attention weights of each generated token (greedy, attention decoders)."""


@torch.no_grad()
def greedy_decode(
    stepper: Stepper, memory: Any, batch_size: int, sos_id: int, eos_id: int, pad_id: int, max_new: int,
    device: torch.device | str = "cpu",
) -> Decoded:
    """Pick the most likely word at every step, for the whole batch at once."""
    state = stepper.init_state(memory)
    tokens = torch.full((batch_size,), sos_id, dtype=torch.long, device=device)  # (B,)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)  # (B,)
    scores = torch.zeros(batch_size, device=device)  # (B,)
    out, alphas = [], []
    for _ in range(max_new):
        logits, state, alpha = stepper.step(tokens, state)  # (B, V)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
        best = logp.argmax(dim=-1)  # (B,)
        scores = scores + torch.where(done, 0.0, logp.gather(1, best[:, None])[:, 0])
        tokens = torch.where(done, torch.full_like(best, pad_id), best)  # (B,)
        out.append(tokens)
        if alpha is not None:
            alphas.append(alpha)
        done = done | best.eq(eos_id)
        if bool(done.all()):
            break
    return Decoded(
        torch.stack(out, dim=1), scores, torch.stack(alphas, dim=1) if alphas else None
    )  # (B, L), (B,), (B, L, P)


@torch.no_grad()
def beam_decode(
    stepper: Stepper, memory: Any, batch_size: int, sos_id: int, eos_id: int, pad_id: int, max_new: int,
    beam_size: int, length_penalty: float = 0.7, device: torch.device | str = "cpu",
) -> Decoded:
    """Beam search over ``beam_size`` hypotheses per image, all images batched.

    A finished hypothesis keeps its score and only extends with ``<pad>``; at the end the best
    hypothesis by ``logp / length ** length_penalty`` is returned for each image.
    """
    B, K = batch_size, beam_size
    expand = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,): beam row -> image
    state = stepper.reorder_state(stepper.init_state(memory), expand)
    tokens = torch.full((B * K,), sos_id, dtype=torch.long, device=device)  # (B*K,)
    scores = torch.zeros(B, K, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one alive at step 0
    done = torch.zeros(B * K, dtype=torch.bool, device=device)  # (B*K,)
    lengths = torch.zeros(B * K, device=device)  # (B*K,)
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)  # (B*K, t)
    for _ in range(max_new):
        logits, state, _ = stepper.step(tokens, state)  # (B*K, V)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B*K, V)
        V = logp.size(1)
        # a finished beam may only continue with <pad>, at no cost
        finished_row = torch.full_like(logp[0], float("-inf"))
        finished_row[pad_id] = 0.0
        logp = torch.where(done[:, None], finished_row, logp)  # (B*K, V)
        cand = (scores.view(B * K, 1) + logp).view(B, K * V)  # (B, K*V)
        top_scores, top_idx = cand.topk(K, dim=1)  # (B, K)
        beam_idx = top_idx // V  # (B, K): which beam each survivor extends
        word = top_idx % V  # (B, K)
        rows = (beam_idx + torch.arange(B, device=device)[:, None] * K).view(-1)  # (B*K,)
        state = stepper.reorder_state(state, rows)
        tokens = word.view(-1)  # (B*K,)
        history = torch.cat([history[rows], tokens[:, None]], dim=1)  # (B*K, t+1)
        was_done = done[rows]
        lengths = lengths[rows] + (~was_done).float()
        done = was_done | tokens.eq(eos_id)
        scores = top_scores
        if bool(done.all()):
            break
    normalised = scores / lengths.view(B, K).clamp(min=1.0) ** length_penalty  # (B, K)
    best = normalised.argmax(dim=1)  # (B,)
    pick = best + torch.arange(B, device=device) * K  # (B,)
    return Decoded(history[pick], normalised.gather(1, best[:, None])[:, 0])


def decode(
    stepper: Stepper, memory: Any, batch_size: int, sos_id: int, eos_id: int, pad_id: int, max_new: int,
    beam_size: int = 1, length_penalty: float = 0.7, device: torch.device | str = "cpu",
) -> Decoded:
    """Greedy when ``beam_size == 1``, beam search otherwise."""
    if beam_size <= 1:
        return greedy_decode(stepper, memory, batch_size, sos_id, eos_id, pad_id, max_new, device)
    return beam_decode(
        stepper, memory, batch_size, sos_id, eos_id, pad_id, max_new, beam_size, length_penalty, device
    )
