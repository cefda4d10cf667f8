"""The one loop (greedy, sampled), beam search and the sampler, on a stepper whose probabilities are known."""

from __future__ import annotations

import math

import torch

from dlhw.lm.decoding import beam_decode, decode_tokens, greedy_decode
from dlhw.lm.sampling import sampler

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


class Streamer:
    def __init__(self):
        self.steps: list[list[int]] = []
        self.ended = False

    def put(self, tokens):
        self.steps.append(tokens.tolist())

    def end(self):
        self.ended = True


def test_the_loop_stops_each_row_at_a_stop_id_pads_after_it_and_never_steps_past_the_end():
    stepper = MarkovStepper({SOS: {3: 0.6, 4: 0.4}, 3: {5: 0.9, EOS: 0.1}, 4: {EOS: 1.0}, 5: {3: 0.9, EOS: 0.1}})
    calls: list[list[int]] = []

    def step(tokens):
        calls.append(tokens.tolist())
        return stepper.logits[tokens]  # (B, V)

    first = stepper.logits[torch.tensor([SOS, 4])]  # row 1 starts as if it had said 4 already
    record: list[torch.Tensor] = []
    streamer = Streamer()
    out = decode_tokens(step, first, 6, [EOS], PAD, streamer=streamer, record=record, with_scores=True)
    assert out.tokens.tolist() == [[3, 5, 3, 5, 3, 5], [EOS, PAD, PAD, PAD, PAD, PAD]]
    assert len(calls) == 5 and len(record) == 6 and streamer.steps[1] == [5, PAD] and streamer.ended
    assert math.isclose(out.scores[0].item(), math.log(0.6) + 5 * math.log(0.9), rel_tol=1e-5)
    assert math.isclose(out.scores[1].item(), 0.0, abs_tol=1e-5)  # EOS after 4 is certain; pads cost nothing

    # every row ended: no further step; min_new_tokens forbids the stop ids until then
    calls.clear()
    ended = decode_tokens(step, stepper.logits[torch.tensor([4, 4])], 6, [EOS], PAD)
    assert ended.tokens.tolist() == [[EOS], [EOS]] and calls == []
    longer = decode_tokens(step, stepper.logits[torch.tensor([5, 5])], 4, [EOS], PAD, min_new_tokens=3)
    assert longer.tokens.tolist() == [[3, 5, 3, 5]] * 2


def test_a_pick_replaces_the_argmax():
    stepper = MarkovStepper(TABLE)
    first = stepper.logits[torch.full((4,), SOS)]
    picked = decode_tokens(lambda t: stepper.logits[t], first, 5, [EOS], PAD, pick=lambda logits: logits.argmin(-1))
    assert picked.tokens[:, 0].tolist() == [0] * 4  # the least likely token (a -1e9 entry), not 3


def test_the_sampler_is_seeded_filters_top_k_and_top_p_and_follows_the_temperature():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]] * 400))  # (B, V)
    draws = sampler(seed=7)(logits)
    assert torch.equal(draws, sampler(seed=7)(logits)) and not torch.equal(draws, sampler(seed=8)(logits))
    counts = torch.bincount(draws, minlength=4) / 400
    assert torch.allclose(counts, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.07), counts
    assert set(sampler(top_k=2, seed=1)(logits).tolist()) == {0, 1}
    assert set(sampler(top_p=0.7, seed=1)(logits).tolist()) == {0, 1}  # 0.5 + 0.3 is the smallest set reaching 0.7
    assert set(sampler(top_p=0.85, seed=1)(logits).tolist()) == {0, 1, 2}
    cold = torch.bincount(sampler(temperature=0.1, seed=1)(logits), minlength=4)
    assert cold[0] >= 395  # near-greedy
