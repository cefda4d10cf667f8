"""Greedy and beam search on a stepper whose probabilities are known exactly."""

from __future__ import annotations

import math

import torch

from dlhw.lm.decoding import beam_decode, greedy_decode

SOS, EOS, PAD = 1, 2, 0


class MarkovStepper:
    """Next-token log-probs depend on the previous token only (a fixed table)."""

    def __init__(self, table: dict[int, dict[int, float]], vocab: int = 6):
        self.logits = torch.full((vocab, vocab), -1e9)
        for prev, nxt in table.items():
            for tok, p in nxt.items():
                self.logits[prev, tok] = math.log(p)

    def init_state(self, memory):
        return memory

    def step(self, tokens, state):
        return self.logits[tokens], state, None

    def reorder_state(self, state, index):
        return state[index]


# greedy takes 3 (p=.6) then is stuck with 0.5/0.5; the best sequence is 4 -> EOS (p=.4*1.0)
TABLE = {SOS: {3: 0.6, 4: 0.4}, 3: {5: 0.5, EOS: 0.5}, 4: {EOS: 1.0}, 5: {EOS: 1.0}}


def test_greedy_follows_the_locally_best_token_and_pads_after_eos():
    out = greedy_decode(MarkovStepper(TABLE), torch.zeros(2, 1), 2, SOS, EOS, PAD, max_new=5)
    assert out.tokens[0].tolist()[:2] in ([3, 5], [3, EOS])
    assert math.isclose(out.scores[0].item(), math.log(0.6) + math.log(0.5), rel_tol=1e-5)


def test_beam_search_finds_the_most_likely_sequence_greedy_misses():
    out = beam_decode(MarkovStepper(TABLE), torch.zeros(3, 1), 3, SOS, EOS, PAD, max_new=5, beam_size=2,
                      length_penalty=0.0)
    assert out.tokens[:, :2].tolist() == [[4, EOS]] * 3
    assert torch.all(out.tokens[:, 2:] == PAD)
    assert math.isclose(out.scores[0].item(), math.log(0.4), rel_tol=1e-5)
