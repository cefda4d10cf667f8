"""Conversations for chat fine-tuning: the embedded Persian task, local files, the hub dataset.

A conversation is a list of ``{"role": "system" | "user" | "assistant", "content": str}``.

Local files (``data.path``: a ``.jsonl`` / ``.json`` file, or a directory of them), one record
per line (JSONL) or a list of records (JSON), each record in any of these shapes:

- a bare list of messages: ``[{"role": "user", "content": ...}, ...]``;
- ``{"messages": [{"role", "content"}, ...]}`` (OpenAI / TRL style);
- ``{"conversations": [{"from": "system" | "human" | "gpt", "value": ...}, ...]}`` (ShareGPT,
  the original SlimOrca);
- ``{"message": [{"role", "content"}, ...]}`` (universitytehran/SlimOrca on the hub);
- ``{"instruction": ..., "input": ..., "output": ...}`` (Alpaca: user = instruction, then the
  input after a blank line when there is one; assistant = output; an optional ``system``).

The full preset reads ``universitytehran/SlimOrca`` (column ``message``) with
``datasets.load_dataset``. Every message is Persian-normalized (:mod:`dlhw.core.persian`).
Records that cannot be used (no assistant turn, empty text) are counted and skipped; a line
that is not JSON, or a role that means nothing, stops loading with the file and line.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlhw.core.persian import DigitStyle, normalize_persian
from dlhw.errors import DataError
from dlhw.lm.template import Conversation

ROLES = {
    "system": "system",
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "model": "assistant", "bot": "assistant",
}


ALPACA_KEYS = ("instruction", "output")


def alpaca_messages(record: dict[str, Any], where: str) -> Conversation:
    """An Alpaca record (``instruction``, optional ``input``, ``output``) as user/assistant turns."""
    for key in ("instruction", "input", "output", "system"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise DataError(f"{where}: Alpaca key {key!r} must be a string, got {type(record[key]).__name__}")
    user = record["instruction"].strip()
    if (record.get("input") or "").strip():
        user = f"{user}\n\n{record['input'].strip()}"
    out: Conversation = []
    if (record.get("system") or "").strip():
        out.append({"role": "system", "content": record["system"]})
    out += [{"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]
    return out


def parse_messages(record: Any, where: str) -> Conversation:
    """The messages of one record in any supported shape, roles mapped to system/user/assistant."""
    if isinstance(record, dict) and all(k in record for k in ALPACA_KEYS):
        return alpaca_messages(record, where)
    if isinstance(record, dict):
        for key in ("messages", "conversations", "message", "conversation"):
            if key in record:
                record = record[key]
                break
        else:
            raise DataError(f"{where}: expected a list of messages, an object with 'messages', "
                            f"'conversations' or 'message', or Alpaca's 'instruction' + 'output' "
                            f"(+ 'input'); got keys {sorted(record)}")
    if isinstance(record, str):  # some hub exports store the list as a JSON string
        try:
            record = json.loads(record)
        except json.JSONDecodeError:
            raise DataError(f"{where}: messages must be a list, got a string that is not a JSON list") from None
    if not isinstance(record, list):
        raise DataError(f"{where}: messages must be a list, got {type(record).__name__}")
    out: Conversation = []
    for i, msg in enumerate(record):
        if not isinstance(msg, dict):
            raise DataError(f"{where}: message {i} is {type(msg).__name__}, expected an object")
        role = msg.get("role", msg.get("from"))
        content = msg.get("content", msg.get("value"))
        if role is None or content is None:
            raise DataError(f"{where}: message {i} needs role/content (or from/value), got keys {sorted(msg)}")
        if str(role).lower() not in ROLES:
            raise DataError(f"{where}: message {i} has role {role!r}; known roles: {', '.join(ROLES)}")
        out.append({"role": ROLES[str(role).lower()], "content": str(content)})
    return out


def read_conversation_file(path: Path) -> list[tuple[str, Conversation]]:
    """``(where, messages)`` per record of a .jsonl or .json file; ``where`` is ``file:line``."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: a .json file must hold a list of conversations")
        return [(f"{path}[{i}]", parse_messages(r, f"{path}[{i}]")) for i, r in enumerate(data)]
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{lineno}:{err.colno}: not valid JSON ({err.msg})") from None
        out.append((f"{path}:{lineno}", parse_messages(record, f"{path}:{lineno}")))
    return out


def local_files(path: str | Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".jsonl", ".json") and p.is_file())
        if files:
            return files
        raise DataError(f"data.path {path}: no .jsonl or .json files in it")
    raise DataError(f"data.path {path}: no such file or directory")


