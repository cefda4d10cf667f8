"""Sentences for NER: native file formats, the hub datasets, one IOB2 label set, clean splits.

Every source ends as :class:`Sentence` objects (tokens, IOB2 tags with ``-``, language) whose
entity types belong to one union set, :data:`TYPES`.

Native formats (``data.source=local``, files under ``data.data_dir``; UTF-8 with or without a
BOM, LF or CRLF; a blank line ends a sentence):

| format | a line | tags as written |
|---|---|---|
| ``conll`` | ``EU NNP B-NP I-ORG`` (token POS chunk NER); ``-DOCSTART- -X- -X- O`` lines separate documents | IOB1 (``I-`` may start an entity) |
| ``peyma`` | ``تهران|B_LOC`` | ``B_``/``I_`` with PEYMA's types |
| ``arman`` | ``تهران B-loc`` | lowercase types: pers, org, loc, fac, pro, event |
| ``tsv`` | ``token<TAB>tag`` | any of the above spellings |

A ``.parquet`` file in the Mixed layout (``tokens``, ``ner_tags`` with class names such as
``B_LOC`` and ``O`` at id 9) is read with :mod:`datasets`, as are the hub sources: CoNLL-2003 from
a parquet copy (``eriktks/conll2003``) and ``AliFartout/PEYMA-ARMAN-Mixed``. A Mixed file re-saved
without the Hub's schema (integer ``ner_tags``, no class names) is read through its own
``ner_tags_names`` column.

Tags are converted by :func:`normalize_tag` (``_`` -> ``-``, type aliases such as ``pers`` ->
``PER``, ``event`` -> ``EVE``, plus ``data.label_map``) and :func:`to_iob2`, which turns IOB1 into
IOB2 and repairs invalid transitions (an ``I-X`` after ``O`` or after another type starts an
entity); repairs are counted per source. The embedded bilingual task lives in
:mod:`dlhw.families.ner.ner_tasks`; duplicates and train/test overlap are handled by :func:`clean_splits`.
"""

from __future__ import annotations

import fnmatch
import os
import random
import re
import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dlhw.errors import DataError

TYPES = ("PER", "ORG", "LOC", "MISC", "DAT", "TIM", "MON", "PCT", "FAC", "PRO", "EVE")
"""The union entity types of CoNLL-2003, PEYMA and ARMAN."""
LABELS = ("O", *(f"{p}-{t}" for t in TYPES for p in "BI"))
"""The model's label set: O at id 0, then B-/I- of every type."""
TYPE_ALIASES = {
    "PER": "PER", "PERS": "PER", "PERSON": "PER",
    "ORG": "ORG", "ORGANIZATION": "ORG", "ORGANISATION": "ORG",
    "LOC": "LOC", "LOCATION": "LOC", "GPE": "LOC",
    "MISC": "MISC",
    "DAT": "DAT", "DATE": "DAT",
    "TIM": "TIM", "TIME": "TIM",
    "MON": "MON", "MONEY": "MON",
    "PCT": "PCT", "PERCENT": "PCT",
    "FAC": "FAC", "FACILITY": "FAC",
    "PRO": "PRO", "PRODUCT": "PRO",
    "EVE": "EVE", "EVENT": "EVE",
}
"""Type spellings of the sources -> the union types (``data.label_map`` adds or overrides)."""
SPLIT_NAMES = {"train": "train", "training": "train", "dev": "val", "valid": "val", "validation": "val",
               "val": "val", "test": "test", "testa": "val", "testb": "test"}
_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]
    """IOB2 tags from :data:`LABELS`, one per token."""
    lang: str
    """``en`` or ``fa`` (from the script of the tokens)."""
    where: str = ""
    """``file:line`` (or dataset[index]) of the sentence's first token."""


def language_of(tokens: list[str]) -> str:
    return "fa" if any(_ARABIC_SCRIPT.search(t) for t in tokens) else "en"


def normalize_tag(raw: str, label_map: dict[str, str] | None = None, where: str = "") -> tuple[str, str | None]:
    """``(prefix, type)`` of one written tag: ``B_LOC`` -> ``("B", "LOC")``, ``I-pers`` -> ``("I", "PER")``,
    ``O`` -> ``("O", None)``. A type mapped to ``O`` by ``label_map`` becomes ``("O", None)``."""
    tag = raw.strip()
    if tag.upper() == "O":
        return "O", None
    match = re.fullmatch(r"([BIESLU])[-_](.+)", tag, flags=re.IGNORECASE)
    if not match:
        raise DataError(f"{where}: tag {raw!r} is neither O nor B-/I- (or B_/I_) followed by a type")
    prefix, name = match.group(1).upper(), match.group(2)
    prefix = {"E": "I", "L": "I", "S": "B", "U": "B"}.get(prefix, prefix)  # BIOES/BILOU -> IOB
    overrides = {k.upper(): v for k, v in (label_map or {}).items()}
    kind = overrides.get(name.upper(), TYPE_ALIASES.get(name.upper()))
    if kind is None:
        raise DataError(f"{where}: entity type {name!r} is not one of {', '.join(TYPES)}; map it with "
                        f"--set data.label_map.{name}=TYPE (or =O to drop it)")
    if kind.upper() == "O":
        return "O", None
    if kind not in TYPES:
        raise DataError(f"data.label_map: {name} -> {kind!r}, expected one of {', '.join(TYPES)} or O")
    return prefix, kind


