"""BIG-Bench Hard sports_understanding: test items, CoT exemplars and a few-shot pool without test items.

Native formats, read as the BIG-Bench Hard repository ships them:

- ``bbh/sports_understanding.json``: ``{"examples": [{"input": ..., "target": "yes" | "no"}]}`` (250);
- ``cot-prompts/sports_understanding.txt``: a task description, then three ``Q: ... / A: Let's think
  step by step. ... So the answer is yes.`` exemplars separated by blank lines (an optional
  ``-----`` line before them is skipped);
- the few-shot pool in BIG-bench's shapes: ``task.json`` examples with ``target_scores``
  (``{"plausible": 1, "implausible": 0}``), or ``{"input", "target"}`` items; the Hub copy
  ``tasksource/bigbench`` has ``inputs`` / ``targets`` columns.

BBH's 250 test items are drawn from BIG-bench's own sports_understanding task, so a pool item can
be a test item: :func:`remove_test_items` drops every pool item whose statement (normalized)
equals a test item's and counts them. Pool targets are mapped to BBH's yes/no vocabulary.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlhw.errors import DataError
from dlhw.families.prompting import sports_tasks
from dlhw.families.prompting.config import BbhDataConfig

TASK = "sports_understanding"
LABEL_MAP = {"yes": "yes", "no": "no", "plausible": "yes", "implausible": "no"}
"""Target words of BBH and BIG-bench -> BBH's vocabulary."""
COT_TRIGGER = "Let's think step by step."
QUESTION = 'Is the following sentence plausible? "{statement}"'


@dataclass(frozen=True)
class BbhExample:
    input: str
    """The question as BBH writes it."""
    target: str
    """``yes`` or ``no``."""


@dataclass(frozen=True)
class CotPrompt:
    """A ``cot-prompts/*.txt`` file: the task description and its (question, rationale) exemplars."""

    description: str
    exemplars: tuple[tuple[str, str], ...]
    """``(question, rationale)``; the rationale follows "Let's think step by step." and ends with the answer."""


@dataclass
class BbhData:
    test: list[BbhExample]
    pool: list[BbhExample]
    cot: CotPrompt
    source: str
    """Where the test items came from (file, Hub id, or ``embedded``)."""
    pool_source: str
    removed_from_pool: int = 0
    """Pool items that were test items (normalized statement match), removed."""
    removed_examples: list[str] = field(default_factory=list)
    """The first few removed statements, for the report."""


def statement_of(text: str) -> str:
    """The sports statement inside a question: the quoted sentence, a ``Statement:`` line, or the text."""
    quoted = re.search(r'"([^"]+)"', text)
    if quoted:
        return quoted.group(1)
    line = re.search(r"Statement:\s*(.+)", text)
    if line:
        return line.group(1)
    return text


def normalize(text: str) -> str:
    """Case-, punctuation- and space-insensitive form of an item's statement (for the overlap check)."""
    return " ".join(re.sub(r"[^\w\s]", " ", statement_of(text).lower()).split())


def as_question(text: str) -> str:
    """A pool input in BBH's question form."""
    return text if text.startswith("Is the following sentence plausible?") else QUESTION.format(
        statement=statement_of(text).strip())


def _label(value: Any, where: str) -> str:
    label = LABEL_MAP.get(str(value).strip().lower().rstrip("."))
    if label is None:
        raise DataError(f"{where}: target {value!r} is not one of {', '.join(LABEL_MAP)}")
    return label


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (expected the BIG-Bench Hard repository layout)") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None


