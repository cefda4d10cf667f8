"""The chat family's report sections (data, model with the frozen check, evaluation with probes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlhw.core.metrics import read_jsonl
from dlhw.core.runs import RunFiles
from dlhw.reports.run_report import fmt


def data_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    data = summary.get("data")
    if not data:
        return []
    tokens = data["tokens"]["train"]
    out = [
        "## Data", "",
        f"- {data['train']} train / {data['val']} val / {data['test']} test conversations from {data['source']}"
        + (f"; skipped: {data['skipped']}" if data["skipped"] else ""),
        f"- train tokens per conversation: mean {tokens['tokens_mean']}, median {tokens['tokens_p50']}, "
        f"p95 {tokens['tokens_p95']}, max {tokens['tokens_max']}; {tokens['truncated']} truncated at "
        f"{config['data']['max_length']}, {tokens['dropped']} dropped",
        f"- chat template {'has' if data['system_role_in_template'] else 'has no'} system role"
        + ("" if data["system_role_in_template"] else " (system messages merged into the first user turn)"),
        "",
    ]
    return out


def model_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    model, method = summary.get("model"), summary.get("method")
    if not model or not method:
        return []
    name = method["kind"] + (f", variant {method['variant']}" if method.get("variant") else "")
    out = [
        "## Model", "",
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


def evaluation_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    if not evaluation:
        return []
    m, base = evaluation["metrics"], evaluation.get("base", {})
    out = ["## Evaluation", "", "| | test loss | perplexity | exact match |", "|---|---:|---:|---:|"]
    if base:
        out.append(f"| base model | {fmt(base['test_loss'])} | {base['perplexity']:.2f} | {base['exact_match']:.3f} |")
    out.append(f"| fine-tuned | {fmt(m['test_loss'])} | {m['perplexity']:.2f} | {m['exact_match']:.3f} |")
    out += ["", "Exact match by task: " + ", ".join(f"{t} {v:.3f}" for t, v in m["exact_match_by_task"].items()), ""]
    probes = read_jsonl(RunFiles(run_dir).probes)
    if probes:
        out += ["### Probes (greedy, before and after training)", "", "| prompt | base model | fine-tuned |",
                "|---|---|---|"]
        cell = lambda t: str(t or "").replace("|", "\\|").replace("\n", " ")  # noqa: E731
        out += [f"| {cell(p['prompt'])} | {cell(p['base'])} | {cell(p['fine_tuned'])} |" for p in probes]
        out.append("")
    return out
