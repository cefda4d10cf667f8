from collections import Counter
from pathlib import Path

import pytest

from dlhw.core.persian import ZWNJ
from dlhw.errors import DataError
from dlhw.families.chat.config import ChatDataConfig
from dlhw.families.chat.data import (
    clean_conversation,
    load_hub_conversations,
    prepare_conversations,
    read_conversation_file,
)

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
    # 3 + 2 + 2 records: one has no assistant turn, one has only blank text
    assert len(splits.train) + len(splits.val) + len(splits.test) == 5
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
