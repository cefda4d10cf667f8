"""Chat generation (batched, resumable) and the one loop against Hugging Face's ``generate``."""

import json

import pytest
import torch

from dlhw.errors import ConfigError
from dlhw.families.chat.infer import read_prompts
from dlhw.lm.generate import ChatGenerator, as_conversation
from dlhw.lm.run import load_chat_run
from tests.conftest import run_cli

PROMPTS = [
    "حاصل جمع ۳ و ۹ چند است؟",
    "عدد ۸۸ را با حروف بنویس.",
    "از دو عدد ۷ و ۱۹ کدام بزرگ‌تر است؟",
    "سلام",
    "یک جمله دربارهٔ باران و دریا و کوه و شهر و خانه بنویس.",
    "۵ به‌اضافهٔ ۴ چند می‌شود؟",
    "شکل نوشتاری عدد ۱۳ چیست؟",
]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "prompt-tuning", "prefix-tuning", "partial"])
def test_batched_left_padded_generation_equals_one_at_a_time(chat_runs, method):
    loaded = load_chat_run(chat_runs[method], "cpu")
    generator = ChatGenerator(loaded.model, loaded.tokenizer, max_new_tokens=16)
    conversations = [as_conversation(p) for p in PROMPTS]
    lengths = {len(generator.formatter.prompt_ids(c)) for c in conversations}
    assert len(lengths) > 3, "the prompts must differ in length so that the batch is padded"
    batched = generator.generate(conversations)
    alone = [generator.generate([c])[0] for c in conversations]
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]
    assert any(g.token_ids for g in batched)


@pytest.mark.slow
def test_chat_prompts_file_is_answered_in_batches_and_resumes(chat_runs, tmp_path):
    run_dir = chat_runs["lora"]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS * 2) + "\n\n", encoding="utf-8")  # 14 prompts, a blank line
    out = tmp_path / "answers.jsonl"
    code, log = run_cli("chat", str(run_dir), "--prompts", str(prompts), "--out", str(out), "--batch-size", "4",
                        "--max-new-tokens", "16", "--device", "cpu")
    assert code == 0, log
    assert "14 prompts done" in log and "tokens/s" in log
    first = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["path"] for r in first] == [f"{prompts}:{i}" for i in range(1, 15)]  # the path as given
    assert first[0]["answer"] == first[7]["answer"]  # the same prompt, the same greedy answer

    # a kill mid-job leaves some rows and a cut line: the rerun answers only what is missing
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:5]) + lines[5][:20], encoding="utf-8")
    code, log = run_cli("chat", str(run_dir), "--prompts", str(prompts), "--out", str(out), "--batch-size", "4",
                        "--max-new-tokens", "16", "--device", "cpu")
    assert code == 0, log
    assert "9 prompts done" in log and "5 skipped" in log
    again = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["path"] for r in again) == sorted(r["path"] for r in first)
    assert {r["path"]: r["answer"] for r in again} == {r["path"]: r["answer"] for r in first}


def test_read_prompts_formats(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(
        '{"id": "a", "prompt": "سلام"}\n'
        '{"messages": [{"role": "user", "content": "x"}]}\n'
        '[{"role": "system", "content": "s"}, {"role": "user", "content": "y"}]\n', encoding="utf-8")
    items = read_prompts(jsonl)
    assert [i.key for i in items] == ["a", f"{jsonl}:2", f"{jsonl}:3"]
    assert items[0].value == [{"role": "user", "content": "سلام"}]
    assert items[2].value[0]["role"] == "system"
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate ids"):
        read_prompts(dup)
    # a bad line is one error item (one error record), never an abort of the whole file
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a"}\n{"prompt": \n{"id": "m", "messages": 3}\n{"prompt": "  "}\n{"prompt": "d"}\n',
                   encoding="utf-8")
    items = read_prompts(bad)
    assert [(i.key, i.error) for i in items] == [
        (f"{bad}:1", None),
        (f"{bad}:2", "not valid JSON (Expecting value, column 12)"),
        ("m", f"{bad}:3: messages must be a list, got int"),
        (f"{bad}:4", '"prompt" is empty'),
        (f"{bad}:5", None),
    ]
    txt = tmp_path / "p.txt"
    txt.write_text(" one \n\ntwo\n\n", encoding="utf-8")
    assert [(i.key, i.value, i.error) for i in read_prompts(txt)] == [
        (f"{txt}:1", [{"role": "user", "content": "one"}], None),
        (f"{txt}:2", None, "empty line"),
        (f"{txt}:3", [{"role": "user", "content": "two"}], None),
    ]


