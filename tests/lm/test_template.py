import pytest

from dlhw.families.chat.persian_tasks import make_examples, plain_text
from dlhw.lm.template import IGNORE, ChatCollator, ChatFormatter, LengthStats, merge_system
from dlhw.lm.tiny import train_tiny_tokenizer

# Gemma-2-it's chat template, verbatim: it has no system role and raises on one.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
CONVERSATION = [
    {"role": "system", "content": "پاسخ را کوتاه بده."},
    {"role": "user", "content": "حاصل جمع ۲ و ۳ چند است؟"},
    {"role": "assistant", "content": "۵"},
    {"role": "user", "content": "عدد ۱۲ را با حروف بنویس."},
    {"role": "assistant", "content": "دوازده"},
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tiny_tokenizer(plain_text(300, seed=1), vocab_size=400)


def _assistant_text(tok, enc):
    return tok.decode([t for t, label in zip(enc.input_ids, enc.labels, strict=True) if label != IGNORE])


def test_only_assistant_tokens_carry_labels(tokenizer):
    fmt = ChatFormatter(tokenizer, max_length=256)
    assert fmt.system_role
    enc = fmt.encode(CONVERSATION)
    # every labelled token is its own id; every other token is -100
    assert all(label in (tok, IGNORE) for tok, label in zip(enc.input_ids, enc.labels, strict=True))
    assert _assistant_text(tokenizer, enc) == "۵<|end|>\nدوازده<|end|>\n"
    text = tokenizer.decode(enc.input_ids)
    assert text.startswith("<s><|system|>\nپاسخ را کوتاه بده.<|end|>\n<|user|>")
    masked = tokenizer.decode([t for t, label in zip(enc.input_ids, enc.labels, strict=True) if label == IGNORE])
    assert "حاصل جمع" in masked and "<|assistant|>" in masked and "دوازده" not in masked


def test_gemma_template_merges_the_system_turn(tokenizer):
    tokenizer = train_tiny_tokenizer(plain_text(100, seed=2), vocab_size=300)
    tokenizer.chat_template = GEMMA_TEMPLATE
    fmt = ChatFormatter(tokenizer, max_length=256)
    assert not fmt.system_role
    enc = fmt.encode(CONVERSATION)
    text = tokenizer.decode(enc.input_ids)
    assert "<start_of_turn>user\nپاسخ را کوتاه بده.\n\nحاصل جمع" in text
    assert _assistant_text(tokenizer, enc) == "۵<end_of_turn>\nدوازده<end_of_turn>\n"


def test_merge_system_without_a_user_turn():
    assert merge_system([{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]) == [
        {"role": "user", "content": "s"}, {"role": "assistant", "content": "a"}]


def test_truncation_is_counted_and_label_free_examples_dropped(tokenizer):
    fmt = ChatFormatter(tokenizer, max_length=12)
    stats = LengthStats()
    convs = [e.messages() for e in make_examples(9, seed=0)]
    kept = fmt.encode_all(convs, stats)
    assert stats.count == 9 and stats.truncated == 9  # every formatted example is longer than 12 tokens
    assert stats.dropped == 9 - len(kept)
    assert all(len(k["input_ids"]) == 12 for k in kept)
    assert stats.summary()["tokens_max"] == 12


def test_collator_pads_to_the_longest_or_to_a_fixed_length():
    items = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    batch = ChatCollator(pad_id=0)(items)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ChatCollator(pad_id=0, pad_to=8)(items)["input_ids"].shape == (2, 8)
