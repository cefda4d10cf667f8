"""Every chat method exports to ONNX (adapters merged, soft prompts folded) and decodes the same."""

import json

import pytest

from dlhw.backends.tensorrt import tensorrt_missing
from tests.conftest import CHAT_VARIANTS, run_cli

PROMPTS = ["حاصل جمع ۳ و ۹ چند است؟", "عدد ۸۸ را با حروف بنویس.", "از دو عدد ۷ و ۱۹ کدام بزرگ‌تر است؟", "سلام",
           "یک جمله دربارهٔ باران و دریا بنویس.", "۵ به‌اضافهٔ ۴ چند می‌شود؟"]


@pytest.fixture(scope="module")
def exports(chat_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("chat-exports")

    class Exports(dict):
        def __missing__(self, name):
            out = root / name
            code, log = run_cli("export", str(chat_runs[name]), "--onnx", "--out", str(out))
            assert code == 0, log
            self[name] = (out, log)
            return self[name]

    return Exports()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHAT_VARIANTS))
def test_every_method_exports_with_token_for_token_parity(exports, chat_runs, name):
    out, log = exports[name]
    assert "greedy tokens equal on 12/12 prompts" in log
    meta = json.loads((out / "export.json").read_text())
    assert meta["parity"]["equal_prompts"] == meta["parity"]["prompts"] == 12
    chat = json.loads((out / "chat.json").read_text())
    config = json.loads((chat_runs[name] / "train_summary.json").read_text())
    if name in ("prompt-tuning", "p-tuning"):  # virtual tokens folded into the embedding matrix
        assert len(chat["virtual_ids"]) == 8 and chat["virtual_ids"][0] == chat["vocab_size"]
    else:
        assert chat["virtual_ids"] == []
    assert (out / "prefix.npz").is_file() == (name == "prefix-tuning")
    assert config["method"]["kind"] == chat["method"]


@pytest.mark.slow
def test_chat_through_onnxruntime_answers_like_torch_and_resumes(exports, chat_runs, tmp_path):
    out, _ = exports["prefix-tuning"]
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS), encoding="utf-8")
    answers = {}
    for backend, target in (("torch", chat_runs["prefix-tuning"]), ("onnxruntime", out)):
        result = tmp_path / f"{backend}.jsonl"
        code, log = run_cli("chat", str(target), "--backend", backend, "--prompts", str(prompts), "--out", str(result),
                            "--batch-size", "4", "--max-new-tokens", "20", "--device", "cpu")
        assert code == 0, log
        assert "tokens/s" in log
        answers[backend] = [json.loads(line) for line in result.read_text(encoding="utf-8").splitlines()]
    assert [r["answer"] for r in answers["torch"]] == [r["answer"] for r in answers["onnxruntime"]]

    result = tmp_path / "onnxruntime.jsonl"
    lines = result.read_text(encoding="utf-8").splitlines(keepends=True)
    result.write_text("".join(lines[:2]) + lines[2][:15], encoding="utf-8")  # killed mid-write
    code, log = run_cli("chat", str(out), "--backend", "onnxruntime", "--prompts", str(prompts), "--out", str(result),
                        "--batch-size", "4", "--max-new-tokens", "20")
    assert code == 0 and "4 prompts done" in log and "2 skipped" in log, log
    again = [json.loads(line) for line in result.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["answer"] for r in again) == sorted(r["answer"] for r in answers["onnxruntime"])


@pytest.mark.slow
def test_int8_export_reports_the_perplexity_change(chat_runs, tmp_path):
    code, log = run_cli("export", str(chat_runs["lora"]), "--onnx", "--int8", "--out", str(tmp_path / "q"))
    assert code == 0, log
    q = json.loads((tmp_path / "q" / "export.json").read_text())["int8"]
    assert q["bytes_int8"] < 0.6 * q["bytes_fp32"]
    assert q["test_perplexity_fp32"] > 1 and q["test_perplexity_int8"] > 1
    assert f"({q['perplexity_change_percent']:+.2f}%)" in log
    code, log = run_cli("chat", str(tmp_path / "q"), "--backend", "onnxruntime", "--int8", "--prompts",
                        str(_write(tmp_path / "p.txt")), "--out", str(tmp_path / "a.jsonl"), "--max-new-tokens", "8")
    assert code == 0, log


def _write(path):
    path.write_text("\n".join(PROMPTS[:2]), encoding="utf-8")
    return path


