"""Summarization data: native TweetSumm and CNN/DM layouts, cleaning, splits, lengths, prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlhw.errors import DataError
from dlhw.families.summarization.config import SummDataConfig
from dlhw.families.summarization.data import (
    PromptBuilder,
    choose_limits,
    length_statistics,
    prepare_summaries,
    read_flat_file,
    sentences_to_lines,
)
from dlhw.families.summarization.summary_tasks import (
    make_articles,
    make_dialogues,
    plain_text,
    record_list,
)
from dlhw.families.summarization.tweetsumm import clean_tweet, format_turns

FIXTURES = Path(__file__).parent / "fixtures"


def test_cleaning_removes_mentions_links_and_extra_space() -> None:
    assert clean_tweet("@AcmeHelp  my phone   died https://t.co/AbC12 see www.x.com/a @bob_1!") == "my phone died see !"
    assert clean_tweet("mail me at a@b.com") == "mail me at a@b.com"  # an address is not a mention
    assert format_turns([(True, "@x hi"), (False, "@y hello https://t.co/z"), (True, "@x ")]) == \
        "customer: hi\nagent: hello"


def test_dialogstudio_files_load_with_every_reference() -> None:
    cfg = SummDataConfig(dataset="tweetsumm", source="local", path=str(FIXTURES / "dialogstudio"),
                         val_examples=1, test_examples=5)
    splits = prepare_summaries(cfg, seed=0)
    assert (len(splits.train), len(splits.test)) == (4, 2)  # the record without a summary is skipped
    first = next(e for e in splits.train if e.id == "conv1")
    assert first.document == ("customer: my phone 1 will not charge\nagent: sorry! have you tried a new cable?\n"
                              "customer: yes, still broken\nagent: please DM us your order number ^AB")
    assert first.references == ("Customer's phone will not charge.\nAgent asks for the order number.",
                                "The phone does not charge even with a new cable.\nAgent asks to DM the order number.")
    assert [len(e.references) for e in splits.test] == [3, 3]


def test_raw_tweetsumm_is_rebuilt_from_twcs() -> None:
    cfg = SummDataConfig(dataset="tweetsumm", source="raw", path=str(FIXTURES / "tweetsumm_raw"),
                         val_examples=1, test_examples=5)
    splits = prepare_summaries(cfg, seed=0)
    assert {e.id for e in splits.train} == {"c1", "c2"}  # c9 names a tweet twcs.csv lacks
    c2 = next(e for e in splits.train if e.id == "c2")
    assert c2.document == "customer: battery drains fast\nagent: Update to the latest iOS and let us know."
    assert c2.references == ("Customer's battery drains fast.\nAgent suggests updating iOS.", "Battery drains.\nUpdate iOS.")
    assert splits.test[0].document == "customer: where is my package\nagent: It will arrive tomorrow."
    assert "1 dialogues lacked tweets" in splits.source


def test_cnn_dailymail_csv_and_parquet_splits(tmp_path: Path) -> None:
    import pandas as pd

    for split in ("train", "validation", "test"):
        pd.read_csv(FIXTURES / "cnndm" / f"{split}.csv").to_parquet(tmp_path / f"{split}-00000-of-00001.parquet")
    for folder in (FIXTURES / "cnndm", tmp_path):
        cfg = SummDataConfig(source="local", path=str(folder), train_examples=4, val_examples=5, test_examples=5)
        splits = prepare_summaries(cfg, seed=3)
        assert (len(splits.train), len(splits.val), len(splits.test)) == (4, 2, 3)
        assert splits.test[0].id == "test0000"
        assert splits.test[0].references == ("Council approves 3 parks .\nResidents welcome plan .",)


def test_flat_jsonl_with_dialogue_and_summary_list(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"dialogue": "customer: hi", "summary": ["s1", "s2"]}\n{"text": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"d.jsonl:2: needs one of article\|dialogue"):
        read_flat_file(path)
    path.write_text('{"dialogue": "customer: hi", "summary": ["s1", "s2"]}\n', encoding="utf-8")
    assert read_flat_file(path)[0].references == ("s1", "s2")


def test_embedded_highlights_are_sentences_of_the_article() -> None:
    for article in make_articles(20, seed=1):
        facts = article.references[0].split("\n")
        assert len(facts) == 2 and all(f in article.document for f in facts)
    dialogues = make_dialogues(10, seed=1)
    assert all(2 <= len(d.references) <= 3 and "@" not in d.document and "http" not in d.document for d in dialogues)


def test_length_statistics_and_limits() -> None:
    class Words:
        def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict[str, list[list[int]]]:
            return {"input_ids": [[0] * len(t.split()) for t in texts]}

    examples = prepare_summaries(SummDataConfig(source="embedded", embedded_examples=50, val_examples=5,
                                                test_examples=5), 0).train
    stats = length_statistics(examples, Words())
    assert stats["document_tokens"] == stats["document_words"]
    assert stats["document_words"]["min"] <= stats["document_words"]["p50"] <= stats["document_words"]["max"]
    limits = choose_limits(stats, SummDataConfig(max_length=256), None)
    assert limits["max_input_tokens"] == stats["document_tokens"]["p95"]
    assert limits["max_new_tokens"] == int(1.25 * stats["summary_tokens"]["p95"]) + 1


def test_sentence_split_for_lsum() -> None:
    assert sentences_to_lines("One. Two! Three? Four") == "One.\nTwo!\nThree?\nFour"


class _ByteTokenizer:
    """Characters as tokens (enough to test the prompt builder's cutting and fitting)."""

    chat_template = None
    eos_token_id = 0

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids)


