"""``dlhw ner``: --text, batch files with bad lines and a very long line, resume after a kill, shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

LONG = " ".join(["Helen Adams said the Westgate 40 sold well in Lima ."] * 182)  # 2,002 words
LINES = [
    b"Felix Parker flew from Quito to Hanoi on 27 August 2024 .",
    b"",
    "علی رضایی سال گذشته به شرکت پویا در ارومیه پیوست .".encode(),
    b"bad \xff\xfe bytes",
    LONG.encode(),
    "Sara Moore met سهراب محمدی in تهران at 10:30 am , می‌گوید .".encode(),
    b"   ",
]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_text_prints_the_tagged_sentence(ner_run):
    code, out = run_cli("ner", "--model", str(ner_run), "--text", "Helen Adams flew from Lima to Quito on 3 May 2021 .")
    assert code == 0, out
    first, *entities = out.splitlines()
    assert first.startswith("[PER Helen Adams] flew from [LOC Lima] to [LOC Quito]")
    assert entities[0].split() == ["PER", "0-11", "Helen", "Adams"]


@pytest.mark.slow
def test_a_file_with_bad_lines_gets_one_record_per_line(ner_run, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_bytes(b"\r\n".join(LINES) + b"\r\n")  # CRLF line ends
    out = tmp_path / "entities.jsonl"
    code, log = run_cli("ner", str(source), "--model", str(ner_run), "--out", str(out), "--batch-size", "2")
    assert code == 1, log  # some lines failed
    records = {r["path"]: r for r in _records(out)}
    assert sorted(records) == [f"{source}:{i}" for i in range(1, 8)]
    errors = {k.rsplit(":", 1)[1]: r["error"] for k, r in records.items() if r["status"] == "error"}
    assert errors == {"2": "ValueError: empty line",
                      "4": "ValueError: not UTF-8 (byte 0xff at column 5)",
                      "7": "ValueError: empty line"}
    long = records[f"{source}:5"]
    assert len(long["tokens"]) == len(long["tags"]) == 2002  # tagged in full through windows
    assert long["entities"][0] == {"type": "PER", "text": "Helen Adams", "start": 0, "end": 11}
    entities = 0
    for i, raw in enumerate(LINES, start=1):
        record = records[f"{source}:{i}"]
        if record["status"] != "ok":
            continue
        line = raw.decode("utf-8")
        assert record["text"] == line
        for e in record["entities"]:
            assert line[e["start"]:e["end"]] == e["text"]
            entities += 1
    assert entities > 200
    mixed = records[f"{source}:6"]
    assert "می\u200cگوید" in mixed["tokens"] and "تهران" in mixed["tokens"]
    assert "4 lines done, 3 failed" in log


@pytest.mark.slow
def test_jsonl_input_and_csv_output_on_onnxruntime_int8(ner_export, tmp_path):
    export_dir, _ = ner_export
    source = tmp_path / "texts.jsonl"
    source.write_text(json.dumps({"text": "Grace King joined Goldcrest Bank in Lagos ."}) + "\n" + "{not json\n",
                      encoding="utf-8")
    out = tmp_path / "entities.csv"
    code, log = run_cli("ner", str(source), "--model", str(export_dir), "--backend", "onnxruntime", "--int8",
                        "--out", str(out))
    assert code == 1, log
    import csv

    rows = {r["path"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert [rows[f"{source}:{i}"]["status"] for i in (1, 2)] == ["ok", "error"]
    tagged = rows[f"{source}:1"]["result"]
    assert tagged.startswith("[PER Grace King] joined ")  # int8 weights may move the weaker entities' tags
    import re

    assert re.sub(r"\[[A-Z]+ ([^\]]*)\]", r"\1", tagged) == "Grace King joined Goldcrest Bank in Lagos ."
    assert rows[f"{source}:2"]["error"].startswith("ValueError: not valid JSON")


@pytest.mark.slow
def test_a_killed_job_resumes_without_gaps_or_duplicates(ner_run, tmp_path):
    source = tmp_path / "many.txt"
    source.write_text("\n".join(f"Person {i} Lewis met Nina Young in Oslo on {i % 28 + 1} May 2020 ." for i in range(30))
                      + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "dlhw", "ner", str(source), "--model", str(ner_run), "--out", str(out),
            "--batch-size", "4"]
    killed = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "DLHW_FAULT": "kill-after-batch:3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    partial = _records(out)
    assert len(partial) == 12  # three batches of four, flushed before the kill
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    paths = [r["path"] for r in _records(out)]
    assert len(paths) == len(set(paths)) == 30
    assert paths[:12] == [r["path"] for r in partial]
    assert set(paths) == {f"{source}:{i}" for i in range(1, 31)}


@pytest.mark.slow
def test_shards_split_the_lines(ner_run, tmp_path):
    source = tmp_path / "t.txt"
    source.write_text("\n".join(f"Oscar Green visited Rome {i} times ." for i in range(9)) + "\n", encoding="utf-8")
    seen = []
    for i in range(2):
        out = tmp_path / f"s{i}.jsonl"
        code, log = run_cli("ner", str(source), "--model", str(ner_run), "--out", str(out), "--shard", f"{i}/2")
        assert code == 0, log
        seen.append({r["path"] for r in _records(out)})
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 9


def test_usage_errors():
    code, out = run_cli("ner", "--model", ".", "--text", "x", "a.txt")
    assert code == 2 and "--text tags one sentence" in out
    code, out = run_cli("ner", "--model", ".")
    assert code == 2 and "give --text SENTENCE, or INPUTS and --out" in out


@pytest.mark.slow
def test_tensorrt_without_a_gpu_fails_at_once_naming_what_is_missing(ner_export, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    export_dir, _ = ner_export
    code, out = run_cli("ner", "--model", str(export_dir), "--backend", "tensorrt", "--text", "Ali went home .")
    assert code == 2
    assert "TensorRT is not available on this machine" in out and "--backend onnxruntime" in out
