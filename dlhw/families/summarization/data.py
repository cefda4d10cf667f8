"""Documents and reference summaries for the summarization family, and the prompts built from them.

Sources (``data.source``):

| source | cnn_dailymail | tweetsumm |
|---|---|---|
| hub | ``abisee/cnn_dailymail`` 3.0.0 (``article``, ``highlights``, ``id``) | ``Salesforce/dialogstudio`` TweetSumm (data files read directly) |
| local | CNN/DM-shaped parquet / csv / jsonl, or ``article``/``text`` + ``highlights``/``summary`` files | DialogStudio JSON / JSONL / parquet, or ``dialogue``/``text`` + ``summary`` files |
| raw | -- | the raw TweetSumm release + ``twcs.csv`` (:mod:`dlhw.families.summarization.tweetsumm`) |
| embedded | news-like articles (:mod:`dlhw.families.summarization.summary_tasks`) | templated support dialogues |

Files whose names contain train / valid(ation) / test give the splits; without them one seeded
shuffle holds out the validation and test examples. Subsets of ``train_examples`` /
``val_examples`` / ``test_examples`` are drawn with the seed. Every reference is kept
(``SummaryExample.references``): ROUGE takes the best over them, training uses
``references[data.train_reference]``.

Prompts (:class:`PromptBuilder`) are built identically for training, evaluation and batch
summarization: a plain template (``Article: ...`` / ``Dialogue: ...`` then ``Summary:``) for base
models, the tokenizer's chat template for instruct models; the document is cut to
``max_input_tokens`` tokens (counted in :class:`LengthReport`) and few-shot examples go before it.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlhw.errors import DataError

DOC_FIELDS = ("article", "dialogue", "document", "text")
SUMMARY_FIELDS = ("highlights", "summary", "summaries", "references")


@dataclass(frozen=True)
class SummaryExample:
    id: str
    document: str
    references: tuple[str, ...]


@dataclass
class SummarySplits:
    train: list[SummaryExample]
    val: list[SummaryExample]
    test: list[SummaryExample]
    source: str
    kind: str
    """article or dialogue: what the prompt calls the document."""
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, split: str) -> list[SummaryExample]:
        return getattr(self, split)

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "train": len(self.train), "val": len(self.val),
                "test": len(self.test), "notes": self.notes,
                "references_per_test_example": round(statistics.fmean(len(e.references) for e in self.test), 2)
                if self.test else 0}


def _as_refs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return _as_refs(json.loads(text))
            except json.JSONDecodeError:
                pass
        return (text,) if text else ()
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        return tuple(r for r in (_as_refs(v)[0] if _as_refs(v) else "" for v in items) if r)
    return ()


def record_to_example(record: dict[str, Any], where: str) -> SummaryExample:
    """A flat record with a document field and a summary field (one or a list of references)."""
    doc_key = next((k for k in DOC_FIELDS if k in record), None)
    sum_key = next((k for k in SUMMARY_FIELDS if k in record), None)
    if doc_key is None or sum_key is None:
        raise DataError(f"{where}: needs one of {'|'.join(DOC_FIELDS)} and one of {'|'.join(SUMMARY_FIELDS)}; "
                        f"has {sorted(record)}")
    return SummaryExample(str(record.get("id", where)), str(record[doc_key] or "").strip(), _as_refs(record[sum_key]))


def read_flat_file(path: Path) -> list[SummaryExample]:
    """A .parquet / .csv / .jsonl file of flat records (CNN/DM-shaped or article|dialogue|text + summary)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pandas as pd

        rows = pd.read_parquet(path).to_dict("records")
        return [record_to_example(r, f"{path}[{i}]") for i, r in enumerate(rows)]
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [record_to_example(r, f"{path}:{i + 2}") for i, r in enumerate(csv.DictReader(handle))]
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if line.strip():
            try:
                out.append(record_to_example(json.loads(line), f"{path}:{lineno}"))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    return out


def data_files(path: str | Path, suffixes: tuple[str, ...]) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if files:
            return files
        raise DataError(f"data.path {path}: no {'/'.join(suffixes)} files in it")
    raise DataError(f"data.path {path}: no such file or directory")


def _is_dialogstudio(path: Path) -> bool:
    if path.suffix.lower() not in (".json", ".jsonl"):
        return False
    with path.open(encoding="utf-8-sig") as handle:
        head = handle.read(4096)
    return "original dialog info" in head