@pytest.mark.slow
def test_export_refuses_when_ort_tokens_differ(chat_runs, tmp_path, monkeypatch):
    from dlhw.lm import ort as chat_ort

    real = chat_ort.OrtChatGenerator.generate

    def off_by_one(self, conversations, streamer=None, record=None):
        gens = real(self, conversations, streamer, record)
        gens[0].token_ids = gens[0].token_ids[:-1] + [0]
        return gens

    monkeypatch.setattr(chat_ort.OrtChatGenerator, "generate", off_by_one)
    code, log = run_cli("export", str(chat_runs["lora"]), "--onnx", "--out", str(tmp_path / "bad"))
    assert code == 1 and "ONNX export differs from torch: greedy tokens of 1/12 prompts differ" in log
    assert not any(tmp_path.iterdir()), "a failed export leaves nothing behind"


@pytest.mark.skipif(not tensorrt_missing(), reason="TensorRT is available here")
def test_tensorrt_without_a_gpu_fails_fast(tmp_path):
    import time

    (tmp_path / "p.txt").write_text("hello\n", encoding="utf-8")
    start = time.perf_counter()
    code, log = run_cli("chat", str(tmp_path), "--backend", "tensorrt", "--prompts", str(tmp_path / "p.txt"), "--out",
                        str(tmp_path / "a.jsonl"))
    assert code == 2 and "TensorRT is not available on this machine" in log
    assert time.perf_counter() - start < 30


@pytest.mark.slow
@pytest.mark.skipif(not tensorrt_missing(), reason="TensorRT is available here")
def test_tensorrt_export_of_a_chat_run_fails_fast(chat_runs, tmp_path):
    code, log = run_cli("export", str(chat_runs["lora"]), "--onnx", "--tensorrt", "--out", str(tmp_path / "trt"))
    assert code == 2 and "TensorRT is not available on this machine" in log
    assert not (tmp_path / "trt").exists()


@pytest.mark.slow
def test_a_killed_onnxruntime_chat_job_resumes_without_gaps_or_duplicates(exports, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from dlhw.families.chat.persian_tasks import make_examples

    out_dir, _ = exports["lora"]
    prompts = tmp_path / "many.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": e.question}, ensure_ascii=False) + "\n"
                               for i, e in enumerate(make_examples(80, seed=9))), encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    argv = [sys.executable, "-m", "dlhw", "chat", str(out_dir), "--backend", "onnxruntime", "--prompts", str(prompts),
            "--out", str(out), "--batch-size", "2", "--max-new-tokens", "12"]
    killed = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "DLHW_FAULT": "kill-after-batch:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    before = [json.loads(line)["path"] for line in out.read_text(encoding="utf-8").splitlines()]
    # two windows of 8 batches of two (decoded sorted by length, written in input order) before the kill
    assert before == [f"q{i}" for i in range(32)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tokens/s" in done.stderr and "32 skipped" in done.stderr
    ids = [json.loads(line)["path"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == len(set(ids)) == 80


@pytest.mark.slow
def test_export_reports_the_logit_difference_honours_atol_and_loads_the_model_once(chat_runs, tmp_path,
                                                                                   monkeypatch):
    from dlhw.lm import run as chat_run

    loads = []
    real = chat_run.load_chat_run
    monkeypatch.setattr(chat_run, "load_chat_run", lambda *a, **k: loads.append(a) or real(*a, **k))
    code, log = run_cli("export", str(chat_runs["prompt-tuning"]), "--onnx", "--int8", "--out", str(tmp_path / "ok"))
    assert code == 0, log
    assert len(loads) == 1, "export, parity check and int8 share one loaded model"
    parity = json.loads((tmp_path / "ok" / "export.json").read_text())["parity"]
    diff = parity["max_abs_diff"]["logits"]
    assert 0 < diff <= parity["atol"] == 1e-3
    assert f"max |diff| logits {diff:.2g} (tolerance 0.001)" in log

    code, log = run_cli("export", str(chat_runs["prompt-tuning"]), "--onnx", "--atol", "1e-9",
                        "--out", str(tmp_path / "strict"))
    assert code == 1
    assert f"ONNX export differs from torch by {diff:.3g} in 'logits'" in log  # the same measured difference
    assert "exceeds the tolerance 1e-09" in log
    assert not (tmp_path / "strict").exists()
