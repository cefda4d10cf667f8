import json
from collections import Counter
from pathlib import Path

import pytest

from dlhw.core.persian import ZWNJ
from dlhw.errors import DataError
from dlhw.families.chat.config import ChatDataConfig
from dlhw.families.chat.data import (
    clean_conversation,
    holdout_sizes,
    load_hub_conversations,
    prepare_conversations,
    read_conversation_file,
)
from tests.conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures"


def test_bare_message_lists_with_a_blank_line():
    records = read_conversation_file(FIXTURES / "messages.jsonl")
    assert [where.rsplit(":", 1)[1] for where, _ in records] == ["1", "3", "4"]  # line numbers, blank skipped
    assert [m["role"] for m in records[1][1]] == ["user", "assistant", "user", "assistant"]


def test_openai_messages_format():
    records = read_conversation_file(FIXTURES / "openai.jsonl")
    assert records[1][1][0] == {"role": "system", "content": "کوتاه پاسخ بده"}


def test_sharegpt_format_maps_human_and_gpt():
    (where, messages), _ = read_conversation_file(FIXTURES / "sharegpt.jsonl")
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[2]["content"] == "سلام"


def test_cleaning_normalizes_and_counts_unusable_records(tmp_path):
    cfg = ChatDataConfig(source="local", path=str(FIXTURES), val_examples=1, test_examples=1)
    splits = prepare_conversations(cfg, seed=0)
    # 3 + 2 + 2 records (one has no assistant turn, one has only blank text) + 2 + 2 Alpaca records
    assert len(splits.train) + len(splits.val) + len(splits.test) == 9
    assert splits.skipped == Counter({"no assistant turn": 2})
    every = [m["content"] for c in splits.train + splits.val + splits.test for m in c]
    assert "تو یک دستیار هستی." in every  # Arabic yeh/kaf -> Persian
    assert f"کتاب خوب{ZWNJ}تر کدام است؟" in every  # literal \u200c escape -> ZWNJ
    assert f"سلام! چطور می{ZWNJ}توانم کمک کنم؟" in every  # doubled ZWNJ -> one


def test_clean_conversation_reasons():
    assert clean_conversation([{"role": "user", "content": "x"}], "keep", True) == (None, "no assistant turn")
    assert clean_conversation([{"role": "assistant", "content": "x"}], "keep", True) == (None, "no user turn")