def test_system_message_is_put_first_once():
    assert as_conversation("q", "s") == [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    conv = [{"role": "system", "content": "own"}, {"role": "user", "content": "q"}]
    assert as_conversation(conv, "s") == conv


# --- the one loop against Hugging Face's generate, on tiny models built from a config (no downloads) ---

def _tiny_t5():
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(vocab_size=96, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                      dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                      initializer_factor=3.0)  # wider weights: random chains that vary, not one token repeated
    torch.manual_seed(38)  # a draw whose greedy chains vary from the first tokens on
    return T5ForConditionalGeneration(config).eval()


def _t5_batch(lengths=(9, 4, 13, 6, 1)) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths, padded on the right as a T5 tokenizer does."""
    gen = torch.Generator().manual_seed(5)
    ids = torch.zeros((len(lengths), max(lengths)), dtype=torch.long)  # (B, S)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(2, 96, (n,), generator=gen)
        mask[row, :n] = 1
    return ids, mask


def test_seq2seq_greedy_equals_generate_token_for_token_on_a_tiny_t5():
    from dlhw.lm.generate import seq2seq_loop

    model = _tiny_t5()
    ids, mask = _t5_batch()
    with torch.no_grad():
        theirs = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=24, do_sample=False)  # (B, 1+L)
    ours = seq2seq_loop(model, ids, mask, 24, [1], 0)
    assert ours == theirs[:, 1:].tolist()  # generate's rows begin with the decoder start token
    assert [len(r) for r in ours] == [24] * 5 and len({tuple(r) for r in ours}) == 5  # five different chains
    alone = [seq2seq_loop(model, ids[i:i + 1, :int(mask[i].sum())], mask[i:i + 1, :int(mask[i].sum())], 24, [1], 0)[0]
             for i in range(5)]
    assert alone == ours  # padding does not change a row

    # a token of row 0's chain as a second stop id: that row ends there and pads, the others go on
    stop = ours[0][5]
    with torch.no_grad():
        theirs = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=24, do_sample=False,
                                eos_token_id=[1, stop])
    ended = seq2seq_loop(model, ids, mask, 24, [1, stop], 0)
    assert ended == theirs[:, 1:].tolist()
    end = ended[0].index(stop)
    assert end <= 5 and set(ended[0][end + 1:]) <= {0} and ended[0][:end] == ours[0][:end]


def test_seq2seq_sampling_is_seeded_and_draws_what_generate_draws_from_the_same_seed():
    from dlhw.lm.generate import seq2seq_loop
    from dlhw.lm.sampling import sampler

    model = _tiny_t5()
    ids, mask = _t5_batch()
    chains = seq2seq_loop(model, ids, mask, 16, [1], 0, repeat=3, pick=sampler(0.7, 0.95, seed=4))
    assert chains == seq2seq_loop(model, ids, mask, 16, [1], 0, repeat=3, pick=sampler(0.7, 0.95, seed=4))
    assert chains != seq2seq_loop(model, ids, mask, 16, [1], 0, repeat=3, pick=sampler(0.7, 0.95, seed=5))
    assert len(chains) == 15 and len({tuple(c) for c in chains[:3]}) == 3  # three different chains of prompt 0
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        theirs = model.generate(input_ids=ids.repeat_interleave(3, 0), attention_mask=mask.repeat_interleave(3, 0),
                                max_new_tokens=16, do_sample=True, temperature=0.7, top_p=0.95, top_k=0)
    assert chains == theirs[:, 1:].tolist()  # the same filters and the same CPU random stream


def test_min_new_tokens_keeps_every_row_going_past_its_stop_id():
    from dlhw.lm.generate import seq2seq_loop

    model = _tiny_t5()
    ids, mask = _t5_batch()
    stop = seq2seq_loop(model, ids, mask, 12, [1], 0)[0][2]  # row 0 would end at its 3rd token
    assert seq2seq_loop(model, ids, mask, 12, [1, stop], 0)[0][2:] == [stop] + [0] * 9  # ended, then pads
    with torch.no_grad():
        theirs = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, min_new_tokens=12,
                                eos_token_id=[1, stop], do_sample=False)
    ours = seq2seq_loop(model, ids, mask, 12, [1, stop], 0, min_new_tokens=12)
    assert ours == theirs[:, 1:].tolist() and all(len(r) == 12 and stop not in r for r in ours)


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    from dlhw.lm.tiny import train_tiny_tokenizer

    tokenizer = train_tiny_tokenizer([p * 4 for p in PROMPTS], 300)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(3)
    return LlamaForCausalLM(config).eval(), tokenizer


def test_chat_generator_greedy_equals_generate_on_a_left_padded_batch_of_a_tiny_llama():
    from dlhw.lm.generate import cut_at_stop, left_pad

    model, tokenizer = _tiny_llama()
    generator = ChatGenerator(model, tokenizer, max_new_tokens=20)
    prompts = [generator.prompt_ids(as_conversation(p)) for p in PROMPTS]
    assert len({len(p) for p in prompts}) > 3  # the batch is padded
    ids, mask = left_pad(prompts, generator.pad_id)
    with torch.no_grad():
        theirs = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20, do_sample=False,
                                pad_token_id=generator.pad_id)[:, ids.shape[1]:]  # (B, L) new tokens
    ours = generator.generate_ids(prompts)
    assert [g.token_ids for g in ours] == [cut_at_stop(r, generator.stop_ids) for r in theirs.tolist()]
    assert sum(len(g.token_ids) for g in ours) > 40


def test_chat_generator_sampling_is_reproducible_and_per_call_settings_override():
    from dlhw.lm.sampling import sampler

    model, tokenizer = _tiny_llama()
    generator = ChatGenerator(model, tokenizer, max_new_tokens=20)
    prompts = [generator.prompt_ids(as_conversation(p)) for p in PROMPTS[:4]]
    first = generator.generate_ids(prompts, pick=sampler(1.0, 0.9, seed=2))
    assert [g.token_ids for g in first] == [g.token_ids for g in generator.generate_ids(prompts, pick=sampler(1.0, 0.9, seed=2))]
    greedy = generator.generate_ids(prompts)
    assert [g.token_ids for g in first] != [g.token_ids for g in greedy]  # the pick was used, the greedy default kept
    short = generator.generate_ids(prompts, max_new_tokens=3)
    assert [g.token_ids for g in short] == [g.token_ids[:3] for g in greedy]