def load_hub_conversations(dataset_id: str, split: str, column: str, limit: int | None) -> list[tuple[str, Any]]:
    """Records of a hub dataset (or a local dataset folder ``load_dataset`` reads)."""
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as err:  # noqa: BLE001 - offline, missing, private: one actionable message
        raise DataError(
            f"could not load the chat dataset {dataset_id!r} ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "Pass local files with --set data.source=local --set data.path=FILE.jsonl, or train offline "
            "on the embedded Persian task with --preset tiny"
        ) from None
    if column not in ds.column_names:
        raise DataError(f"{dataset_id}: no column {column!r}; columns: {', '.join(ds.column_names)}")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return [(f"{dataset_id}[{i}]", row) for i, row in enumerate(ds[column])]


@dataclass
class ConversationSplits:
    train: list[Conversation]
    val: list[Conversation]
    test: list[Conversation]
    source: str
    skipped: Counter = field(default_factory=Counter)
    answers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """``(answer, task)`` per conversation of each split, for exact match (embedded task only)."""

    def __getitem__(self, split: str) -> list[Conversation]:
        return getattr(self, split)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "train": len(self.train), "val": len(self.val), "test": len(self.test),
            "skipped": dict(self.skipped),
        }


def clean_conversation(messages: Conversation, digits: DigitStyle, normalize: bool) -> tuple[Conversation | None, str]:
    """Normalized messages, or ``(None, reason)`` when the conversation cannot be trained on."""
    out = []
    for msg in messages:
        content = normalize_persian(msg["content"], digits) if normalize else msg["content"].strip()
        if content:
            out.append({"role": msg["role"], "content": content})
    if not any(m["role"] == "assistant" for m in out):
        return None, "no assistant turn"
    if not any(m["role"] == "user" for m in out):
        return None, "no user turn"
    return out, ""


def holdout_sizes(n: int, val: int, test: int, fraction: float | None) -> tuple[int, int]:
    """Validation and test sizes for ``n`` usable conversations: exactly ``val`` / ``test`` while they leave
    at least half of ``n`` to train on (or when ``fraction`` is None); for data too small for them,
    ``fraction`` of ``n`` each (at least 1), never more than asked."""
    if fraction is None or val + test <= n // 2:
        return val, test
    share = max(1, int(n * fraction))
    return min(val, share), min(test, share)


def split_conversations(
    items: list[Conversation], val: int, test: int, seed: int, source: str, skipped: Counter,
) -> ConversationSplits:
    """Shuffle once with ``seed``, then hold out ``test`` and ``val`` conversations."""
    if len(items) < val + test + 1:
        raise DataError(
            f"{source}: {len(items)} usable conversations, fewer than val {val} + test {test} + 1; "
            "lower data.val_examples / data.test_examples (--set data.val_examples=N) or set "
            "data.holdout_fraction (e.g. 0.1) so the held-out sizes scale with the data"
        )
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    shuffled = [items[i] for i in order]
    return ConversationSplits(
        train=shuffled[val + test:], val=shuffled[:val], test=shuffled[val:val + test],
        source=source, skipped=skipped,
    )


def prepare_conversations(cfg: Any, seed: int) -> ConversationSplits:
    """Load, normalize and split the conversations ``cfg`` (a ChatDataConfig) names."""
    from dlhw.families.chat.persian_tasks import make_examples

    skipped: Counter = Counter()
    if cfg.source == "embedded":
        examples = make_examples(cfg.embedded_examples, seed)
        order = list(range(len(examples)))
        random.Random(seed).shuffle(order)
        examples = [examples[i] for i in order]
        val, test = cfg.val_examples, cfg.test_examples
        parts = {"val": examples[:val], "test": examples[val:val + test], "train": examples[val + test:]}
        convs = {s: [clean_conversation(e.messages(), cfg.digits, cfg.normalize)[0] for e in ex]
                 for s, ex in parts.items()}
        splits = ConversationSplits(source="embedded Persian tasks", skipped=skipped, **convs)  # type: ignore[arg-type]
        splits.answers = {s: [(e.answer, e.task) for e in ex] for s, ex in parts.items()}
        return splits
    if cfg.source == "local":
        records = [r for f in local_files(cfg.path) for r in read_conversation_file(f)]
        source = str(cfg.path)
    else:
        records = [(w, parse_messages(r, w)) for w, r in
                   load_hub_conversations(cfg.hf_dataset, cfg.hf_split, cfg.hf_column, cfg.max_examples)]
        source = f"{cfg.hf_dataset}[{cfg.hf_split}]"
    if cfg.max_examples is not None:
        records = records[: cfg.max_examples]
    items = []
    for _, messages in records:
        clean, reason = clean_conversation(messages, cfg.digits, cfg.normalize)
        if clean is None:
            skipped[reason] += 1
        else:
            items.append(clean)
    val, test = holdout_sizes(len(items), cfg.val_examples, cfg.test_examples, cfg.holdout_fraction)
    return split_conversations(items, val, test, seed, source, skipped)