def test_bad_json_names_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n{"messages": [\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:2:\d+: not valid JSON"):
        read_conversation_file(bad)


def test_unknown_role_is_an_error_with_its_place(tmp_path):
    bad = tmp_path / "roles.jsonl"
    bad.write_text('[{"role": "narrator", "content": "x"}]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"roles.jsonl:1: message 0 has role 'narrator'"):
        read_conversation_file(bad)


def test_hub_format_loads_through_load_dataset_from_local_parquet(tmp_path):
    """universitytehran/SlimOrca's shape: one column `message`, a list of {role, content}."""
    import datasets

    rows = [[{"role": "system", "content": "s"}, {"role": "user", "content": f"q{i}"},
             {"role": "assistant", "content": f"a{i}"}] for i in range(6)]
    (tmp_path / "data").mkdir()
    datasets.Dataset.from_dict({"message": rows}).to_parquet(str(tmp_path / "data" / "train-00000-of-00001.parquet"))
    records = load_hub_conversations(str(tmp_path), "train", "message", limit=4)
    assert len(records) == 4
    cfg = ChatDataConfig(source="hub", hf_dataset=str(tmp_path), val_examples=1, test_examples=1)
    splits = prepare_conversations(cfg, seed=1)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4, 1, 1)
    assert splits.train[0][1]["role"] == "user"


def test_hub_failure_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="--preset tiny"):
        load_hub_conversations("universitytehran/SlimOrca", "train", "message", limit=None)


def test_embedded_splits_carry_answers_and_tasks():
    cfg = ChatDataConfig(source="embedded", embedded_examples=90, val_examples=10, test_examples=20)
    splits = prepare_conversations(cfg, seed=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (60, 10, 20)
    for conv, (answer, task) in zip(splits.test, splits.answers["test"], strict=True):
        assert conv[-1] == {"role": "assistant", "content": answer}
        assert task in ("add", "larger", "spell")


def test_alpaca_json_list_becomes_user_and_assistant_turns():
    """alpaca_data.json's shape: a JSON list of {instruction, input, output}."""
    records = read_conversation_file(FIXTURES / "alpaca.json")
    assert [m for _, m in records] == [
        [{"role": "user", "content": "این جمله را به انگلیسی ترجمه کن.\n\nهوا امروز آفتابی است."},
         {"role": "assistant", "content": "The weather is sunny today."}],
        [{"role": "user", "content": "پایتخت ایران کجاست؟"}, {"role": "assistant", "content": "تهران"}],
    ]


def test_alpaca_jsonl_with_an_optional_system_prompt():
    (_, first), (where, second) = read_conversation_file(FIXTURES / "alpaca.jsonl")
    assert first == [{"role": "user", "content": "Name a primary color."}, {"role": "assistant", "content": "Red"}]
    assert where.endswith("alpaca.jsonl:2")
    assert second == [{"role": "system", "content": "Answer briefly."},
                      {"role": "user", "content": "Sum the numbers.\n\n2 and 3"},
                      {"role": "assistant", "content": "5"}]


def test_alpaca_record_with_a_non_string_output_names_the_key(tmp_path):
    bad = tmp_path / "alpaca.jsonl"
    bad.write_text('{"instruction": "x", "input": "", "output": ["a", "b"]}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"alpaca.jsonl:1: Alpaca key 'output' must be a string, got list"):
        read_conversation_file(bad)


def _write_conversations(path: Path, n: int) -> None:
    lines = [json.dumps([{"role": "user", "content": f"عدد {i} به علاوه یک؟"},
                         {"role": "assistant", "content": str(i + 1)}], ensure_ascii=False) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_holdout_sizes_are_the_configured_counts_where_they_fit_and_scale_with_small_data():
    assert holdout_sizes(48, 150, 150, 0.1) == (4, 4)
    assert holdout_sizes(50000, 500, 500, 0.1) == (500, 500)
    assert holdout_sizes(90, 10, 10, 0.1) == (10, 10)  # counts that fit are kept as asked
    assert holdout_sizes(3000, 500, 500, 0.1) == (500, 500)
    assert holdout_sizes(5, 150, 150, 0.1) == (1, 1)
    assert holdout_sizes(48, 150, 150, None) == (150, 150)


def test_48_local_conversations_split_with_the_tiny_presets_counts(tmp_path):
    _write_conversations(tmp_path / "chat.jsonl", 48)
    cfg = ChatDataConfig(source="local", path=str(tmp_path), val_examples=150, test_examples=150)
    splits = prepare_conversations(cfg, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (40, 4, 4)


def test_too_few_conversations_name_the_keys_to_set(tmp_path):
    _write_conversations(tmp_path / "chat.jsonl", 48)
    cfg = ChatDataConfig(source="local", path=str(tmp_path), val_examples=150, test_examples=150,
                         holdout_fraction=None)
    with pytest.raises(DataError, match=r"48 usable conversations, fewer than val 150 \+ test 150 \+ 1; "
                                        r"lower data.val_examples / data.test_examples"):
        prepare_conversations(cfg, seed=0)


@pytest.mark.slow
def test_48_local_conversations_train_with_the_tiny_preset(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_conversations(data / "chat.jsonl", 48)
    run_dir = tmp_path / "run"
    code, out = run_cli("train", "chat-lora", "--preset", "tiny", "--data-dir", str(data),
                        "--set", "train.max_steps=2", "--output-dir", str(run_dir))
    assert code == 0, out
    assert f"conversations: 40 train / 4 val / 4 test from {data}" in out
    assert (run_dir / "model").is_dir() and (run_dir / "eval.json").is_file()
