import json

import pytest

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
    assert [r["path"] for r in first] == [f"prompts.txt:{i}" for i in range(1, 15)]
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
    assert [i.key for i in items] == ["a", "p.jsonl:2", "p.jsonl:3"]
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
        ("bad.jsonl:1", None),
        ("bad.jsonl:2", "not valid JSON (Expecting value, column 12)"),
        ("m", "bad.jsonl:3: messages must be a list, got int"),
        ("bad.jsonl:4", '"prompt" is empty'),
        ("bad.jsonl:5", None),
    ]
    txt = tmp_path / "p.txt"
    txt.write_text(" one \n\ntwo\n\n", encoding="utf-8")
    assert [(i.key, i.value, i.error) for i in read_prompts(txt)] == [
        ("p.txt:1", [{"role": "user", "content": "one"}], None),
        ("p.txt:2", None, "empty line"),
        ("p.txt:3", [{"role": "user", "content": "two"}], None),
    ]


def test_system_message_is_put_first_once():
    assert as_conversation("q", "s") == [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    conv = [{"role": "system", "content": "own"}, {"role": "user", "content": "q"}]
    assert as_conversation(conv, "s") == conv
