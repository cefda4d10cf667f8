"""The eight chat methods train offline on the tiny preset and do what each promises."""

import json

import pytest
from safetensors.torch import load_file

from tests.conftest import CHAT_VARIANTS, run_cli

pytestmark = pytest.mark.slow
SOFT_PROMPTS = ("prompt-tuning", "prefix-tuning", "p-tuning")


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _eval_losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]


@pytest.mark.parametrize("name", list(CHAT_VARIANTS))
def test_method_learns_and_leaves_frozen_weights_alone(chat_runs, name):
    run_dir = chat_runs[name]
    losses = _eval_losses(run_dir)
    assert losses[0][0] == 0, "the validation loss is measured before the first step"
    start, end = losses[0][1], min(v for _, v in losses[1:])
    needed = 0.10 if name in SOFT_PROMPTS else 0.30
    assert (start - end) / start >= needed, f"{name}: eval loss {start:.3f} -> {end:.3f}"

    summary = _json(run_dir / "train_summary.json")
    check = summary["frozen_check"]
    assert check["identical"] == check["frozen_tensors"] > 0
    assert check["changed"] == check["trainable_tensors"] > 0
    assert 0 < summary["model"]["trainable_parameters"] < summary["model"]["parameters"]

    evaluation = _json(run_dir / "eval.json")
    if name not in SOFT_PROMPTS:
        assert evaluation["metrics"]["exact_match"] >= evaluation["base"]["exact_match"] + 0.05, evaluation
    probes = [json.loads(line) for line in (run_dir / "probes.jsonl").read_text().splitlines()]
    assert len(probes) == 5 and all(p["base"] is not None and p["fine_tuned"] is not None for p in probes)
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Evaluation" in report and "Probes" in report and "bit-identical" in report


def test_partial_changes_layers_0_1_and_the_last_two_only(chat_runs):
    run_dir = chat_runs["partial"]
    before = load_file(str(run_dir / "base_model" / "model.safetensors"))
    after = load_file(str(run_dir / "model" / "model.safetensors"))
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        same = bool((tensor == after[name]).all()) and tensor.dtype == after[name].dtype
        layer = int(name.split(".")[2]) if name.startswith("model.layers.") else None
        if layer in (0, 1, 4, 5):
            assert not same or "norm" in name, f"{name} did not change"
        else:
            assert same, f"frozen tensor {name} changed"
    changed_layers = {int(n.split(".")[2]) for n in before if n.startswith("model.layers.")
                      and not (before[n] == after[n]).all()}
    assert changed_layers == {0, 1, 4, 5}

    code, out = run_cli("model", "summary", str(run_dir), "--depth", "4")
    assert code == 0, out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()}
    assert rows["2"][-1] == "0" and rows["3"][-1] == "0"
    assert rows["0"][-1] == rows["0"][-2] != "0"  # every parameter of layer 0 trains


def test_report_compare_over_the_eight_runs(chat_runs, tmp_path):
    runs = [str(chat_runs[name]) for name in CHAT_VARIANTS]
    code, out = run_cli("report", "compare", *runs, "--out", str(tmp_path / "cmp"))
    assert code == 0, out
    md = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| method")]
    labels = [ln.split("|")[1].strip() for ln in table[:8]]
    assert labels == ["prompt-tuning", "prefix-tuning", "p-tuning", "lora", "dora", "rslora", "loha", "partial"]
    rows = _json(tmp_path / "cmp" / "compare.json")
    for row in rows:
        assert row["wall_time_s"] > 0 and row["peak_memory_mb"] > 0 and row["trainable_parameters"] > 0
        assert row["final_val_loss"] < row["start_val_loss"]
    for png in ("loss_overlay.png", "metrics.png"):
        data = (tmp_path / "cmp" / "plots" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "## Probes" in md and md.count("| base model |") == 5
