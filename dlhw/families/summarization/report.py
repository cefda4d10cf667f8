"""The summarization family's report sections, the length figure and ``dlhw data inspect summarization``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlhw.core.atomic import write_json_atomic
from dlhw.core.metrics import read_jsonl
from dlhw.core.runs import RunFiles
from dlhw.reports.plots import plt, save_figure


def plot_lengths(raw: dict[str, list[int]], limits: dict[str, Any] | None, path: Path) -> Path:
    """Histograms of document and summary lengths (tokens when measured, else words), with the limits."""
    unit = "tokens" if "document_tokens" in raw else "words"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, what, limit_key in ((axes[0], "document", "max_input_tokens"), (axes[1], "summary", "max_new_tokens")):
        values = raw[f"{what}_{unit}"]
        ax.hist(values, bins=30, color="tab:blue")
        if limits and unit == "tokens":
            ax.axvline(limits[limit_key], color="tab:red", ls="--", label=f"{limit_key} = {limits[limit_key]}")
            ax.legend(fontsize=8)
        ax.set_xlabel(f"{what} length ({unit})")
        ax.set_ylabel("examples")
        ax.set_title(f"{what.capitalize()} lengths (train)")
    return save_figure(fig, path)


def inspect_summarization_data(config: Any, out_dir: str | Path) -> dict[str, Any]:
    """Length statistics (words; tokens with the model's tokenizer where it loads) and their figure."""
    from dlhw.families.summarization.data import length_statistics, prepare_summaries

    out_dir = Path(out_dir)
    splits = prepare_summaries(config.data, config.seed)
    tokenizer = None
    if config.model.name:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(config.model.name)
        except OSError:
            tokenizer = None  # offline: words only
    stats = length_statistics(splits.train, tokenizer)
    raw = stats.pop("raw")
    figure = plot_lengths(raw, None, out_dir / "lengths.png")
    result = {**splits.summary(), "lengths": stats, "figure": str(figure)}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "length_stats.json", result)
    return result


def data_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    data = summary.get("data")
    if not data:
        return []
    d, s, lim = data["lengths"]["document_tokens"], data["lengths"]["summary_tokens"], data["limits"]
    return [
        "## Data", "",
        f"- {data['train']} train / {data['val']} val / {data['test']} test {data['kind']}s from {data['source']}; "
        f"{data['references_per_test_example']} references per test example",
        f"- document tokens: mean {d['mean']}, p50 {d['p50']}, p95 {d['p95']}, max {d['max']}; summary tokens: mean "
        f"{s['mean']}, p95 {s['p95']}, max {s['max']}",
        f"- input limit {lim['max_input_tokens']} tokens ({lim['rule']}); max_new_tokens {lim['max_new_tokens']} "
        f"({lim['new_tokens_rule']}); truncated documents {data['truncated_documents']}; template {data['template']}",
        "", "![lengths](plots/lengths.png)", "",
    ]


def model_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    model = summary.get("model")
    if not model:
        return []
    out = ["## Model", "", f"- base: `{model['base']}`; {summary.get('label')}",
           f"- parameters: {model['parameters']:,}; trainable {model['trainable_parameters']:,} "
           f"({model['trainable_percent']:.3f}%)"]
    check = summary.get("frozen_check")
    if check:
        out.append(f"- frozen check: {check['identical']} of {check['frozen_tensors']} frozen tensors bit-identical; "
                   f"{check['changed']} of {check['trainable_tensors']} trainable tensors changed")
    shots = summary.get("shots")
    if shots is not None:
        out.append(f"- prompting: {shots} examples from train (shots.jsonl), {summary.get('shots_dropped', 0)} dropped "
                   "to fit the context")
    return [*out, ""]


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " / ")


def evaluation_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    if not evaluation:
        return []
    m, base = evaluation["metrics"], evaluation.get("base", {})
    keys = ("rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_f1")
    out = ["## Evaluation", "", f"{evaluation['examples']} test examples; {evaluation['multi_reference']}; "
           f"ROUGE-Lsum: {evaluation['lsum']}.", "",
           "| | ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-Lsum | BERTScore F1 |", "|---|---:|---:|---:|---:|---:|"]
    if base:
        out.append("| base model, zero-shot | " + " | ".join(f"{base[k]:.4f}" for k in keys) + " |")
    out.append("| this run | " + " | ".join(
        f"{m[k]:.4f} [{m[k + '_ci95'][0]:.3f}, {m[k + '_ci95'][1]:.3f}]" for k in keys) + " |")
    note = "" if m.get("bertscore_comparable", True) else " (scored with the run's tiny base: not comparable to published numbers)"
    out += ["", f"95% bootstrap intervals in brackets. BERTScore model `{m['bertscore_model']}`, rescaled: "
                f"{m['bertscore_rescaled']}{note}.", ""]
    rows = read_jsonl(RunFiles(run_dir).predictions("test"))[: int(config.get("eval", {}).get("report_examples", 5))]
    if rows:
        out += ["### Examples", "", "| document | reference | prediction | ROUGE-L |", "|---|---|---|---:|"]
        out += [f"| {_cell(r['document'])[:400]} | {_cell(r['references'][0])} | {_cell(r['prediction'])} | "
                f"{r['rougeL']:.3f} |" for r in rows]
        out.append("")
    return out
