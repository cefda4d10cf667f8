"""``report.md`` of a run, rebuilt from the run's files whenever one of them changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dlhw.reports.plots import loss_curves


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``report.md``: config, data, model, training curve and samples, evaluation."""
    run_dir = Path(run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    summary = _load_json(run_dir / "train_summary.json") or {}
    evaluation = _load_json(run_dir / "eval.json")
    records = _records(run_dir / "metrics.jsonl")

    out = [f"# {config['recipe']} ({config['preset']} preset)", "", f"Run directory: `{run_dir}`", ""]
    out += (_chat_sections if "method" in summary else _caption_sections)(config, summary)
    train = summary.get("train")
    if train:
        out += [
            "## Training",
            "",
            f"- {train['global_step']} steps, {train['epochs']:.2f} epochs, {train['wall_time_s']:.1f} s; "
            f"peak memory {train['peak_memory_mb']:.0f} MiB"
            + ("; stopped early" if train["stopped_early"] else ""),
            f"- best validation loss {_fmt(train['best_eval_loss'])} ({train['best_checkpoint']})",
            "",
        ]
    train_curve, val_curve = loss_curves(records)
    if train_curve or val_curve:
        out += ["| epoch | train loss | validation loss |", "|---:|---:|---:|"]
        for epoch in sorted(set(train_curve) | set(val_curve)):
            out.append(f"| {epoch} | {_fmt(train_curve.get(epoch, ''))} | {_fmt(val_curve.get(epoch, ''))} |")
        out += ["", "![loss](plots/loss.png)", ""]
    samples = [(r["epoch"], k, v) for r in records for k, v in r.items() if k.startswith("sample")]
    if samples:
        out += [f"Sample after each epoch ({samples[0][1]}):", ""]
        out += [f"- epoch {e:.0f}: {v}" for e, _, v in samples]
        out.append("")
    if evaluation:
        out += (_chat_evaluation(run_dir, evaluation) if "change_from_base" in evaluation
                else _caption_evaluation(evaluation))
    path = run_dir / "report.md"
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def _caption_sections(config: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    out: list[str] = []
    data = summary.get("data")
    if data:
        out += ["## Data", "", f"- {data['splits']}"]
        out += [f"- {note.strip()}" for note in data.get("notes", [])]
        out += [
            f"- captions: {data['captions']['train']} train / {data['captions']['val']} val / "
            f"{data['captions']['test']} test",
            f"- vocabulary: {data['vocab_size']} tokens (min frequency "
            f"{config['data']['min_freq']}, with `<pad> <sos> <eos> <unk>`)",
            f"- caption length: {data['max_length']} tokens = {data['max_length_how']}; "
            f"{data['truncated_train_captions']} training captions truncated",
            "",
        ]
    model = summary.get("model")
    if model:
        out += [
            "## Model",
            "",
            f"- decoder: `{model['arch']}`; encoder output per image: {model['encoder_output_shape']}",
            f"- parameters: {model['parameters']:,} ({model['trainable_parameters']:,} trainable)",
            f"- encoder features cached: {model['feature_cache']}"
            + (f" ({model['feature_cache_seconds']} s to compute)" if model["feature_cache"] else ""),
            "",
        ]
    return out


def _caption_evaluation(evaluation: dict[str, Any]) -> list[str]:
    out: list[str] = []
    out += [
        "## Evaluation",
        "",
        f"Split `{evaluation['split']}`, {evaluation['num_images']} images, "
        f"{'greedy' if evaluation['beam_size'] == 1 else 'beam size ' + str(evaluation['beam_size'])} "
        f"decoding, backend {evaluation.get('backend', 'torch')}.",
        "",
        "| " + " | ".join(evaluation["metrics"]) + " |",
        "|" + "---:|" * len(evaluation["metrics"]),
        "| " + " | ".join(_fmt(v) for v in evaluation["metrics"].values()) + " |",
        "",
    ]
    out += [f"![{name}]({rel})" for name, rel in evaluation.get("plots", {}).items()]
    out.append("")
    return out


def _chat_sections(config: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    data, model, method = summary["data"], summary["model"], summary["method"]
    tokens = data["tokens"]["train"]
    name = method["kind"] + (f", variant {method['variant']}" if method.get("variant") else "")
    out = [
        "## Data", "",
        f"- {data['train']} train / {data['val']} val / {data['test']} test conversations from {data['source']}"
        + (f"; skipped: {data['skipped']}" if data["skipped"] else ""),
        f"- train tokens per conversation: mean {tokens['tokens_mean']}, median {tokens['tokens_p50']}, "
        f"p95 {tokens['tokens_p95']}, max {tokens['tokens_max']}; {tokens['truncated']} truncated at "
        f"{config['data']['max_length']}, {tokens['dropped']} dropped",
        f"- chat template {'has' if data['system_role_in_template'] else 'has no'} system role"
        + ("" if data["system_role_in_template"] else " (system messages merged into the first user turn)"),
        "", "## Model", "",
        f"- base: `{model['base']}`, {model['decoder_layers']} decoder layers; method: **{name}**",
        f"- parameters: {model['parameters']:,}; trainable {model['trainable_parameters']:,} "
        f"({model['trainable_percent']:.3f}%)"
        + (f"; trained layers {model['partial_layers']}" if model.get("partial_layers") else ""),
    ]
    check = summary.get("frozen_check")
    if check:
        out.append(f"- frozen check: {check['identical']} of {check['frozen_tensors']} frozen tensors bit-identical "
                   f"after training; {check['changed']} of {check['trainable_tensors']} trainable tensors changed")
    return [*out, ""]


def _chat_evaluation(run_dir: Path, evaluation: dict[str, Any]) -> list[str]:
    m, base = evaluation["metrics"], evaluation.get("base", {})
    out = ["## Evaluation", "", "| | test loss | perplexity | exact match |", "|---|---:|---:|---:|"]
    if base:
        out.append(f"| base model | {_fmt(base['test_loss'])} | {base['perplexity']:.2f} | {base['exact_match']:.3f} |")
    out.append(f"| fine-tuned | {_fmt(m['test_loss'])} | {m['perplexity']:.2f} | {m['exact_match']:.3f} |")
    out += ["", "Exact match by task: " + ", ".join(f"{t} {v:.3f}" for t, v in m["exact_match_by_task"].items()), ""]
    probes = _records(run_dir / "probes.jsonl")
    if probes:
        out += ["### Probes (greedy, before and after training)", "", "| prompt | base model | fine-tuned |",
                "|---|---|---|"]
        cell = lambda t: str(t or "").replace("|", "\\|").replace("\n", " ")  # noqa: E731
        out += [f"| {cell(p['prompt'])} | {cell(p['base'])} | {cell(p['fine_tuned'])} |" for p in probes]
        out.append("")
    return out
