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
    code, out = run_cli("chat", str(tmp_path), "--prompts", "p.txt", "--out", str(tmp_path / "a.jsonl"))
    assert code == 2 and "the torch backend needs a chat run directory" in out


def test_recipe_and_method_must_agree():
    code, out = run_cli("config", "show", "chat-lora", "--preset", "tiny", "--set", "method.kind=partial")
    assert code == 2 and "use `dlhw train chat-partial`" in out
