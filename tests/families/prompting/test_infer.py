"""Prompt generation: the lm loop equals generate, length-sorted batches, encoder reuse, the stop rule."""

from __future__ import annotations

import pytest
import torch

from dlhw.families.prompting import sports_tasks
from dlhw.families.prompting.config import TinyT5Config
from dlhw.families.prompting.data import build_prompt
from dlhw.families.prompting.infer import PromptGenerator, cut_at_question


@pytest.fixture(scope="module")
def tiny() -> PromptGenerator:
    from dlhw.families.prompting.model import load_folder, tiny_t5

    loaded = load_folder(tiny_t5(TinyT5Config()), torch.device("cpu"), "float32")
    return PromptGenerator(loaded.model, loaded.tokenizer, "seq2seq", batch_size=8, progress=False)


def _prompts(n: int, strategy: str = "cot") -> list[str]:
    return [build_prompt(strategy, item.input) for item in sports_tasks.test_items()[:n]]


def test_a_capital_q_inside_a_chain_does_not_cut_it_a_new_question_does():
    chain = "Quentin Alton is a football player. The QB threw it. So the answer is yes."
    assert cut_at_question(chain) == chain
    assert cut_at_question(chain + "\n\nQ: Is the following sentence plausible?") == chain
    assert cut_at_question("Quiet. Q: not at a line start") == "Quiet. Q: not at a line start"


def _random_t5() -> tuple[object, object]:
    """The tiny preset's T5 shape with random weights and a word tokenizer over the task (no pretraining)."""
    from transformers import T5ForConditionalGeneration

    from dlhw.families.prompting.model import tiny_t5_config, train_word_tokenizer

    tokenizer = train_word_tokenizer(sports_tasks.gazetteer_text() + _prompts(20) + _prompts(20, "answer-only"))
    config = tiny_t5_config(TinyT5Config(), len(tokenizer))
    config.initializer_factor = 3.0  # wider random weights: chains of many different words
    torch.manual_seed(22)  # a draw with long, different greedy chains for every prompt
    return T5ForConditionalGeneration(config).eval(), tokenizer