def _split_by_name(examples: dict[Path, list[SummaryExample]]) -> dict[str, list[SummaryExample]] | None:
    from dlhw.families.summarization.tweetsumm import split_of

    named = {p: split_of(p) for p in examples}
    if not any(s == "test" for s in named.values()):
        return None
    out: dict[str, list[SummaryExample]] = {"train": [], "val": [], "test": []}
    for path, items in examples.items():
        out[named[path] or "train"] += items
    return out


def _from_tuples(items: list[tuple[str, str, list[str]]]) -> list[SummaryExample]:
    return [SummaryExample(i, d, tuple(r)) for i, d, r in items]


def load_local(cfg: Any) -> tuple[dict[str, list[SummaryExample]] | list[SummaryExample], str]:
    """Native splits (by file name) or one pool to split, and a description of the source."""
    from dlhw.families.summarization import tweetsumm

    if cfg.source == "raw":
        files = [p for p in data_files(cfg.path, (".jsonl",)) if "tweetsum" in p.name.lower()] or \
            data_files(cfg.path, (".jsonl",))
        twcs = Path(cfg.twcs_path) if cfg.twcs_path else (Path(cfg.path) if Path(cfg.path).is_dir()
                                                          else Path(cfg.path).parent) / "twcs.csv"
        splits, missing = tweetsumm.load_raw_tweetsumm(files, twcs)
        note = f"raw TweetSumm {cfg.path} + {twcs}" + (f" ({missing} dialogues lacked tweets)" if missing else "")
        return {k: _from_tuples(v) for k, v in splits.items()}, note
    files = data_files(cfg.path, (".parquet", ".csv", ".jsonl", ".json"))
    if all(_is_dialogstudio(p) or p.suffix.lower() == ".json" for p in files):
        parts = tweetsumm.load_dialogstudio(files)
        if not parts["test"]:
            return _from_tuples(parts["train"]), f"DialogStudio files {cfg.path}"
        return {k: _from_tuples(v) for k, v in parts.items()}, f"DialogStudio files {cfg.path}"
    per_file = {p: read_flat_file(p) for p in files if p.suffix.lower() != ".json"}
    named = _split_by_name(per_file)
    if named is not None:
        return named, str(cfg.path)
    return [e for items in per_file.values() for e in items], str(cfg.path)


def load_hub(cfg: Any) -> tuple[dict[str, list[SummaryExample]], str]:
    """CNN/DailyMail through ``datasets``; DialogStudio's TweetSumm through its data files."""
    ident = f"{cfg.hf_dataset}" + (f" ({cfg.hf_config})" if cfg.hf_config else "")
    hint = (f"could not load {ident} from the Hugging Face Hub ({{err}}). Offline: pass its files with "
            f"`--data-dir DIR` ({'parquet/csv/jsonl with article, highlights, id' if cfg.dataset == 'cnn_dailymail' else 'DialogStudio TweetSumm JSON, or the raw release with --set data.source=raw'}), "
            f"or train on the embedded task with `--preset tiny`")
    try:
        if cfg.dataset == "tweetsumm":
            from huggingface_hub import snapshot_download

            folder = snapshot_download(cfg.hf_dataset, repo_type="dataset",
                                       allow_patterns=[f"*{cfg.hf_config or 'TweetSumm'}/*"])
            files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".json", ".jsonl", ".parquet"))
            from dlhw.families.summarization.tweetsumm import load_dialogstudio

            parts = load_dialogstudio(files)
            return {k: _from_tuples(v) for k, v in parts.items()}, ident
        import datasets

        ds = datasets.load_dataset(cfg.hf_dataset, cfg.hf_config)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - offline, gated, missing: one actionable line
        raise DataError(hint.format(err=f"{type(err).__name__}: {str(err).splitlines()[0][:160]}")) from None
    names = {"train": "train", "val": "validation", "test": "test"}
    out = {}
    for split, name in names.items():
        rows = ds[name]
        out[split] = [SummaryExample(str(r.get("id", i)), r["article"], (r["highlights"],)) for i, r in enumerate(rows)]
    return out, ident


def _subset(items: list[SummaryExample], n: int, rng: random.Random) -> list[SummaryExample]:
    items = [e for e in items if e.document and e.references]
    if len(items) <= n:
        return items
    return [items[i] for i in sorted(rng.sample(range(len(items)), n))]


