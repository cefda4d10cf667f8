"""How a decoding step chooses its tokens: the one sampler (temperature, top-k, nucleus; seeded).

A *pick* maps one step's (B, V) logits to the (B,) chosen token ids. Without one, the decoding
loop (:func:`dlhw.lm.decoding.decode_tokens`) takes the argmax: greedy decoding. :func:`sampler`
is the pick every sampling caller uses (summarization's ``--sample``, prompting's
self-consistency chains); it draws from its own seeded ``torch.Generator``, so the same seed
gives the same tokens whatever else uses torch's global random state.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Pick = Callable[[torch.Tensor], torch.Tensor]
"""(B, V) logits -> (B,) token ids."""


def sampler(temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, seed: int = 0) -> Pick:
    """A ``pick`` for the generation loop: temperature, top-k and nucleus sampling, seeded.

    The filters apply in the order of Hugging Face's ``generate``: temperature, then top-k (0 keeps
    every token), then top-p (the smallest set of most likely tokens whose mass reaches ``top_p``).
    The draw runs on the CPU, so a seed gives the same tokens on every device.
    """
    gen = torch.Generator().manual_seed(seed)

    def pick(logits: torch.Tensor) -> torch.Tensor:
        scores = logits.float().cpu() / temperature  # (B, V)
        if top_k > 0:
            kth = torch.topk(scores, min(top_k, scores.shape[-1])).values[:, -1:]  # (B, 1)
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if top_p < 1.0:
            ordered, order = scores.sort(dim=-1, descending=True)  # (B, V)
            cumulative = ordered.softmax(-1).cumsum(-1)
            drop = cumulative - ordered.softmax(-1) > top_p  # keep the smallest set reaching top_p
            scores = scores.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
        return torch.multinomial(scores.softmax(-1), 1, generator=gen)[:, 0]  # (B,)

    return pick
