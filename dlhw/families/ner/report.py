"""The NER family's report sections, its figures, and ``dlhw data inspect ner`` (a data-quality report).

The quality report (``quality.md`` + PNGs) answers "what is wrong with the downloaded data?":
exact duplicate sentences within and across splits (and duplicates whose tags disagree), test
sentences that also occur in train (dropped from test by default), tags rewritten from IOB1 and
invalid transitions repaired, the label distribution per language, sentence lengths in words and
sub-tokens, and the sentences longer than the model's maximum length (truncated in training,
windowed at prediction time).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dlhw.families.ner.data import TYPES, NerSplits, prepare_ner_data
from dlhw.reports.plots import plt, save_figure
from dlhw.reports.run_report import fmt


def confusion_png(kinds: list[str], matrix: np.ndarray, path: Path) -> Path:
    """Row-normalized confusion of entity types (token level), counts in the cells."""
    rows = matrix.sum(axis=1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(kinds), 0.8 + 0.5 * len(kinds)))
    ax.imshow(matrix / rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(kinds)), kinds, rotation=45, ha="right")
    ax.set_yticks(range(len(kinds)), kinds)
    for i in range(len(kinds)):
        for j in range(len(kinds)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] / rows[i, 0] > 0.6 else "black")
    ax.set_xlabel("predicted type")
    ax.set_ylabel("true type")
    ax.set_title("Token-level confusion of entity types")
    return save_figure(fig, path)


def data_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    data = summary.get("data")
    if not data:
        return []
    q = data.get("quality", {})
    langs = "; ".join(f"{split}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                      for split, c in data["languages"].items())
    return [
        "## Data", "",
        f"- {data['train']} train / {data['val']} val / {data['test']} test sentences from {data['source']} ({langs})",
        f"- duplicates: {q.get('duplicates_train', 0)} extra copies in train "
        f"({q.get('duplicates_train_conflicting_tags', 0)} with different tags); {q.get('test_in_train', 0)} test "
        f"sentences also in train, {q.get('test_overlap_dropped', 0)} dropped from test",
        f"- tags: {q.get('iob1_tags_converted', 0)} rewritten from IOB1, {q.get('invalid_transitions_repaired', 0)} "
        "invalid transitions repaired",
        f"- sub-tokens: {data.get('truncated', 0)} training sentences truncated at {config['model']['max_length']}", "",
    ]


def model_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    model = summary.get("model")
    if not model:
        return []
    return [
        "## Model", "",
        f"- backbone `{model['backbone']}` ({model['layers']} layers, hidden {model['hidden_size']}, vocabulary "
        f"{model['vocab_size']}) + dlhw head (dropout {config['model']['dropout']} + linear over "
        f"{model['labels']} labels); {model['parameters']:,} parameters",
        f"- labels on {'every sub-token (B- -> I- after the first)' if config['model']['label_all_subtokens'] else 'the first sub-token of each word'}"
        "; standalone `▁` pieces carry no label", "",
    ]


def evaluation_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    if not evaluation:
        return []
    m, base = evaluation["metrics"], evaluation.get("untrained", {})
    out = ["## Evaluation", "", f"Split `{evaluation['split']}`, {m['sentences']} sentences, {m['tokens']} tokens; "
           f"{evaluation['mode']}; backend {evaluation['backend']}.", "",
           "| | precision | recall | F1 | token accuracy |", "|---|---:|---:|---:|---:|"]
    if base:
        out.append(f"| untrained | {fmt(base['precision'])} | {fmt(base['recall'])} | {fmt(base['f1'])} | "
                   f"{fmt(base['accuracy'])} |")
    out.append(f"| trained | {fmt(m['precision'])} | {fmt(m['recall'])} | {fmt(m['f1'])} | {fmt(m['accuracy'])} |")
    out += ["", f"Token accuracy misleads here: {m['o_share']:.1%} of the tokens are `O`, so tagging every token "
            f"`O` would already score {m['o_share']:.1%} accuracy with an entity F1 of 0. Entity F1 counts an entity "
            "only when its type and both boundaries are right.", "",
            "| language | sentences | precision | recall | F1 |", "|---|---:|---:|---:|---:|"]
    out += [f"| {k} | {v['sentences']} | {fmt(v['precision'])} | {fmt(v['recall'])} | {fmt(v['f1'])} |"
            for k, v in m["per_language"].items()]
    out += ["", "| type | support | precision | recall | F1 |", "|---|---:|---:|---:|---:|"]
    out += [f"| {k} | {v['support']} | {fmt(v['precision'])} | {fmt(v['recall'])} | {fmt(v['f1'])} |"
            for k, v in m["per_type"].items()]
    out.append("")
    out += [f"![{name}]({rel})" for name, rel in evaluation.get("plots", {}).items()]
    return [*out, ""]


def _label_plot(splits: NerSplits, path: Path) -> Path:
    langs = sorted({s.lang for s in splits.train})
    counts = {lang: Counter(t[2:] for s in splits.train if s.lang == lang for t in s.tags if t.startswith("B-"))
              for lang in langs}
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(TYPES))
    width = 0.8 / max(len(langs), 1)
    for k, lang in enumerate(langs):
        ax.bar(x + k * width, [counts[lang][t] for t in TYPES], width, label=lang)
    ax.set_xticks(x + width * (len(langs) - 1) / 2, TYPES)
    ax.set_ylabel("entities in train")
    ax.set_title("Entity types per language (train)")
    ax.legend()
    return save_figure(fig, path)


def _length_plot(words: list[int], pieces: list[int], max_length: int, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    top = max(max(pieces, default=1), max(words, default=1))
    bins = [float(b) for b in np.linspace(0, top + 1, 40)]
    ax.hist(words, bins=bins, alpha=0.6, label="words")
    ax.hist(pieces, bins=bins, alpha=0.6, label="sub-tokens (with <s> </s>)")
    ax.axvline(max_length, color="tab:red", ls="--", label=f"model.max_length {max_length}")
    ax.set_xlabel("sentence length")
    ax.set_ylabel("train sentences")
    ax.set_title("Sentence lengths")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def inspect_ner_data(config: Any, out_dir: str | Path) -> dict[str, Any]:
    """Write ``quality.md``, ``labels_per_language.png`` and ``lengths.png``; return the numbers."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = prepare_ner_data(config.data, config.seed, strict=False)
    words = [len(s.tokens) for s in splits.train]
    pieces = words
    tokenizer_note = "words only (no tokenizer: the tiny preset trains its own)"
    if config.model.name:
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(config.model.name)
            enc = tok([s.tokens for s in splits.train], is_split_into_words=True)
            pieces = [len(ids) for ids in enc["input_ids"]]
            tokenizer_note = f"sub-tokens of {config.model.name}"
        except OSError:
            tokenizer_note = f"words only ({config.model.name} is not available offline)"
    too_long = sum(p > config.model.max_length for p in pieces)
    plots = [_label_plot(splits, out_dir / "labels_per_language.png"),
             _length_plot(words, pieces, config.model.max_length, out_dir / "lengths.png")]
    summary = splits.summary()
    q = summary["quality"]
    label_rows = Counter((s.lang, t[2:]) for s in splits.train for t in s.tags if t.startswith("B-"))
    lines = [
        f"# Data quality: {splits.source}", "",
        "| | train | val | test |", "|---|---:|---:|---:|",
        f"| sentences | {summary['train']} | {summary['val']} | {summary['test']} |",
        f"| exact duplicates (extra copies) | {q['duplicates_train']} | {q['duplicates_val']} | {q['duplicates_test']} |",
        f"| ... with different tags | {q['duplicates_train_conflicting_tags']} | {q['duplicates_val_conflicting_tags']} "
        f"| {q['duplicates_test_conflicting_tags']} |",
        "",
        f"- test sentences also in train: **{q['test_in_train']}** "
        + (f"(dropped from test: {q['test_overlap_dropped']}; keep them with --set data.drop_test_overlap=false)"
           if config.data.drop_test_overlap else "(kept: data.drop_test_overlap is false)"),
        f"- validation sentences also in train: {q['val_in_train']}",
        f"- tags rewritten from IOB1 (CoNLL files): {q['iob1_tags_converted']}; invalid IOB transitions repaired "
        f"(an I- after O or another type became B-): {q['invalid_transitions_repaired']}",
        f"- sentence length in words: mean {np.mean(words) if words else 0:.1f}, max {max(words, default=0)}; "
        f"lengths counted in {tokenizer_note}",
        f"- sentences longer than model.max_length {config.model.max_length}: **{too_long}** (truncated in training, "
        "windowed at prediction time)", "",
        "| language | " + " | ".join(TYPES) + " |", "|---|" + "---:|" * len(TYPES),
    ]
    for lang in sorted({s.lang for s in splits.train}):
        lines.append(f"| {lang} | " + " | ".join(str(label_rows[(lang, t)]) for t in TYPES) + " |")
    lines += ["", *[f"![{p.stem}]({p.name})" for p in plots], ""]
    if splits.warnings:
        lines += ["## Warnings", "", *[f"- {w}" for w in splits.warnings], ""]
    report = out_dir / "quality.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return {**summary, "longer_than_max_length": too_long, "report": str(report), "plots": [str(p) for p in plots]}
