"""``dlhw summarize`` on a folder (good, empty, non-UTF-8, over-long documents), kill and resume;
fast failures of the full preset offline and of 4-bit without CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _inputs(folder: Path) -> Path:
    from dlhw.families.summarization.summary_tasks import make_articles

    folder.mkdir()
    # five-sentence articles (two facts, three distractors): well under the input limit, the p95 of train documents
    articles = [a for a in make_articles(30, seed=99) if a.document.count(" . ") == 4][:7]
    for i, a in enumerate(articles[:4]):
        (folder / f"a{i}.txt").write_text(a.document, encoding="utf-8")
    (folder / "empty.txt").write_text("  \n", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("caf\xe9 na\xefve".encode("latin-1"))
    (folder / "long.txt").write_text(" ".join(a.document for a in articles), encoding="utf-8")
    (folder / "more.jsonl").write_text(json.dumps({"article": articles[4].document}) + "\n\n"
                                       + json.dumps({"title": "no document"}) + "\n", encoding="utf-8")
    return folder


def _records(path: Path) -> dict[str, dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len({r["path"] for r in records}) == len(records)  # no duplicates
    return {Path(r["path"]).name: r for r in records}


@pytest.mark.slow
def test_summarize_folder_with_bad_inputs_and_truncation(summarization_runs: dict[str, Path],
                                                         tmp_path: Path) -> None:
    run = summarization_runs["sft"]
    folder = _inputs(tmp_path / "docs")
    out = tmp_path / "s.jsonl"
    code, text = run_cli("summarize", str(folder), "--model", str(run), "--out", str(out), "--batch-size", "3")
    assert code == 1, text  # some inputs failed
    records = _records(out)
    assert set(records) == {"a0.txt", "a1.txt", "a2.txt", "a3.txt", "empty.txt", "latin1.txt", "long.txt",
                            "more.jsonl:1", "more.jsonl:2", "more.jsonl:3"}
    assert records["empty.txt"] == {"path": str(folder / "empty.txt"), "status": "error",
                                    "error": "ValueError: empty file"}
    assert records["latin1.txt"] == {"path": str(folder / "latin1.txt"), "status": "error",
                                     "error": "ValueError: not UTF-8 (byte 0xe9 at line 1, column 4)"}
    assert records["more.jsonl:2"]["error"] == "ValueError: empty line"  # an empty line is an input gone wrong
    assert records["more.jsonl:3"]["status"] == "error"
    assert 'expected an object with a string field "article" or' in records["more.jsonl:3"]["error"]
    assert records["long.txt"]["status"] == "ok" and records["long.txt"]["truncated"] is True
    good = [records[k] for k in ("a0.txt", "a1.txt", "a2.txt", "a3.txt", "more.jsonl:1")]
    assert all(r["status"] == "ok" and r["truncated"] is False and r["summary"] for r in good)
    assert "6 documents done, 4 failed" in text


@pytest.mark.slow
def test_a_malformed_jsonl_line_is_an_error_record_not_an_abort(summarization_runs: dict[str, Path],
                                                                tmp_path: Path) -> None:
    run = summarization_runs["sft"]
    source = tmp_path / "docs.jsonl"
    # the same malformed line as in tests/families/chat/test_cli.py: every text verb reads it alike
    source.write_text('{"article": "the mayor opened the bridge on monday ."}\n{"text": "a line cut short\n'
                      '{"document": "rain is expected in the north tomorrow ."}\n', encoding="utf-8")
    out = tmp_path / "s.jsonl"
    code, text = run_cli("summarize", str(source), "--model", str(run), "--out", str(out))
    assert code == 1, text
    records = _records(out)
    assert records["docs.jsonl:2"] == {"path": f"{source}:2", "status": "error",
                                       "error": "ValueError: not valid JSON (Unterminated string starting at, "
                                                "column 10)"}
    assert records["docs.jsonl:1"]["status"] == records["docs.jsonl:3"]["status"] == "ok"
    assert "2 documents done, 1 failed" in text


@pytest.mark.slow
def test_killed_summarize_job_resumes_without_gaps_or_duplicates(summarization_runs: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    run = summarization_runs["sft"]
    folder = _inputs(tmp_path / "docs")
    reference = tmp_path / "reference.jsonl"
    assert run_cli("summarize", str(folder), "--model", str(run), "--out", str(reference), "--batch-size", "2")[0] == 1
    out = tmp_path / "resumed.jsonl"
    # --batch-size 1: the runner hands the generator windows of LENGTH_WINDOW (8) documents, which it decodes
    # sorted by length; each window is written as soon as it is done
    command = [sys.executable, "-m", "dlhw", "summarize", str(folder), "--model", str(run), "--out", str(out),
               "--batch-size", "1"]
    killed = subprocess.run(command, env={**os.environ, "DLHW_FAULT": "kill-after-batch:1"}, capture_output=True,
                            text=True)
    assert killed.returncode == -9, killed.stderr
    assert len(_records(out)) == 8  # the first window was written before the kill
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 1 and "8 skipped" in resumed.stderr
    assert _records(out) == _records(reference)


def test_full_preset_offline_fails_fast_naming_the_ids(tmp_path: Path) -> None:
    code, out = run_cli("train", "summarize-sft", "--output-dir", str(tmp_path / "a"))
    assert code == 1
    assert "abisee/cnn_dailymail (3.0.0)" in out and "--data-dir" in out and "--preset tiny" in out
    code, out = run_cli("train", "summarize-lora", "--output-dir", str(tmp_path / "b"))
    assert code == 1
    assert "Salesforce/dialogstudio (TweetSumm)" in out and "--data-dir" in out and "--preset tiny" in out
    assert not (tmp_path / "a").exists()  # no empty run left behind


def test_four_bit_without_cuda_fails_fast(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code, out = run_cli("prompt", "summarize", "--preset", "tiny", "--model", "meta-llama/Llama-3.2-1B",
                        "--quantization", "nf4", "--output-dir", str(tmp_path / "p"))
    assert code == 2
    assert "4-bit NF4 loading (bitsandbytes) needs a CUDA GPU" in out
    assert not (tmp_path / "p").exists()  # no run directory without a run in it
    code, out = run_cli("train", "summarize-lora", "--preset", "tiny", "--set", "model.quantization=int8",
                        "--output-dir", str(tmp_path / "t"))
    assert code == 2 and "8-bit loading (bitsandbytes) needs a CUDA GPU" in out


@pytest.mark.slow
def test_zero_shot_prompting_on_a_folder_with_only_test_json(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.json").write_bytes((Path(__file__).parent / "fixtures" / "dialogstudio" / "test.json").read_bytes())
    run_dir = tmp_path / "run"
    code, out = run_cli("prompt", "summarize", "--preset", "tiny", "--dataset", "tweetsumm", "--shots", "0",
                        "--data-dir", str(data), "--output-dir", str(run_dir))
    assert code == 0, out
    stats = json.loads((run_dir / "data_stats.json").read_text(encoding="utf-8"))
    assert (stats["train"], stats["test"]) == (0, 2)
    assert "length limits from the test split (no train split)" in stats["notes"]
    assert len((run_dir / "predictions_test.jsonl").read_text(encoding="utf-8").splitlines()) == 2
    code, out = run_cli("prompt", "summarize", "--preset", "tiny", "--dataset", "tweetsumm", "--shots", "1",
                        "--data-dir", str(data), "--output-dir", str(tmp_path / "one-shot"))
    assert code != 0 and "empty train split" in out
