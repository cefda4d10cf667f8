"""TweetSumm: customer-support dialogues on Twitter with 2-3 abstractive summaries each.

Two native layouts are read:

- **DialogStudio** (``Salesforce/dialogstudio``, config ``TweetSumm``): one record per dialogue with
  ``log`` (turns with ``user utterance`` = customer and ``system response`` = agent) and
  ``original dialog info``, a JSON *string* whose ``summaries.abstractive_summaries`` holds the
  annotators' summaries (each a list of sentences, or a string). ``datasets`` >= 4 runs no dataset
  scripts, so the JSON / JSONL / parquet data files are read directly: a dict keyed by dialogue id
  (``{"TweetSumm--train--1": {...}}``), a list of records, or one record per line.
- **The raw release** (``final_{train,valid,test}_tweetsum.jsonl``: ``conversation_id``,
  ``tweet_ids_sentence_offset`` and ``annotations[].abstractive``) holds ids and summaries but no
  text; the text is rebuilt from Kaggle's ``twcs.csv`` (``tweet_id, author_id, inbound, text``):
  ``inbound`` True = customer.

Cleaning (:func:`clean_tweet`): links and @mentions removed, whitespace collapsed; turns become
``customer: ...`` / ``agent: ...`` lines. Every reference summary is kept.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from dlhw.errors import DataError

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"(?<![\w@])@\w+")
SPACE = re.compile(r"\s+")


def clean_tweet(text: str) -> str:
    """``text`` without links and @mentions, whitespace collapsed."""
    text = URL.sub(" ", text)
    text = MENTION.sub(" ", text)
    return SPACE.sub(" ", text).strip()


def format_turns(turns: list[tuple[bool, str]]) -> str:
    """``customer: ...`` / ``agent: ...`` lines of cleaned turns (empty turns dropped, consecutive
    turns of one speaker kept apart as on Twitter)."""
    lines = []
    for is_customer, text in turns:
        cleaned = clean_tweet(text)
        if cleaned:
            lines.append(f"{'customer' if is_customer else 'agent'}: {cleaned}")
    return "\n".join(lines)


def _summary_text(item: Any) -> str:
    if isinstance(item, list):
        return "\n".join(str(s).strip() for s in item if str(s).strip())
    return str(item or "").strip()


def split_of(path: Path) -> str | None:
    """train / val / test from a file name (``train.json``, ``final_valid_tweetsum.jsonl``, ...)."""
    name = path.name.lower()
    for key, split in (("train", "train"), ("valid", "val"), ("dev", "val"), ("test", "test")):
        if key in name:
            return split
    return None


def _records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(where, record)`` of a DialogStudio data file (JSON dict / list, JSONL, or parquet)."""
    if path.suffix.lower() == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        return [(f"{path}[{i}]", row) for i, row in enumerate(frame.to_dict("records"))]
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".jsonl":
        out = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    out.append((f"{path}:{lineno}", json.loads(line)))
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{lineno}:{err.colno}: not valid JSON ({err.msg})") from None
        return out
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    if isinstance(data, dict):
        return [(f"{path}[{key}]", value) for key, value in data.items()]
    return [(f"{path}[{i}]", value) for i, value in enumerate(data)]


def parse_dialogstudio(record: dict[str, Any], where: str) -> tuple[str, str, list[str]] | None:
    """``(id, dialogue, references)`` of one DialogStudio record; None when it has no summary."""
    info = record.get("original dialog info")
    if info is None or "log" not in record:
        raise DataError(f"{where}: not a DialogStudio record (needs 'log' and 'original dialog info'; "
                        f"has {sorted(record)})")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: 'original dialog info' is not valid JSON ({err.msg})") from None
    refs = [_summary_text(s) for s in (info.get("summaries") or {}).get("abstractive_summaries") or []]
    refs = [r for r in refs if r]
    if not refs:
        return None
    turns: list[tuple[bool, str]] = []
    for turn in record["log"]:
        turns += [(True, str(turn.get("user utterance") or "")), (False, str(turn.get("system response") or ""))]
    ident = str(record.get("original dialog id") or record.get("new dialog id") or where)
    return ident, format_turns(turns), refs


def load_dialogstudio(files: list[Path]) -> dict[str, list[tuple[str, str, list[str]]]]:
    """Dialogues per split (by file name; files with no split in their name go to train)."""
    out: dict[str, list[tuple[str, str, list[str]]]] = {"train": [], "val": [], "test": []}
    for path in files:
        for where, record in _records(path):
            parsed = parse_dialogstudio(record, where)
            if parsed is not None and parsed[1]:
                out[split_of(path) or "train"].append(parsed)
    return out


def read_twcs(path: Path) -> dict[str, tuple[bool, str]]:
    """``tweet_id -> (is_customer, text)`` from twcs.csv."""
    if not path.is_file():
        raise DataError(f"{path}: no twcs.csv (Kaggle 'Customer Support on Twitter'); pass it with "
                        "--set data.twcs_path=FILE")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"tweet_id", "inbound", "text"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: missing columns {sorted(missing)} (expected twcs.csv's tweet_id, author_id, "
                            "inbound, created_at, text, ...)")
        return {row["tweet_id"]: (row["inbound"].strip().lower() == "true", row["text"]) for row in reader}


def load_raw_tweetsumm(files: list[Path], twcs: Path) -> tuple[dict[str, list[tuple[str, str, list[str]]]], int]:
    """Dialogues per split rebuilt from twcs.csv, and how many dialogues lacked a tweet there."""
    tweets = read_twcs(twcs)
    out: dict[str, list[tuple[str, str, list[str]]]] = {"train": [], "val": [], "test": []}
    missing = 0
    for path in files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}:{err.colno}: not valid JSON ({err.msg})") from None
            ids = [str(t["tweet_id"]) for t in record.get("tweet_ids_sentence_offset", [])]
            if not ids or any(i not in tweets for i in ids):
                missing += 1
                continue
            refs = [_summary_text(a.get("abstractive")) for a in record.get("annotations", [])]
            refs = [r for r in refs if r]
            if refs:
                dialogue = format_turns([tweets[i] for i in ids])
                out[split_of(path) or "train"].append((str(record["conversation_id"]), dialogue, refs))
    return out, missing
