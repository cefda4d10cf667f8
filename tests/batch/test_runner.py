"""The batch-job runner without a model: inputs, shards, resumable output, error records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlhw.batch.runner import (
    ResultWriter,
    expand_inputs,
    in_shard,
    parse_shard,
    run_batch_job,
)
from dlhw.errors import ConfigError


def _tree(root: Path) -> None:
    for rel in ("a.png", "b.JPG", "sub/c.jpeg", "sub/deeper/d.png", "notes.txt", "sub/e.webp"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")


def test_expand_files_directories_and_globs(tmp_path):
    _tree(tmp_path)
    found = expand_inputs([str(tmp_path)], (".png", ".jpg", ".jpeg", ".webp"))
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.png", "b.JPG", "sub/c.jpeg", "sub/deeper/d.png", "sub/e.webp"]
    globbed = expand_inputs([str(tmp_path / "**" / "*.png"), str(tmp_path / "notes.txt")], (".png",))
    assert [p.name for p in globbed] == ["a.png", "notes.txt", "d.png"]  # explicit files always kept
    with pytest.raises(ConfigError, match="no such file or directory"):
        expand_inputs([str(tmp_path / "missing.png")], (".png",))
    with pytest.raises(ConfigError, match="matches nothing"):
        expand_inputs([str(tmp_path / "*.gif")], (".gif",))


def test_shards_are_deterministic_disjoint_and_complete():
    paths = [Path(f"/data/img_{i}.png") for i in range(500)]
    shards = [[p for p in paths if in_shard(p, (i, 4))] for i in range(4)]
    assert sorted(sum(shards, []), key=str) == sorted(paths, key=str)
    assert sum(len(s) for s in shards) == len(paths)
    assert all(len(s) > 80 for s in shards)  # roughly balanced
    assert [p for p in paths[:100] if in_shard(p, (1, 4))] == [p for p in shards[1] if p in paths[:100]]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x/2", "1", "-1/3"):
        with pytest.raises(ConfigError, match="expected i/n"):
            parse_shard(bad)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_writer_recovers_after_a_cut_line_and_knows_what_is_done(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    writer = ResultWriter(out, "caption")
    writer.write([{"path": "a", "status": "ok", "caption": "x, y"}, {"path": "b", "status": "error", "error": "bad"}])
    writer.close()
    with out.open("a") as handle:
        handle.write('{"path": "c", "sta' if suffix == ".jsonl" else "c,ok,half")  # killed mid-line
    again = ResultWriter(out, "caption")
    assert again.done == {"a", "b"} and again.failed == {"b"}
    again.write([{"path": "c", "status": "ok", "caption": "z"}])
    again.close()
    text = out.read_text()
    assert text.count("\n") == (3 if suffix == ".jsonl" else 4) and "half" not in text
    if suffix == ".jsonl":
        assert [json.loads(line)["path"] for line in text.splitlines()] == ["a", "b", "c"]
    with pytest.raises(ConfigError, match=r"\.jsonl or \.csv"):
        ResultWriter(tmp_path / "out.txt", "caption")


def test_job_records_failures_and_skips_done_inputs(tmp_path):
    paths = [tmp_path / f"{i}.txt" for i in range(7)]
    for i, p in enumerate(paths):
        p.write_text("bad" if i in (2, 5) else str(i))

    def load(path: Path) -> int:
        text = path.read_text()
        if text == "bad":
            raise ValueError("unreadable")
        return int(text)

    def process(batch: list[int]) -> list[dict]:
        return [{"value": v * 10} for v in batch]

    out = tmp_path / "out.jsonl"
    writer = ResultWriter(out, "value")
    summary = run_batch_job(paths[:4], load, process, writer, batch_size=3)
    writer.close()
    assert (summary.succeeded, summary.failed, summary.skipped, summary.exit_code) == (3, 1, 0, 1)
    writer = ResultWriter(out, "value")
    summary = run_batch_job(paths, load, process, writer, batch_size=3)
    writer.close()
    assert (summary.succeeded, summary.failed, summary.skipped, summary.failed_before) == (2, 1, 4, 1)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["path"] for r in records) == sorted(str(p) for p in paths)  # each once
    by_path = {r["path"]: r for r in records}
    assert by_path[str(paths[3])]["value"] == 30
    assert by_path[str(paths[5])] == {"path": str(paths[5]), "status": "error", "error": "ValueError: unreadable"}


class _Upper:
    """A toy predictor: what every family's predictor looks like to the runner."""

    result_key = "upper"

    def __init__(self) -> None:
        self.loaded: list[tuple[str, object]] = []

    def load(self, key: str, raw: object) -> str:
        self.loaded.append((key, raw))
        if raw == "boom":
            raise ValueError("cannot load boom")
        return str(raw)

    def predict(self, batch: list[str]) -> list[dict[str, object]]:
        return [{"upper": text.upper()} for text in batch]

    def throughput(self, seconds: float) -> str | None:
        return None


def test_run_predictor_gives_every_input_one_record_and_error_items_their_reason(tmp_path):
    from dlhw.batch.runner import run_predictor
    from dlhw.core.inputs import read_inputs

    source = tmp_path / "in.jsonl"
    source.write_text('"a"\n{bad\n"boom"\n"d"\n', encoding="utf-8")
    items = {item.key: item for item in read_inputs(source)}
    out = tmp_path / "out.jsonl"
    predictor = _Upper()
    writer = ResultWriter(out, predictor.result_key)
    summary = run_predictor(predictor, items, writer, batch_size=2)
    writer.close()
    records = {r["path"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    key = str(source)
    assert records[f"{key}:1"] == {"path": f"{key}:1", "status": "ok", "upper": "A"}
    assert records[f"{key}:4"]["upper"] == "D"
    assert records[f"{key}:2"]["status"] == "error" and "not valid JSON" in records[f"{key}:2"]["error"]
    assert records[f"{key}:3"] == {"path": f"{key}:3", "status": "error", "error": "ValueError: cannot load boom"}
    assert (summary.succeeded, summary.failed, summary.exit_code) == (2, 2, 1)
    assert (f"{key}:1", "a") in predictor.loaded  # the predictor sees the key and the parsed value


def test_every_batch_verb_s_family_declares_a_predictor_opened_by_path_backend_and_device():
    import inspect

    from dlhw.core.family import resolve_hook
    from dlhw.core.registry import FAMILIES

    for family in FAMILIES.values():
        assert (family.predictor is None) == (family.batch_verb is None), family.name
        if family.predictor is None:
            continue
        params = list(inspect.signature(resolve_hook(family.predictor)).parameters.values())[:3]
        assert [p.name for p in params] == ["path", "backend", "device"], family.name
        assert (params[1].default, params[2].default) == ("torch", "auto"), family.name


def test_predict_into_runs_a_shard_and_continues_an_existing_output(tmp_path):
    from dlhw.batch.runner import predict_into

    items = {f"in.txt:{i}": f"t{i}" for i in range(1, 41)}
    out = tmp_path / "out.jsonl"
    done = set()
    for i in range(3):  # three shards cover every input exactly once
        summary, lines = predict_into(out, _Upper, items, 8, shard=(i, 3), noun="lines")
        assert lines == [summary.line("lines")]  # the toy predictor reports no throughput
        assert summary.skipped == 0 and summary.succeeded > 0
        done |= {r["path"] for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert done == set(items)
    summary, _ = predict_into(out, _Upper, items, 8)  # a rerun: everything already in the output
    assert (summary.succeeded, summary.skipped) == (0, 40)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 40