def prepare_summaries(cfg: Any, seed: int, need_train: bool = True) -> SummarySplits:
    """Load, filter and split the documents ``cfg`` (a SummDataConfig) names; seeded subsets.

    ``need_train=False`` (zero-shot prompting) accepts data with a test split only."""
    kind = "article" if cfg.dataset == "cnn_dailymail" else "dialogue"
    rng = random.Random(seed)
    if cfg.source == "embedded":
        from dlhw.families.summarization import summary_tasks

        make = summary_tasks.make_articles if kind == "article" else summary_tasks.make_dialogues
        docs = [SummaryExample(d.id, d.document, d.references) for d in make(cfg.embedded_examples, seed)]
        pool: dict[str, list[SummaryExample]] | list[SummaryExample] = docs
        source = f"embedded {'news articles' if kind == 'article' else 'support dialogues'}"
    elif cfg.source == "hub":
        pool, source = load_hub(cfg)
    else:
        pool, source = load_local(cfg)
    notes = []
    if isinstance(pool, list):
        usable = [e for e in pool if e.document and e.references]
        if len(usable) < cfg.val_examples + cfg.test_examples + 1:
            raise DataError(f"{source}: {len(usable)} usable examples, fewer than val {cfg.val_examples} + test "
                            f"{cfg.test_examples} + 1; lower data.val_examples / data.test_examples")
        order = list(range(len(usable)))
        rng.shuffle(order)
        shuffled = [usable[i] for i in order]
        v, t = cfg.val_examples, cfg.test_examples
        pool = {"val": shuffled[:v], "test": shuffled[v:v + t], "train": shuffled[v + t:]}
        notes.append("no split files: validation and test held out of one seeded shuffle")
    sizes = {"train": cfg.train_examples, "val": cfg.val_examples, "test": cfg.test_examples}
    parts = {s: _subset(pool.get(s, []), n, rng) for s, n in sizes.items()}
    if not parts["test"] or (need_train and not parts["train"]):
        empty = " and ".join(s for s in ("train", "test") if not parts[s] and (need_train or s == "test"))
        raise DataError(f"{source}: empty {empty} split after loading; check data.path and the file names "
                        "(train / valid / test)" + ("; zero-shot prompting (--shots 0) needs only test"
                                                   if need_train and parts["test"] else ""))
    if not parts["train"]:
        notes.append("no train split: zero-shot, the test split alone is read")
    elif not parts["val"]:
        parts["val"] = parts["train"][: max(1, len(parts["train"]) // 10)]
        notes.append("no validation split: validation loss on a slice of train")
    return SummarySplits(parts["train"], parts["val"], parts["test"], source, kind, notes)


def percentiles(values: list[int]) -> dict[str, float]:
    ordered = sorted(values) or [0]

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"min": ordered[0], "max": ordered[-1], "mean": round(statistics.fmean(ordered), 1),
            "p50": pct(0.5), "p90": pct(0.9), "p95": pct(0.95), "p99": pct(0.99)}


def length_statistics(examples: list[SummaryExample], tokenizer: Any) -> dict[str, Any]:
    """Words and (with a tokenizer) tokens of documents and first reference summaries: min, max, mean,
    percentiles; ``raw`` holds the per-example counts for plotting."""
    docs = [e.document for e in examples]
    sums = [e.references[0] for e in examples]
    words = {"document_words": [len(d.split()) for d in docs], "summary_words": [len(s.split()) for s in sums]}
    out: dict[str, Any] = {"examples": len(examples), **{k: percentiles(v) for k, v in words.items()}, "raw": words}
    if tokenizer is not None:
        doc_tokens = [len(ids) for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]]
        sum_tokens = [len(ids) for ids in tokenizer(sums, add_special_tokens=False)["input_ids"]]
        out.update(document_tokens=percentiles(doc_tokens), summary_tokens=percentiles(sum_tokens))
        words.update(document_tokens=doc_tokens, summary_tokens=sum_tokens)
    return out