def to_iob2(parts: list[tuple[str, str | None]]) -> tuple[list[str], int]:
    """IOB2 tags from ``(prefix, type)`` pairs, and how many were changed: an ``I-X`` that does not
    continue an ``X`` entity (IOB1's first token, or an invalid transition) becomes ``B-X``."""
    out: list[str] = []
    changed = 0
    previous: str | None = None
    for prefix, kind in parts:
        if kind is None:
            out.append("O")
        elif prefix == "I" and previous != kind:
            out.append(f"B-{kind}")
            changed += 1
        else:
            out.append(f"{prefix}-{kind}")
        previous = kind
    return out, changed


@dataclass
class Conversion:
    """Counts kept while reading a source: tags rewritten from IOB1, invalid transitions repaired."""

    iob1_converted: int = 0
    repaired: int = 0
    label_counts: Counter[str] = field(default_factory=Counter)

    def add(self, sentence: Sentence, changed: int, iob1: bool) -> Sentence:
        if iob1:
            self.iob1_converted += changed
        else:
            self.repaired += changed
        self.label_counts.update(t for t in sentence.tags if t != "O")
        return sentence


def _read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte {data[err.start]:#04x}); re-save the file as UTF-8") from None
    return text.splitlines()


def guess_format(path: Path, lines: list[str]) -> str:
    """conll, peyma, arman or tsv, from the first data line of a file."""
    for line in lines:
        if not line.strip() or line.startswith("-DOCSTART-"):
            continue
        if "\t" in line:
            return "tsv"
        if re.fullmatch(r".+\|[A-Za-z_-]+", line.strip()):
            return "peyma"
        return "conll" if len(line.split()) >= 4 else "arman"
    raise DataError(f"{path}: no sentences in it")


def _split_line(line: str, fmt: str, where: str) -> tuple[str, str]:
    if fmt == "peyma":
        token, sep, tag = line.rpartition("|")
    elif fmt == "tsv":
        token, sep, tag = line.rpartition("\t")
    else:
        cols = line.split()
        ok = len(cols) >= 4 if fmt == "conll" else len(cols) >= 2
        token, sep, tag = (cols[0], " ", cols[-1]) if ok else ("", "", "")
    if not sep or not token.strip():
        shape = {"conll": "token POS chunk NER", "peyma": "token|tag", "arman": "token tag",
                 "tsv": "token<TAB>tag"}[fmt]
        raise DataError(f"{where}: expected `{shape}` ({fmt} format), got {line!r}")
    return token.strip(), tag


def read_native(path: str | Path, fmt: str | None = None, label_map: dict[str, str] | None = None,
                conversion: Conversion | None = None) -> list[Sentence]:
    """Sentences of one file in a native format (guessed from its lines when ``fmt`` is None)."""
    path = Path(path)
    lines = _read_lines(path)
    fmt = fmt or guess_format(path, lines)
    conversion = conversion if conversion is not None else Conversion()
    sentences: list[Sentence] = []
    tokens: list[str] = []
    parts: list[tuple[str, str | None]] = []
    start = 0

    def flush() -> None:
        if tokens:
            tags, changed = to_iob2(parts)
            sentence = Sentence(list(tokens), tags, language_of(tokens), f"{path}:{start}")
            sentences.append(conversion.add(sentence, changed, iob1=fmt == "conll"))
        tokens.clear()
        parts.clear()

    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("-DOCSTART-"):
            flush()
            continue
        where = f"{path}:{lineno}"
        token, tag = _split_line(line, fmt, where)
        if not tokens:
            start = lineno
        tokens.append(token)
        parts.append(normalize_tag(tag, label_map, where))
    flush()
    return sentences


def sentences_from_dataset(ds: Any, name: str, label_map: dict[str, str] | None = None,
                           conversion: Conversion | None = None) -> list[Sentence]:
    """Sentences of a :mod:`datasets` split with ``tokens`` and ``ner_tags`` (class ids with names,
    or tag strings)."""
    if "tokens" not in ds.column_names or "ner_tags" not in ds.column_names:
        raise DataError(f"{name}: expected columns tokens and ner_tags; columns: {', '.join(ds.column_names)}")
    feature = ds.features["ner_tags"]
    inner = getattr(feature, "feature", None) or (feature[0] if isinstance(feature, list) else None)
    names = list(getattr(inner, "names", []) or [])
    conversion = conversion if conversion is not None else Conversion()
    # a copy re-saved without the Hub's schema (pandas) keeps integer ids but loses their names;
    # Mixed's own ner_tags_names column spells every tag out, row by row
    spelled = ds["ner_tags_names"] if not names and "ner_tags_names" in ds.column_names else None
    out = []
    for i, (tokens, tags) in enumerate(zip(ds["tokens"], ds["ner_tags"], strict=True)):
        where = f"{name}[{i}]"
        if not tokens:
            continue
        if spelled is not None and any(isinstance(t, int) for t in tags):
            if spelled[i] is None or len(spelled[i]) != len(tags):
                raise DataError(f"{where}: ner_tags_names has {len(spelled[i] or [])} tags for {len(tags)} "
                                "ner_tags; re-save the file with the dataset's ClassLabel names")
            tags = list(spelled[i])
        elif not names and any(isinstance(t, int) for t in tags):
            raise DataError(f"{where}: ner_tags holds class ids without names (no ClassLabel schema and no "
                            "ner_tags_names column); write tag strings, or keep the dataset's schema "
                            "(datasets' to_parquet) when re-saving")
        written = [names[t] if isinstance(t, int) and names else str(t) for t in tags]
        iob2, changed = to_iob2([normalize_tag(t, label_map, where) for t in written])
        out.append(conversion.add(Sentence(list(tokens), iob2, language_of(tokens), where), changed, iob1=False))
    return out


def split_of(path: Path) -> str | None:
    """train / val / test from a file's or folder's name (``train.txt``, ``dev/``, ``test-0000.parquet``)."""
    for part in reversed(path.parts):
        for word in re.split(r"[^a-z]+", part.lower()):
            if word in SPLIT_NAMES:
                return SPLIT_NAMES[word]
    return None


def read_local_dir(directory: str | Path, formats: dict[str, str], label_map: dict[str, str],
                   conversion: Conversion) -> dict[str, list[Sentence]]:
    """Sentences per split (``train``/``val``/``test`` from file or folder names; others are train)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"data.data_dir {directory}: no such directory")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() not in (".md", ".json", ".yaml", ".yml", ".py"))
    if not files:
        raise DataError(f"data.data_dir {directory}: no data files in it")
    splits: dict[str, list[Sentence]] = {"train": [], "val": [], "test": []}
    for path in files:
        split = split_of(path.relative_to(directory)) or "train"
        if path.suffix.lower() == ".parquet":
            import datasets

            ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
            splits[split] += sentences_from_dataset(ds, str(path), label_map, conversion)
            continue
        fmt = next((f for pattern, f in formats.items() if fnmatch.fnmatch(path.name, pattern)), None)
        splits[split] += read_native(path, fmt, label_map, conversion)
    return splits


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host answers within ``timeout`` seconds (datasets would retry for a minute)."""
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_splits(dataset_id: str, label_map: dict[str, str], conversion: Conversion) -> dict[str, list[Sentence]]:
    """train / val / test of a hub dataset (or a local folder ``load_dataset`` reads)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if not Path(dataset_id).exists() and not offline and not hub_reachable():
        raise DataError(f"could not load the NER dataset {dataset_id!r}: the Hugging Face Hub cannot be reached "
                        "(with a cached copy, set HF_HUB_OFFLINE=1)")
    import datasets

    try:
        dd = datasets.load_dataset(dataset_id)
    except Exception as err:  # noqa: BLE001 - offline, missing, a script dataset: one actionable message
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        why = (" -- it is a loading-script dataset, which datasets >= 4 no longer runs; use a parquet copy "
               "such as eriktks/conll2003" if "script" in text.lower() else "")
        raise DataError(f"could not load the NER dataset {dataset_id!r} ({type(err).__name__}: {text}){why}") from None
    out: dict[str, list[Sentence]] = {"train": [], "val": [], "test": []}
    for split_name in dd:
        key = SPLIT_NAMES.get(split_name, "train")
        out[key] += sentences_from_dataset(dd[split_name], f"{dataset_id}:{split_name}", label_map, conversion)
    return out


@dataclass
class NerSplits:
    train: list[Sentence]
    val: list[Sentence]
    test: list[Sentence]
    source: str
    quality: dict[str, Any] = field(default_factory=dict)
    """What :func:`clean_splits` found and did (duplicates, overlap, repairs)."""
    warnings: list[str] = field(default_factory=list)
    """Problems that stop training, reported instead of raised (``clean_splits(strict=False)``)."""

    def summary(self) -> dict[str, Any]:
        langs = {s: dict(Counter(x.lang for x in getattr(self, s))) for s in ("train", "val", "test")}
        return {"source": self.source, "train": len(self.train), "val": len(self.val), "test": len(self.test),
                "languages": langs, "quality": self.quality, "warnings": self.warnings}


def duplicates(sentences: list[Sentence]) -> tuple[int, int]:
    """``(extra copies, copies whose tags disagree with the first)`` of exact duplicate sentences."""
    first: dict[tuple[str, ...], list[str]] = {}
    extra = conflicting = 0
    for s in sentences:
        key = tuple(s.tokens)
        if key in first:
            extra += 1
            conflicting += first[key] != s.tags
        else:
            first[key] = s.tags
    return extra, conflicting


def clean_splits(raw: dict[str, list[Sentence]], source: str, conversion: Conversion, seed: int,
                 val_fraction: float, drop_test_overlap: bool = True, dedupe_train: bool = False,
                 max_train: int | None = None, strict: bool = True) -> NerSplits:
    """Hold out val (and test) where a source has none, count duplicates and overlap, drop test
    sentences seen in train (by default). An empty train or test split after cleaning is an error,
    or with ``strict=False`` (``dlhw data inspect``) a warning in :attr:`NerSplits.warnings`."""
    train, val, test = list(raw["train"]), list(raw["val"]), list(raw["test"])
    rng = random.Random(seed)
    for held in (test, val):
        if not held and len(train) > 2:
            rng.shuffle(train)
            n = max(1, int(len(train) * val_fraction))
            held += train[:n]
            del train[:n]
    quality: dict[str, Any] = {"iob1_tags_converted": conversion.iob1_converted,
                               "invalid_transitions_repaired": conversion.repaired}
    for name, items in (("train", train), ("val", val), ("test", test)):
        extra, conflicting = duplicates(items)
        quality[f"duplicates_{name}"] = extra
        quality[f"duplicates_{name}_conflicting_tags"] = conflicting
    seen = {tuple(s.tokens) for s in train}
    overlap_test = [s for s in test if tuple(s.tokens) in seen]
    quality["test_in_train"] = len(overlap_test)
    quality["val_in_train"] = sum(tuple(s.tokens) in seen for s in val)
    if drop_test_overlap:
        test = [s for s in test if tuple(s.tokens) not in seen]
    quality["test_overlap_dropped"] = len(overlap_test) if drop_test_overlap else 0
    if dedupe_train:
        unique: dict[tuple[str, ...], Sentence] = {}
        for s in train:
            unique.setdefault(tuple(s.tokens), s)
        quality["train_duplicates_dropped"] = len(train) - len(unique)
        train = list(unique.values())
    if max_train is not None:
        train = train[:max_train]
    warnings = []
    if not train or not test:
        why = (f"; all {len(overlap_test)} test sentences repeat train sentences (keep them with "
               "--set data.drop_test_overlap=false, or use a test file without them)"
               if train and drop_test_overlap and overlap_test and not test else "")
        message = (f"{source}: {len(train)} train and {len(test)} test sentences after cleaning; "
                   f"need at least one of each{why}")
        if strict:
            raise DataError(message)
        warnings.append(message)
    return NerSplits(train, val or test[:1], test, source, quality, warnings)


def prepare_ner_data(cfg: Any, seed: int, strict: bool = True) -> NerSplits:
    """The splits a config asks for (``cfg`` is a :class:`dlhw.families.ner.config.NerDataConfig`);
    ``strict=False`` reports empty splits as warnings instead of raising (see :func:`clean_splits`)."""
    conversion = Conversion()
    raw: dict[str, list[Sentence]] = {"train": [], "val": [], "test": []}
    if cfg.source == "embedded":
        from dlhw.families.ner.ner_tasks import embedded_splits

        raw = embedded_splits(cfg.embedded_train, cfg.embedded_val, cfg.embedded_test, seed)
        source = "embedded bilingual task"
    elif cfg.source == "local":
        raw = read_local_dir(cfg.data_dir, cfg.formats, cfg.label_map, conversion)
        source = str(cfg.data_dir)
    else:
        ids = [i for i in (cfg.conll_dataset, cfg.mixed_dataset) if i]
        try:
            for dataset_id in ids:
                for split, items in hub_splits(dataset_id, cfg.label_map, conversion).items():
                    raw[split] += items
        except DataError as err:
            raise DataError(f"{err}. The full preset reads {' and '.join(ids)} from the Hugging Face Hub; "
                            "offline, pass local files in their native formats with --data-dir DIR, or train "
                            "on the embedded bilingual task with --preset tiny") from None
        source = " + ".join(ids)
    return clean_splits(raw, source, conversion, seed, cfg.val_fraction, cfg.drop_test_overlap,
                        cfg.dedupe_train, cfg.max_train, strict)
