"""dlhw's one token-generation loop: greedy or sampled (:func:`decode_tokens`), and beam search.

Every model that writes tokens decodes here, on every backend:

- :func:`decode_tokens` -- greedy (argmax) or sampled decoding of a batch. The model side is a
  *step function*: ``step(tokens (B,)) -> logits (B, V)`` feeds each step's chosen tokens and
  returns the next logits, its cache (KV cache, LSTM state, ONNX Runtime arrays) in its closure.
  A row ends at its first stop id and is padded with ``pad_id`` after it; the loop ends when every
  row has ended or after ``max_new_tokens``. The choice is the argmax, or a ``pick``
  (:func:`dlhw.lm.sampling.sampler`: temperature, top-k, top-p, seeded).
- :func:`beam_decode` -- beam search over a :class:`Stepper` (a step function that can also
  reorder its state, which beams need), and :func:`decode`, greedy or beam for a Stepper.

The step functions and their call sites:

- causal LMs, left-padded prompt batches (:func:`dlhw.lm.generate.causal_loop`):
  ``lm/generate.py:ChatGenerator.generate_ids`` (torch; plain, LoRA, prompt / prefix tuning) and
  ``lm/ort.py:OrtChatGenerator.generate_ids`` (ONNX Runtime, TensorRT) -- the chat family
  (``families/chat/infer.py``, ``evaluate.py``, ``export.py`` parity, ``train.py`` samples), the
  summarization family (``families/summarization/infer.py:Summarizer``, ``train.py``, ``export.py``)
  and prompting's causal LMs (``families/prompting/infer.py:PromptGenerator``);
- seq2seq LMs, encoder once then decoder steps with the KV cache
  (:func:`dlhw.lm.generate.seq2seq_loop`): ``families/prompting/infer.py:PromptGenerator.greedy``
  and ``.sample`` (self-consistency), on torch and on ONNX Runtime (``lm/ort.py:OrtSeq2Seq``);
- caption decoders, one Stepper each (:func:`greedy_decode`, :func:`beam_decode` via
  :func:`decode`): ``families/caption/model.py:CaptionModel.caption`` (torch),
  ``families/caption/infer.py:OrtCaptioner.caption`` (``OrtStepper`` over ``decoder_step.onnx``)
  and ``families/caption/export.py`` (torch-vs-ONNX parity).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from dlhw.lm.sampling import Pick

Step = Callable[[Tensor], Tensor]
"""``step(tokens (B,)) -> logits (B, V)``: feed the chosen tokens, get the next step's logits."""


class Stepper(Protocol):
    """A decoder that beam search can drive: the step function with its state made explicit.

    - ``init_state(memory) -> state``
    - ``step(tokens (B,), state) -> (logits (B, V), state, alpha (B, P) | None)``
    - ``reorder_state(state, index (B',)) -> state`` (rows picked / repeated by ``index``)

    The caption decoders implement it in torch; their ONNX backends over exported decoder-step graphs.
    """

    def init_state(self, memory: Any) -> Any: ...
    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any, Tensor | None]: ...
    def reorder_state(self, state: Any, index: Tensor) -> Any: ...


@dataclass
class Decoded:
    tokens: Tensor
    """(B, L) generated ids, the stop id then ``pad_id`` after each row's end."""
    scores: Tensor | None = None
    """(B,) sum of log-probabilities of the chosen tokens (length-normalised for beams); greedy
    fills it only when asked (``with_scores``)."""
    alphas: Tensor | None = None
    """(B, L, P) attention weights of each generated token (attention decoders; for beam search, the
    returned hypothesis's own weights, step by step)."""