def load_bbh_json(path: str | Path) -> list[BbhExample]:
    """The items of a ``bbh/<task>.json`` file."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise DataError(f'{path}: expected {{"examples": [{{"input": ..., "target": ...}}]}}')
    out = []
    for i, ex in enumerate(data["examples"]):
        if not isinstance(ex, dict) or "input" not in ex or "target" not in ex:
            raise DataError(f'{path}: examples[{i}] needs "input" and "target"')
        out.append(BbhExample(str(ex["input"]), _label(ex["target"], f"{path}: examples[{i}]")))
    return out


def parse_cot_prompts(text: str, where: str = "cot prompt") -> CotPrompt:
    """Parse a ``cot-prompts/<task>.txt`` file's text."""
    lines = text.strip().splitlines()
    if "-----" in (ln.strip() for ln in lines):  # the released files open with a canary line, then -----
        lines = lines[[ln.strip() for ln in lines].index("-----") + 1:]
    body = "\n".join(lines).strip()
    head, _, rest = body.partition("\nQ: ") if not body.startswith("Q: ") else ("", "", body[3:])
    exemplars = []
    for block in re.split(r"\n\s*\nQ: ", rest):
        question, sep, answer = block.partition("\nA: ")
        if not sep:
            raise DataError(f"{where}: exemplar {question[:40]!r} has no 'A: ' line")
        answer = answer.strip()
        if answer.startswith(COT_TRIGGER):
            answer = answer[len(COT_TRIGGER):].strip()
        exemplars.append((question.strip(), answer))
    if not rest or not exemplars:
        raise DataError(f"{where}: no 'Q: ... A: ...' exemplars found")
    return CotPrompt(head.strip(), tuple(exemplars))


def load_cot_prompts(path: str | Path) -> CotPrompt:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected the BIG-Bench Hard repository layout)")
    return parse_cot_prompts(path.read_text(encoding="utf-8"), str(path))


def load_pool_json(path: str | Path) -> list[BbhExample]:
    """A BIG-bench ``task.json`` (``target_scores``) or a ``{"input", "target"}`` items file."""
    path = Path(path)
    data = _read_json(path)
    examples = data.get("examples") if isinstance(data, dict) else data
    if not isinstance(examples, list):
        raise DataError(f'{path}: expected {{"examples": [...]}} (BIG-bench task.json) or a list of items')
    out = []
    for i, ex in enumerate(examples):
        if "target_scores" in ex:
            target = max(ex["target_scores"].items(), key=lambda kv: kv[1])[0]
        elif "target" in ex:
            target = ex["target"][0] if isinstance(ex["target"], list) else ex["target"]
        else:
            raise DataError(f'{path}: examples[{i}] needs "target" or "target_scores"')
        out.append(BbhExample(as_question(str(ex["input"])), _label(target, f"{path}: examples[{i}]")))
    return out


def remove_test_items(pool: list[BbhExample], test: list[BbhExample]) -> tuple[list[BbhExample], list[BbhExample]]:
    """``(kept, removed)``: pool items whose normalized statement is a test item's are removed."""
    seen = {normalize(t.input) for t in test}
    kept = [p for p in pool if normalize(p.input) not in seen]
    removed = [p for p in pool if normalize(p.input) in seen]
    return kept, removed