def test_prompt_builder_cuts_documents_and_drops_shots_that_do_not_fit() -> None:
    from dlhw.families.summarization.data import SummaryExample

    builder = PromptBuilder(_ByteTokenizer(), "article", "plain", max_input_tokens=10, max_length=200,
                            max_new_tokens=20)
    prompt = builder.prompt("abcdefghijklmnop")
    assert prompt.truncated
    assert "".join(map(chr, prompt.ids)).endswith("Article:\nabcdefghij\nSummary:")
    shots = [SummaryExample(str(i), "x" * 10, ("y" * 30,)) for i in range(3)]
    fitted = builder.prompt("short", shots)
    assert fitted.shots_dropped == 2 and len(fitted.ids) + 20 <= 200
    assert builder.completion_ids("ok") == [ord(" "), ord("o"), ord("k"), 0]


def test_a_base_model_summary_ends_at_the_blank_line_that_separates_examples() -> None:
    generated = " Anna Smith won .\nAnna said yes .\n\nArticle:\nThe weather was cold ."
    assert PromptBuilder(_ByteTokenizer(), "article", "plain", 10, 200, 20).summary_text(generated) == \
        "Anna Smith won .\nAnna said yes ."
    chat = _ByteTokenizer()
    chat.chat_template = "{{ messages }}"  # type: ignore[assignment]
    assert PromptBuilder(chat, "article", "chat", 10, 200, 20).summary_text("One.\n\nTwo.") == "One.\n\nTwo."


def test_the_base_text_never_shows_the_task_layout_and_its_record_lists_follow_one_rule() -> None:
    import random

    lines = plain_text(700)
    for label in ("Article:", "Dialogue:", "Summary:"):
        assert not any(label in line for line in lines), label
    lists = [line for line in lines if line.count("\n\n") >= 3]
    assert len(lists) == 100  # one line in seven
    # a record list of the news rule: each record's picked lines are exactly its passage's two key facts
    def records(seed: int) -> list[str]:
        return record_list(random.Random(seed)).split("\n\n")[1:]  # after the heading line

    seed = next(i for i in range(50) if records(i)[0].count("\n") == 3)  # two lines picked: the news rule
    for record in records(seed):
        _, passage, picked = record.split("\n", 2)
        facts = picked.split(": ", 1)[1].split("\n")
        assert len(facts) == 2 and all(f in passage for f in facts) and facts[1].split()[1] == "said"


def test_data_inspect_writes_cnn_dailymail_length_statistics_and_plot(tmp_path: Path) -> None:
    import json

    from tests.conftest import run_cli

    code, out = run_cli("data", "inspect", "summarization", "--data-dir", str(FIXTURES / "cnndm"),
                        "--set", "data.val_examples=2", "--set", "data.test_examples=3", "--out", str(tmp_path))
    assert code == 0, out
    stats = json.loads((tmp_path / "length_stats.json").read_text(encoding="utf-8"))
    assert stats["train"] == 6 and stats["lengths"]["summary_words"]["min"] == 9
    assert stats["lengths"]["document_words"]["max"] == 20
    assert (tmp_path / "lengths.png").stat().st_size > 0


def _test_only(tmp_path: Path) -> Path:
    """A DialogStudio TweetSumm folder holding only test.json."""
    folder = tmp_path / "tweetsumm"
    folder.mkdir()
    (folder / "test.json").write_bytes((FIXTURES / "dialogstudio" / "test.json").read_bytes())
    return folder


def test_zero_shot_needs_only_the_test_split(tmp_path: Path) -> None:
    cfg = SummDataConfig(dataset="tweetsumm", source="local", path=str(_test_only(tmp_path)),
                         val_examples=1, test_examples=5)
    splits = prepare_summaries(cfg, seed=0, need_train=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (0, 0, 2)
    assert "no train split: zero-shot, the test split alone is read" in splits.notes
    with pytest.raises(DataError, match=r"empty train split after loading.*zero-shot prompting \(--shots 0\) "
                                        r"needs only test"):
        prepare_summaries(cfg, seed=0)


@pytest.mark.parametrize(("recipe", "overrides", "expected"), [
    ("summarize-lora", (), "int8"),                                         # TweetSumm LoRA: 8-bit, as assigned
    ("summarize-lora", ("model.quantization=nf4",), "nf4"),                 # 4-bit by --set
    ("summarize-lora", ("model.auto_quantization=nf4",), "nf4"),
    ("summarize-lora", ("data.dataset=cnn_dailymail",), "nf4"),             # other data keep QLoRA's NF4
])
def test_tweetsumm_lora_loads_8bit_by_default_on_cuda(monkeypatch, recipe, overrides, expected) -> None:
    """load_base's choice on a fake CUDA device: nothing is loaded, the resolved k-bit kind is recorded."""
    import torch

    from dlhw.core.registry import resolve_config
    from dlhw.families.summarization import train
    from dlhw.lm.hub import kbit_kind

    config = resolve_config(recipe, "full", None, overrides)
    seen = {}

    def fake_load(name, task, device, dtype, quantization, *args, quantize_by_default=False, auto_kind="nf4"):
        seen["kind"] = kbit_kind(quantization, name, device, quantize_by_default, auto_kind)
        return object(), type("Model", (), {"hf_device_map": {"": 0}})()

    monkeypatch.setattr(train, "load_hub_model", fake_load)
    monkeypatch.setattr(train, "check_quantization", lambda *_: None)  # no bitsandbytes here
    train.load_base(config, torch.device("cuda"))
    assert seen["kind"] == expected
    assert kbit_kind("auto", config.model.name, torch.device("cpu"), True, config.auto_kbit()) is None  # not off CUDA