def choose_limits(stats: dict[str, Any], cfg: Any, eval_max_new: int | None) -> dict[str, Any]:
    """The input token limit (p95 of train documents unless set) and max_new_tokens (1.25 x p95 of
    summaries + 1 for EOS unless set), capped so prompt + summary fit ``max_length``."""
    max_new = eval_max_new or int(1.25 * stats["summary_tokens"]["p95"]) + 1
    max_input = cfg.max_input_tokens or int(stats["document_tokens"]["p95"])
    room = cfg.max_length - max_new - 64  # 64 tokens for the instruction and the template
    return {"max_input_tokens": max(16, min(max_input, room)), "max_new_tokens": max_new,
            "rule": "input: p95 of train document tokens" if not cfg.max_input_tokens else "input: data.max_input_tokens",
            "new_tokens_rule": "1.25 x p95 of train summary tokens + 1" if not eval_max_new else "eval.max_new_tokens"}


INSTRUCTIONS = {"article": "Summarize the news article in a few sentences.",
                "dialogue": "Summarize the customer support dialogue: the customer's problem and what the agent does."}
LABELS = {"article": "Article", "dialogue": "Dialogue"}


@dataclass
class Prompt:
    ids: list[int]
    truncated: bool
    """The document was cut to max_input_tokens."""
    shots_dropped: int = 0
    """Few-shot examples left out because the prompt would not fit the context."""


class PromptBuilder:
    """Prompt ids for a document (plus optional examples), identical in training and inference."""

    def __init__(self, tokenizer: Any, kind: str, template: str, max_input_tokens: int, max_length: int,
                 max_new_tokens: int):
        self.tokenizer = tokenizer
        self.kind = kind
        self.chat = template == "chat"
        if self.chat and tokenizer.chat_template is None:
            raise DataError("model.template=chat: the tokenizer has no chat template; use template=plain for base models")
        self.max_input_tokens = max_input_tokens
        self.max_length = max_length
        self.max_new_tokens = max_new_tokens

    def cut(self, document: str) -> tuple[str, bool]:
        """The document cut to ``max_input_tokens`` tokens (decoded back to text), and whether it was."""
        ids = self.tokenizer(document, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.max_input_tokens:
            return document, False
        return self.tokenizer.decode(ids[: self.max_input_tokens], skip_special_tokens=True).strip(), True

    def block(self, document: str, summary: str | None) -> str:
        label = LABELS[self.kind]
        return f"{label}:\n{document}\nSummary:" + (f" {summary}" if summary is not None else "")

    def text(self, document: str, shots: list[SummaryExample] = ()) -> str:  # type: ignore[assignment]
        parts = [self.block(self.cut(s.document)[0], s.references[0]) for s in shots]
        body = "\n\n".join([INSTRUCTIONS[self.kind], *parts, self.block(document, None)])
        if self.chat:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": body}], tokenize=False,
                                                      add_generation_prompt=True)
        return body

    def encode_text(self, text: str) -> list[int]:
        # chat-template text already holds its special tokens (BOS); plain text gets the tokenizer's own
        return self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"]

    def prompt(self, document: str, shots: list[SummaryExample] = ()) -> Prompt:  # type: ignore[assignment]
        """The prompt ids; examples that would push prompt + summary past max_length are dropped."""
        doc, truncated = self.cut(document)
        kept = list(shots)
        while True:
            ids = self.encode_text(self.text(doc, kept))
            if len(ids) + self.max_new_tokens <= self.max_length or not kept:
                return Prompt(ids, truncated, len(shots) - len(kept))
            kept.pop()

    def summary_text(self, generated: str) -> str:
        """The summary in a generation: with the plain template it ends at the first blank line, the
        separator of the template's blocks, where a base model goes on with another ``Article:``
        (as lm-evaluation-harness stops at ``until``); a chat model's reply is kept whole."""
        return generated if self.chat else generated.split("\n\n", 1)[0].strip()

    def completion_ids(self, summary: str) -> list[int]:
        """Summary tokens and EOS: what the model learns to produce after the prompt."""
        eos = self.tokenizer.eos_token_id
        ids = self.tokenizer(summary if self.chat else f" {summary}", add_special_tokens=False)["input_ids"]
        return ids + ([eos] if eos is not None else [])


def sentences_to_lines(text: str) -> str:
    """One sentence per line (for ROUGE-Lsum): split after . ! ? followed by space."""
    import re

    parts = re.split(r"(?<=[.!?؟।])\s+", text.strip())
    return "\n".join(p.strip() for p in parts if p.strip())
