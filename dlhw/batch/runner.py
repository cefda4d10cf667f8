"""The batch-job runner every "apply a model to many files" command uses.

expand paths / globs / directories -> (shard) -> skip what the output already holds -> load in
DataLoader workers -> batch -> backend -> write each batch's records and flush -> one record per
failed input with the reason -> a summary line and an exit code (0 all done, 1 some failed).

Two engines compute the records (``--engine``, :mod:`dlhw.batch.options`): ``local`` loads in
DataLoader workers and predicts in this process; ``ray`` (:mod:`dlhw.batch.ray_engine`) runs the
family's predictor in a Ray Data actor pool. Both build a batch's records with
:func:`batch_records` and hand them to :func:`run_batches`, which alone writes the output: one
writer per file, whichever engine, so the records and the resume rules below are the same.

Outputs are JSONL (one object per line, :mod:`dlhw.core.jsonl`) or CSV (header
``path,status,result,error``), keyed by ``path``: the input's path as given (``photos/a.jpg``), plus
``:LINE`` for line-based inputs; a file name that is not UTF-8 is written with backslash escapes
(``caf\\xe9.jpg``). A rerun with the same output skips every path already recorded (successes and
errors: delete an error row to retry it) and first drops a record cut short by a kill. One job
writes an output at a time: ``--out`` is locked (:mod:`dlhw.core.locks`), and an ``--out`` that is
a directory, a FIFO or one of the inputs is refused before any model loads.

``DLHW_FAULT=kill-after-batch:N`` (a testing aid, :mod:`dlhw.core.faults`) kills the process right
after the N-th batch of this run is written, so resume tests stop a job at an exact point.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from dlhw.core.family import Predictor
from dlhw.core.faults import kill_if_reached
from dlhw.core.inputs import InputItem, check_input_file, file_kind, printable_key
from dlhw.core.jsonl import json_line, split_records
from dlhw.core.locks import holding
from dlhw.errors import ConfigError, DlhwError

if TYPE_CHECKING:
    from dlhw.batch.options import Engine

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def expand_inputs(items: Sequence[str], extensions: Sequence[str], *, out: Path | None = None) -> list[Path]:
    """Files as given; directories searched recursively for ``extensions``; globs expanded.

    Keys are the paths as found (``photos/a.jpg``); a file reached twice (``a.txt`` and ``./a.txt``,
    or through a link to it) is one input, under its first spelling. An entry with a wanted
    extension that is not a regular file -- a FIFO, a socket, a link to nothing -- is an input too,
    so that it gets an error record (:func:`check_input_file`) instead of vanishing or blocking the
    job. ``out`` (the job's ``--out``) given as an input is a usage error; found in a searched
    directory, it is left out.
    """
    found: dict[str, Path] = {}
    seen: set[str] = set()
    out_real = os.path.realpath(out) if out is not None else None

    def add(path: Path, explicit: bool) -> None:
        real = os.path.realpath(path)
        if real == out_real:
            if explicit:
                raise ConfigError(f"--out {out} is also an input; give another --out")
            logger.info("%s: left out (it is the --out of this job)", printable_key(path))
            return
        if real not in seen:
            seen.add(real)
            found[str(path)] = path

    def add_dir(directory: Path) -> None:
        for path in directory.rglob("*"):
            if path.suffix.lower() in extensions and not path.is_dir():
                add(path, explicit=False)

    for item in items:
        path = Path(item)
        if path.is_dir():
            add_dir(path)
        elif os.path.lexists(path):  # a file, or a FIFO / dangling link that gets its error record
            add(path, explicit=True)
        elif glob.has_magic(item):
            matches = [Path(m) for m in glob.glob(item, recursive=True)]
            if not matches:
                raise ConfigError(f"{item}: the pattern matches nothing")
            for match in matches:
                if match.is_dir():
                    add_dir(match)
                else:
                    add(match, explicit=True)
        else:
            raise ConfigError(f"{item}: no such file or directory")
    return [found[k] for k in sorted(found)]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4")
    return i, n


def in_shard(path: object, shard: tuple[int, int] | None) -> bool:
    """Deterministic: a path's shard depends on the path alone, not on the other inputs."""
    if shard is None:
        return True
    digest = hashlib.sha1(printable_key(path).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


def check_out(path: Path, inputs: Sequence[Path] = ()) -> Path:
    """``path`` if it can be a result file, else the usage error -- before any model loads: a
    ``.jsonl`` or ``.csv`` name, not a directory, a FIFO or another non-file, not one of ``inputs``
    (appending to its own input, a job would read its answers back on the next run)."""
    if path.suffix.lower() not in (".jsonl", ".csv"):
        raise ConfigError(f"--out {printable_key(path)}: use a .jsonl or .csv file")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise ConfigError(f"--out {printable_key(path)}: {err.strerror or err}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise ConfigError(f"--out {printable_key(path)} is {file_kind(mode)}, not a regular file; give a .jsonl or "
                          ".csv file")
    real = os.path.realpath(path)
    if any(os.path.realpath(p) == real for p in inputs):
        raise ConfigError(f"--out {printable_key(path)} is also an input; give another --out")
    return path


class ResultWriter:
    """Append-only JSONL or CSV output that knows which paths it already holds.

    JSONL lines are written by :func:`dlhw.core.jsonl.json_line` and split on ``\\n`` alone, so a
    key or result holding U+2028 reads back as the one record it is. On opening, a last record cut
    short by a kill (in the middle of a line, of a multi-byte character, or of a quoted CSV field)
    is dropped; a file that is not UTF-8 before that is not an output of dlhw, and is refused.
    """

    CSV_FIELDS = ("path", "status", "result", "error")

    def __init__(self, path: Path, result_key: str):
        self.path = check_out(path)
        self.csv = path.suffix.lower() == ".csv"
        self.result_key = result_key
        self.done: set[str] = set()
        self.failed: set[str] = set()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._recover()
            new = not path.exists() or path.stat().st_size == 0
            # a result holding a lone surrogate (a JSON "\ud800" in an input) is escaped, not a crash mid-job
            self.handle = path.open("a", encoding="utf-8", newline="", errors="backslashreplace")
        except OSError as err:
            raise DlhwError(f"--out {printable_key(path)}: cannot write it ({err.strerror or err})") from None
        if self.csv:
            self.writer = csv.DictWriter(self.handle, fieldnames=self.CSV_FIELDS)
            if new:
                self.writer.writeheader()
                self.handle.flush()

    def _recover(self) -> None:
        """Read the paths already recorded; drop a last record cut short by a kill."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete = _complete_csv_records(data) if self.csv else data.rfind(b"\n") + 1
        if complete < len(data):
            with self.path.open("r+b") as handle:  # in place: the file stays the one the lock guards
                handle.truncate(complete)
            data = data[:complete]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            number = data.count(b"\n", 0, err.start) + 1
            raise ConfigError(f"--out {printable_key(self.path)}: line {number} is not UTF-8 (byte "
                              f"{data[err.start]:#04x}), so it is no output of dlhw (or it was damaged); give "
                              "another --out, or move that file away") from None
        if self.csv:
            records = [row for row in csv.DictReader(io.StringIO(text, newline="")) if row.get("path")]
        else:
            records = []
            for line in split_records(text):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        for record in records:
            if isinstance(record, dict) and isinstance(record.get("path"), str):
                self.done.add(record["path"])
                if record.get("status") == "error":
                    self.failed.add(record["path"])

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            if self.csv:
                self.writer.writerow({
                    "path": record["path"], "status": record["status"],
                    "result": record.get(self.result_key, ""), "error": record.get("error", ""),
                })
            else:
                self.handle.write(json_line(record))
            self.done.add(record["path"])
            if record["status"] == "error":
                self.failed.add(record["path"])
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _complete_csv_records(data: bytes) -> int:
    """How many leading bytes of a CSV file are whole records: up to the last line break outside a
    quoted field (a quoted answer may hold line breaks of its own; dlhw's writer quotes every field
    that holds a quote, so the parts between quotes alternate outside, inside)."""
    parts = data.split(b'"')
    offset = len(data)
    for index in range(len(parts) - 1, -1, -1):
        offset -= len(parts[index])  # where parts[index] starts
        if index % 2 == 0:  # outside quotes
            newline = parts[index].rfind(b"\n")
            if newline >= 0:
                return offset + newline + 1
        offset -= 1  # the quote before it
    return 0


@dataclass
class JobSummary:
    total: int
    skipped: int
    """Inputs already in the output before this run."""
    succeeded: int
    failed: int
    """Inputs that failed in this run."""
    failed_before: int
    """Skipped inputs whose recorded result is an error."""
    seconds: float

    @property
    def exit_code(self) -> int:
        """0 when every input has a successful record, else 1."""
        return 1 if self.failed or self.failed_before else 0

    def line(self, noun: str = "inputs") -> str:
        rate = self.succeeded / self.seconds if self.seconds > 0 else 0.0
        before = f" (+{self.failed_before} failed in earlier runs)" if self.failed_before else ""
        return (f"{self.succeeded} {noun} done, {self.failed} failed{before}, {self.skipped} skipped (already "
                f"in the output) of {self.total}, in {self.seconds:.1f} s ({rate:.1f}/s)")


class LoadedItems(Dataset):
    """Wraps a per-path loader so that a failure becomes ``(index, None, reason)``."""

    def __init__(self, paths: Sequence[Path | str], load: Callable[[Any], Any]):
        self.paths = paths
        self.load = load

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, Any, str | None]:
        try:
            return i, self.load(self.paths[i]), None
        except Exception as err:  # noqa: BLE001 - any load failure is a per-input error record
            return i, None, f"{type(err).__name__}: {err}"


def _as_list(items: list[tuple[int, Any, str | None]]) -> list[tuple[int, Any, str | None]]:
    return items


Records = list[dict[str, Any]]
"""One batch's records: one per input, ``{"path", "status": "ok", ...result}`` or
``{"path", "status": "error", "error"}``."""


def batch_records(keys: Sequence[Any], items: Sequence[tuple[int, Any, str | None]],
                  process: Callable[[list[Any]], list[dict[str, Any]]]) -> Records:
    """The records of one batch of :class:`LoadedItems` (``(index into keys, value, load error)``):
    an error record per input that failed to load, then ``process`` over the rest -- a result record
    each, or, when ``process`` raises, an error record each with its reason."""
    records = [{"path": printable_key(keys[i]), "status": "error", "error": error}
               for i, _, error in items if error is not None]
    good = [(i, value) for i, value, error in items if error is None]
    if good:
        try:
            results = process([value for _, value in good])
            records += [{"path": printable_key(keys[i]), "status": "ok", **r}
                        for (i, _), r in zip(good, results, strict=True)]
        except Exception as err:  # noqa: BLE001 - a failing batch is recorded, the job goes on
            records += [{"path": printable_key(keys[i]), "status": "error", "error": f"{type(err).__name__}: {err}"}
                        for i, _ in good]
    return records


def run_batches(paths: Sequence[Any], writer: ResultWriter, batches: Callable[[list[Any]], Iterable[Records]],
                desc: str = "processing", unit: str = "item") -> JobSummary:
    """The driver's side of every batch job, whichever engine computes the records: drop the paths
    ``writer`` already holds, then write each batch of records that ``batches(todo)`` yields as it
    comes (flushed), count them, and honour ``DLHW_FAULT=kill-after-batch:N``. ``batches`` is not
    called when nothing is left to do."""
    todo = [p for p in paths if printable_key(p) not in writer.done]
    skipped = len(paths) - len(todo)
    failed_before = sum(printable_key(p) in writer.failed for p in paths)
    succeeded = failed = 0
    start = time.perf_counter()
    with tqdm(total=len(todo), desc=desc, unit=unit) as bar:
        for batch_number, records in enumerate(batches(todo) if todo else (), start=1):
            writer.write(records)
            kill_if_reached("kill-after-batch", batch_number)
            kill_if_reached("stop-after-batch", batch_number)
            ok = sum(r["status"] == "ok" for r in records)
            succeeded += ok
            failed += len(records) - ok
            bar.update(len(records))
    return JobSummary(len(paths), skipped, succeeded, failed, failed_before, time.perf_counter() - start)


def run_batch_job(
    paths: Sequence[Path | str],
    load: Callable[[Any], Any],
    process: Callable[[list[Any]], list[dict[str, Any]]],
    writer: ResultWriter,
    batch_size: int,
    num_workers: int = 0,
    desc: str = "processing",
    unit: str = "item",
) -> JobSummary:
    """Load ``paths`` in workers, process them in batches, write a record per path.

    A "path" is any key with a stable ``str()``: a file, or an id such as ``prompts.txt:12``; its
    record's ``path`` is :func:`~dlhw.core.inputs.printable_key` of it (``str()`` itself unless that
    holds a non-UTF-8 file name).
    """

    def batches(todo: list[Any]) -> Iterator[Records]:
        loader = DataLoader(LoadedItems(todo, load), batch_size=batch_size, num_workers=num_workers,
                            collate_fn=_as_list)
        for items in loader:
            yield batch_records(todo, items, process)

    return run_batches(paths, writer, batches, desc, unit)


def input_loader(predictor: Predictor, items: Mapping[Any, Any]) -> Callable[[Any], Any]:
    """``load(key)`` for :class:`LoadedItems`: what ``predictor.load`` makes of ``items[key]`` (an
    :class:`InputItem`, whose error is raised, or a plain value such as an image path)."""

    def load(key: Any) -> Any:
        raw = items[key]
        if isinstance(raw, Path):
            check_input_file(raw)  # a FIFO (an image name on a pipe) would block the worker forever
        return predictor.load(printable_key(key), raw.get() if isinstance(raw, InputItem) else raw)

    return load


def run_predictor(predictor: Predictor, items: Mapping[Any, Any], writer: ResultWriter, batch_size: int,
                  num_workers: int = 0, desc: str = "processing", unit: str = "item") -> JobSummary:
    """Apply ``predictor`` to ``items`` (input key -> what the reader gave: an :class:`InputItem`, whose
    error becomes the key's error record, or a plain value such as an image path) with
    :func:`run_batch_job`: the local engine's way of running a family's predictor."""
    return run_batch_job(list(items), input_loader(predictor, items), predictor.predict, writer, batch_size,
                         num_workers, desc=desc, unit=unit)


def predict_into(out: Path, open_predictor: Callable[[], Predictor], items: Mapping[Any, Any], batch_size: int, *,
                 shard: tuple[int, int] | None = None, num_workers: int = 0, engine: Engine | None = None,
                 desc: str = "processing", unit: str = "item", noun: str = "inputs") -> tuple[JobSummary, list[str]]:
    """A batch verb once its inputs are read (and ``--out`` / ``--shard`` checked: :func:`check_out`,
    :func:`parse_shard`): keep ``shard``'s share of ``items``, run the predictor that
    ``open_predictor()`` opens over it into ``out`` (continued, never overwritten), and return the job
    summary and the closing lines for the verb to print (the summary, the predictor's throughput).

    ``engine`` (``--engine``; None = local) says where the predictor runs: the local engine opens it
    here, once, and loads inputs in ``num_workers`` DataLoader workers; the Ray engine sends
    ``open_predictor`` to each actor of its pool, so it must pickle (a module-level function, or a
    ``functools.partial`` of one), and reports no throughput line (each actor counts its own).

    ``out`` is locked for the whole job (:mod:`dlhw.core.locks`: a second job writing it exits 2
    naming this one), and read -- refused when damaged -- before the model opens."""
    mine = {key: raw for key, raw in items.items() if in_shard(key, shard)}
    with holding(out, f"--out {printable_key(out)}"):  # one writer per output: a second job exits 2
        new = not out.exists()
        writer = ResultWriter(out, "")  # read (and refused if damaged) before any model loads
        try:
            if engine is not None and engine.kind == "ray":
                from dlhw.batch.ray_engine import run_on_ray

                # the actors name the result key with their first batch
                summary = run_on_ray(open_predictor, mine, writer, batch_size, engine, desc=desc, unit=unit)
                return summary, [summary.line(noun)]
            predictor = open_predictor()
            writer.result_key = predictor.result_key
            start = time.perf_counter()
            summary = run_predictor(predictor, mine, writer, batch_size, num_workers, desc=desc, unit=unit)
        except BaseException:
            if new and not writer.done:  # failed before any record (the model would not open): leave no file
                writer.close()
                out.unlink(missing_ok=True)
            raise
        finally:
            writer.close()
    rate = predictor.throughput(time.perf_counter() - start)
    return summary, [summary.line(noun), *([rate] if rate else [])]