@torch.no_grad()
def decode_tokens(step: Step, logits: Tensor, max_new_tokens: int, stop_ids: Sequence[int], pad_id: int,
                  pick: Pick | None = None, min_new_tokens: int = 0, streamer: Any = None,
                  record: list[Tensor] | None = None, with_scores: bool = False) -> Decoded:
    """Greedy (or ``pick``-sampled) decoding of a batch from its first (B, V) ``logits``.

    Args:
        step: feeds each step's (B,) tokens to the model, returns the next (B, V) logits.
        logits: the first step's (B, V) logits (after the prompt, or after the start token).
        max_new_tokens: most tokens generated per row.
        stop_ids: a row ends at the first of these (kept in its output; pads follow).
        pad_id: what an ended row generates.
        pick: (B, V) logits -> (B,) tokens instead of the argmax (sampling).
        min_new_tokens: the stop ids cannot be chosen before this many tokens.
        streamer: gets ``put(tokens (B,))`` each step and ``end()`` at the end (a text streamer).
        record: receives every step's (B, V) logits as float32 on the CPU (export parity checks).
        with_scores: sum the log-probabilities of each row's chosen tokens into ``scores``.
    """
    batch = logits.shape[0]
    device = logits.device
    done = torch.zeros(batch, dtype=torch.bool, device=device)  # (B,)
    stop = torch.tensor(list(stop_ids), dtype=torch.long, device=device)
    scores = torch.zeros(batch, device=device) if with_scores else None  # (B,)
    new: list[Tensor] = []
    for t in range(max_new_tokens):
        if record is not None:
            record.append(logits.float().cpu())  # (B, V)
        if t < min_new_tokens:
            logits = logits.index_fill(-1, stop, float("-inf"))  # (B, V): not ending yet
        chosen = (pick(logits) if pick is not None else logits.argmax(-1)).to(device)  # (B,)
        if scores is not None:
            logp = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
            scores = scores + torch.where(done, 0.0, logp.gather(1, chosen[:, None])[:, 0])
        token = torch.where(done, torch.full_like(chosen, pad_id), chosen)  # (B,)
        new.append(token)
        if streamer is not None:
            streamer.put(token.cpu())
        done |= torch.isin(token, stop)
        if bool(done.all()) or t == max_new_tokens - 1:
            break
        logits = step(token)  # (B, V)
    if streamer is not None:
        streamer.end()
    tokens = torch.stack(new, dim=1) if new else torch.zeros((batch, 0), dtype=torch.long, device=device)
    return Decoded(tokens, scores)  # (B, L), (B,) | None


@torch.no_grad()
def greedy_decode(
    stepper: Stepper, memory: Any, batch_size: int, sos_id: int, eos_id: int, pad_id: int, max_new: int,
    device: torch.device | str = "cpu",
) -> Decoded:
    """Pick the most likely word at every step, for the whole batch at once (:func:`decode_tokens`)."""
    state = stepper.init_state(memory)
    alphas: list[Tensor] = []

    def step(tokens: Tensor) -> Tensor:
        nonlocal state
        logits, state, alpha = stepper.step(tokens, state)  # (B, V), state, (B, P) | None
        if alpha is not None:
            alphas.append(alpha)
        return logits

    first = step(torch.full((batch_size,), sos_id, dtype=torch.long, device=device))  # (B, V)
    out = decode_tokens(step, first, max_new, [eos_id], pad_id, with_scores=True)
    out.alphas = torch.stack(alphas, dim=1) if alphas else None  # (B, L, P)
    return out


@torch.no_grad()
def beam_decode(
    stepper: Stepper, memory: Any, batch_size: int, sos_id: int, eos_id: int, pad_id: int, max_new: int,
    beam_size: int, length_penalty: float = 0.7, device: torch.device | str = "cpu",
) -> Decoded:
    """Beam search over ``beam_size`` hypotheses per input, all inputs batched.

    A finished hypothesis keeps its score and only extends with ``<pad>``; at the end the best
    hypothesis by ``logp / length ** length_penalty`` is returned for each input, with the attention
    weights (attention decoders) that produced each of its tokens.
    """
    B, K = batch_size, beam_size
    expand = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,): beam row -> input
    state = stepper.reorder_state(stepper.init_state(memory), expand)
    tokens = torch.full((B * K,), sos_id, dtype=torch.long, device=device)  # (B*K,)
    scores = torch.zeros(B, K, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one alive at step 0
    done = torch.zeros(B * K, dtype=torch.bool, device=device)  # (B*K,)
    lengths = torch.zeros(B * K, device=device)  # (B*K,)
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)  # (B*K, t)
    attention: Tensor | None = None  # (B*K, t, P): the weights behind each beam's tokens
    for _ in range(max_new):
        logits, state, alpha = stepper.step(tokens, state)  # (B*K, V), state, (B*K, P) | None
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
        if alpha is not None:
            # alpha is the parent beam's: it chose this step's word, so it follows the word's beam
            step_alpha = alpha[:, None]  # (B*K, 1, P)
            attention = step_alpha if attention is None else torch.cat([attention, step_alpha], dim=1)
            attention = attention[rows]  # (B*K, t+1, P)
        was_done = done[rows]
        lengths = lengths[rows] + (~was_done).float()
        done = was_done | tokens.eq(eos_id)
        scores = top_scores
        if bool(done.all()):
            break
    normalised = scores / lengths.view(B, K).clamp(min=1.0) ** length_penalty  # (B, K)
    best = normalised.argmax(dim=1)  # (B,)
    pick = best + torch.arange(B, device=device) * K  # (B,)
    return Decoded(history[pick], normalised.gather(1, best[:, None])[:, 0],
                   attention[pick] if attention is not None else None)  # (B, L), (B,), (B, L, P) | None


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