def test_greedy_and_sampled_chains_equal_generate_s_without_calling_it(monkeypatch):
    model, tokenizer = _random_t5()
    prompts = _prompts(7) + _prompts(5, "answer-only")
    with torch.no_grad():  # the reference: what PromptGenerator did through generate before the lm loop
        enc = tokenizer(prompts, return_tensors="pt", padding=True)
        ids = model.generate(**enc, max_new_tokens=20, do_sample=False, pad_token_id=0)
        expected = [cut_at_question(t) for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
        order = sorted(range(3), key=lambda i: -len(tokenizer(prompts[i])["input_ids"]))  # the batch's row order
        enc = tokenizer([prompts[i] for i in order], return_tensors="pt", padding=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(9)
            ids = model.generate(**{k: v.repeat_interleave(4, dim=0) for k, v in enc.items()}, max_new_tokens=20,
                                 do_sample=True, temperature=0.7, top_p=0.95, top_k=0, pad_token_id=0)
        texts = [cut_at_question(t) for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
        expected_chains = [texts[order.index(i) * 4:(order.index(i) + 1) * 4] for i in range(3)]

    def refuse(*args, **kwargs):
        raise AssertionError("PromptGenerator called model.generate")

    monkeypatch.setattr(model, "generate", refuse)
    gen = PromptGenerator(model, tokenizer, "seq2seq", batch_size=5, progress=False)
    assert gen.greedy(prompts, 20) == expected
    assert len(set(expected)) == len(prompts) and min(len(t.split()) for t in expected) >= 10  # real chains
    # one batch of 3 prompts x 4 chains (batch_size 12 // 4): drawn with seed + 0, as generate drew with seed
    chains = PromptGenerator(model, tokenizer, "seq2seq", batch_size=12, progress=False).sample(
        prompts[:3], 4, 20, 0.7, 0.95, seed=9)
    assert chains == expected_chains and len(set(chains[0])) > 1


@pytest.mark.slow
def test_batched_length_sorted_greedy_equals_one_at_a_time(tiny):
    prompts = _prompts(6) + _prompts(3, "answer-only")
    batched = tiny.greedy(prompts, 40)
    single = PromptGenerator(tiny.model, tiny.tokenizer, batch_size=1, progress=False).greedy(prompts, 40)
    assert batched == single
    assert tiny.by_length(prompts)[-3:] == [6, 7, 8] or set(tiny.by_length(prompts)[-3:]) == {6, 7, 8}


@pytest.mark.slow
def test_self_consistency_runs_the_encoder_once_per_item_and_decodes_n_samples_together(tiny):
    rows_seen: list[int] = []
    decoder_rows: list[int] = []
    cross_rows: list[int] = []  # rows through every layer's cross-attention key projection (of the encoder states)
    encoder = tiny.model.get_encoder()
    hooks = [encoder.register_forward_hook(lambda m, a, k, out: rows_seen.append(k["input_ids"].shape[0]),
                                           with_kwargs=True),
             tiny.model.get_decoder().register_forward_hook(
                 lambda m, a, k, out: decoder_rows.append(k["input_ids"].shape[0]), with_kwargs=True)]
    layers = tiny.model.get_decoder().block
    hooks += [block.layer[1].EncDecAttention.k.register_forward_hook(lambda m, a, out: cross_rows.append(a[0].shape[0]))
              for block in layers]
    try:
        chains = tiny.sample(_prompts(5), n=4, max_new_tokens=12, temperature=0.7, top_p=0.95, seed=3)
    finally:
        for hook in hooks:
            hook.remove()
    assert sum(rows_seen) == 5  # every item's prompt went through the encoder exactly once
    assert len(rows_seen) == 3  # batch_size 8 // n 4 = 2 items per batch: 2 + 2 + 1
    # ... and through the cross-attention projections once, in every decoder layer (not once per chain)
    assert cross_rows == [2] * len(layers) + [2] * len(layers) + [1] * len(layers)
    # the first step runs one row per item, then the n chains of each item decode in one batch
    assert decoder_rows[0] == 2 and decoder_rows[-1] == 4 and decoder_rows.count(2) == 2 and decoder_rows.count(1) == 1
    assert set(decoder_rows) == {2, 8, 1, 4}
    assert [len(c) for c in chains] == [4] * 5
    again = tiny.sample(_prompts(5), n=4, max_new_tokens=12, temperature=0.7, top_p=0.95, seed=3)
    assert again == chains


@pytest.mark.slow
def test_an_untrained_tiny_t5_is_near_chance_and_the_pretrained_one_is_not(tiny):
    from dlhw.families.prompting.evaluate import extract_answer
    from dlhw.families.prompting.model import untrained_tiny_t5

    items = sports_tasks.test_items()
    prompts = [build_prompt("answer-only", i.input) for i in items]
    untrained = untrained_tiny_t5(TinyT5Config())
    gen = PromptGenerator(untrained.model, untrained.tokenizer, batch_size=64, progress=False)
    ranked = gen.rank(prompts, ("yes", "no"))
    accuracy = sum(r == i.target for r, i in zip(ranked, items, strict=True)) / len(items)
    assert 0.4 <= accuracy <= 0.6, accuracy
    free = [extract_answer(t) for t in gen.greedy(prompts[:40], 8)]
    assert free.count("unknown") >= 30  # random weights rarely even say yes or no
    cot = [extract_answer(t) for t in tiny.greedy([build_prompt("cot", i.input) for i in items[:60]], 40)]
    assert sum(c == i.target for c, i in zip(cot, items[:60], strict=True)) / 60 >= 0.7


def test_a_causal_lm_with_a_chat_template_goes_through_the_same_generator():
    from transformers import LlamaConfig, LlamaForCausalLM

    from dlhw.lm.tiny import train_tiny_tokenizer

    tokenizer = train_tiny_tokenizer(sports_tasks.gazetteer_text() * 3, 300)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    gen = PromptGenerator(model, tokenizer, "causal", batch_size=4, progress=False)
    prompts = _prompts(3, "answer-only")
    assert gen.use_chat_template and "<|user|>" in gen._texts(prompts)[0] and "<|assistant|>" in gen._texts(prompts)[0]
    batched = gen.greedy(prompts, 6)
    single = PromptGenerator(model, tokenizer, "causal", batch_size=1, progress=False).greedy(prompts, 6)
    assert batched == single and not any("plausible" in t for t in batched)  # new tokens only, not the prompt
    chains = gen.sample(prompts, n=3, max_new_tokens=5, temperature=0.7, top_p=0.95, seed=1)
    assert [len(c) for c in chains] == [3, 3, 3]
    assert set(gen.rank(prompts, ("yes", "no"))) <= {"yes", "no"}