def _hub(dataset: str, config: str, split: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset(dataset, config, split=split)
    except Exception as err:  # noqa: BLE001 - offline, missing, renamed: one actionable message
        raise DataError(f"could not load the dataset {dataset!r} ({config}, {split}): "
                        f"{type(err).__name__}: {str(err).splitlines()[0]}") from None


def _load_hub(cfg: BbhDataConfig, cot_file: Path | None) -> BbhData:
    test_ds = _hub(cfg.hf_dataset, cfg.hf_config, cfg.hf_split)
    test = [BbhExample(str(r["input"]), _label(r["target"], f"{cfg.hf_dataset}[{i}]")) for i, r in enumerate(test_ds)]
    pool = []
    for split in cfg.pool_splits:
        for i, r in enumerate(_hub(cfg.pool_dataset, cfg.pool_config, split)):
            target = r["targets"][0] if isinstance(r["targets"], list) else r["targets"]
            pool.append(BbhExample(as_question(str(r["inputs"])), _label(target, f"{cfg.pool_dataset}/{split}[{i}]")))
    cot = load_cot_prompts(cot_file) if cot_file else parse_cot_prompts(BBH_SPORTS_COT, "BBH cot-prompts")
    return BbhData(test, pool, cot, f"{cfg.hf_dataset}/{cfg.hf_config}/{cfg.hf_split}",
                   f"{cfg.pool_dataset}/{cfg.pool_config}/{'+'.join(cfg.pool_splits)}")


def load_bbh_data(cfg: BbhDataConfig) -> BbhData:
    """Test items, exemplars and the de-duplicated few-shot pool of ``cfg.source``."""
    if cfg.source == "embedded":
        n = cfg.embedded_test
        test = [BbhExample(i.input, i.target) for i in sports_tasks.test_items(n)]
        pool = [BbhExample(i.input, i.target) for i in sports_tasks.pool_items(n)]
        data = BbhData(test, pool, parse_cot_prompts(sports_tasks.cot_prompt_text(n), "embedded"),
                       "embedded", "embedded (pretraining pairs)")
    elif cfg.source == "local":
        root = Path(str(cfg.path))
        test = load_bbh_json(root / "bbh" / f"{TASK}.json")
        pool_file = root / "pool.json"
        pool = load_pool_json(pool_file) if pool_file.is_file() else []
        data = BbhData(test, pool, load_cot_prompts(root / "cot-prompts" / f"{TASK}.txt"),
                       str(root / "bbh" / f"{TASK}.json"), str(pool_file) if pool else "none")
    else:
        cot = Path(cfg.path) / "cot-prompts" / f"{TASK}.txt" if cfg.path else None
        data = _load_hub(cfg, cot)
    data.pool, removed = remove_test_items(data.pool, data.test)
    data.removed_from_pool = len(removed)
    data.removed_examples = [statement_of(r.input) for r in removed[:5]]
    if cfg.max_items is not None:
        data.test = data.test[: cfg.max_items]
    return data


BBH_SPORTS_COT = """Determine whether an artificially constructed sentence relating to sports is plausible or not.

Q: Is the following sentence plausible? "Bam Adebayo scored a reverse layup in the Western Conference Finals."
A: Let's think step by step. Bam Adebayo is an American basketball player. Scoring a reverse layup in the Western Conference Finals is part of the NBA Finals. So the answer is yes.

Q: Is the following sentence plausible? "Santi Cazorla scored a touchdown."
A: Let's think step by step. Santi Cazorla is a soccer player. Touchdown is part of American football and rugby. So the answer is no.

Q: Is the following sentence plausible? "DeMar DeRozan was called for the goal tend."
A: Let's think step by step. DeMar DeRozan is an American basketball player. Goal tending is part of basketball. So the answer is yes."""
"""BBH's ``cot-prompts/sports_understanding.txt`` (used for the Hub source when --data-dir gives no file)."""

STRATEGY_COT = {"answer-only": False, "few-shot": False, "cot": True, "cot-few-shot": True, "cot-sc": True}
"""Strategy -> whether its answer is a chain of thought."""


def build_prompt(strategy: str, question: str, shots: list[BbhExample] | tuple[BbhExample, ...] = (),
                 cot: CotPrompt | None = None) -> str:
    """The prompt text of ``strategy`` for one question (BBH's ``Q: ... A:`` layout).

    answer-only: the question; few-shot: ``shots`` answered, then the question; cot: the question and
    "Let's think step by step." (zero-shot CoT); cot-few-shot / cot-sc: the description and the
    exemplars of ``cot`` with their rationales, then the question and the trigger.
    """
    last = f"Q: {question}\nA:"
    if strategy == "answer-only":
        return last
    if strategy == "few-shot":
        return "\n\n".join([*(f"Q: {s.input}\nA: {s.target}" for s in shots), last])
    if strategy == "cot":
        return f"{last} {COT_TRIGGER}"
    if strategy in ("cot-few-shot", "cot-sc"):
        if cot is None:
            raise ValueError(f"{strategy}: needs the CoT exemplars")
        blocks = [f"Q: {q}\nA: {COT_TRIGGER} {r}" for q, r in cot.exemplars]
        head = [cot.description] if cot.description else []
        return "\n\n".join([*head, *blocks, f"{last} {COT_TRIGGER}"])
    raise ValueError(f"unknown strategy {strategy!r}")
