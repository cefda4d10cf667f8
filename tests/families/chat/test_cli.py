import json

import pytest

from tests.conftest import run_cli


def test_full_preset_on_a_cpu_says_a_gpu_is_needed(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code, out = run_cli("train", "chat-lora", "--output-dir", str(tmp_path / "run"))
    assert code == 1
    assert "google/gemma-2-2b-it, a 2-3B parameter model: that needs a CUDA GPU" in out
    assert "--preset tiny" in out
    assert not (tmp_path / "run").exists()


def test_prompts_without_out_is_a_usage_error(tmp_path):
    (tmp_path / "model").mkdir()
    code, out = run_cli("chat", str(tmp_path), "--prompts", "p.txt")
    assert code == 2 and "--prompts and --out go together" in out


def test_chat_on_a_directory_that_is_not_a_chat_run(tmp_path):
    (tmp_path / "p.txt").write_text("hello\n", encoding="utf-8")
    code, out = run_cli("chat", str(tmp_path), "--prompts", str(tmp_path / "p.txt"), "--out", str(tmp_path / "a.jsonl"))
    assert code == 2 and "the torch backend needs a chat run directory" in out


def test_recipe_and_method_must_agree():
    code, out = run_cli("config", "show", "chat-lora", "--preset", "tiny", "--set", "method.kind=partial")
    assert code == 2 and "use `dlhw train chat-partial`" in out


@pytest.mark.slow
def test_a_malformed_jsonl_line_is_an_error_record_not_an_abort(chat_runs, tmp_path):
    prompts = tmp_path / "p.jsonl"
    # the same malformed line as in tests/families/summarization/test_cli.py: every text verb reads it alike
    prompts.write_text('{"prompt": "سلام"}\n{"text": "a line cut short\n'
                       '{"id": "q3", "messages": [{"role": "user", "content": "عدد ۸۸ را با حروف بنویس."}]}\n\n',
                       encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    code, log = run_cli("chat", "--model", str(chat_runs["lora"]), "--prompts", str(prompts), "--out", str(out),
                        "--max-new-tokens", "8", "--device", "cpu")
    assert code == 1, log  # one prompt failed, the others were answered
    records = {r["path"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert sorted(records) == [f"{prompts}:1", f"{prompts}:2", "q3"]  # the final blank line is no prompt
    assert records[f"{prompts}:2"] == {"path": f"{prompts}:2", "status": "error",
                                    "error": "ValueError: not valid JSON (Unterminated string starting at, column 10)"}
    assert records[f"{prompts}:1"]["status"] == records["q3"]["status"] == "ok"
    assert records["q3"]["prompt"] == "عدد ۸۸ را با حروف بنویس."
    assert "2 prompts done, 1 failed" in log
