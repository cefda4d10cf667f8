"""The batch-job runner against hostile inputs and outputs: names that are not UTF-8 or hold line
separators, outputs cut by a kill, FIFOs, dangling links, an output that is also an input, two
writers of one output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlhw.batch.runner import ResultWriter, check_out, expand_inputs, predict_into, run_batch_job
from dlhw.core.inputs import check_input_file, read_inputs
from dlhw.errors import ConfigError, DlhwError


class _Upper:
    result_key = "upper"

    def load(self, key: str, raw: object) -> str:
        return str(raw)

    def predict(self, batch: list[str]) -> list[dict[str, object]]:
        return [{"upper": text.upper()} for text in batch]

    def throughput(self, seconds: float) -> str | None:
        return None


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def test_line_separators_in_keys_and_results_are_escaped_and_read_back_as_one_record(tmp_path):
    out = tmp_path / "out.jsonl"
    keys = ["a\u2028b.jpg", "c\x85d.jpg", "e\u2029f.jpg", "plain.jpg"]
    items = {k: f"x{k}" for k in keys}
    summary, _ = predict_into(out, _Upper, items, 2)
    assert summary.succeeded == 4
    raw = out.read_bytes()
    assert "\u2028".encode() not in raw and "\x85".encode() not in raw and b"\\u2028" in raw
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4  # even str.splitlines sees 4 lines
    assert [r["path"] for r in _records(out)] == keys  # the same strings back
    summary, _ = predict_into(out, _Upper, items, 2)  # a rerun redoes nothing
    assert (summary.succeeded, summary.skipped) == (0, 4) and len(_records(out)) == 4


def test_an_output_cut_inside_a_multibyte_character_resumes(tmp_path):
    out = tmp_path / "out.jsonl"
    writer = ResultWriter(out, "upper")
    writer.write([{"path": "سلام.txt:1", "status": "ok", "upper": "درود"}])
    writer.close()
    cut = json.dumps({"path": "سلام.txt:2", "status": "ok", "upper": "درود"}, ensure_ascii=False).encode()
    with out.open("ab") as handle:
        handle.write(cut[: cut.index("درود".encode()) + 3])  # killed in the middle of a 2-byte letter
    again = ResultWriter(out, "upper")
    assert again.done == {"سلام.txt:1"}
    again.write([{"path": "سلام.txt:2", "status": "ok", "upper": "درود"}])
    again.close()
    assert [r["path"] for r in _records(out)] == ["سلام.txt:1", "سلام.txt:2"]


def test_an_existing_output_that_is_not_utf8_is_refused_before_anything_runs(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"path": "a", "status": "ok"}\n\xff\xfe{"path": "b"}\n')
    with pytest.raises(ConfigError, match=r"out\.jsonl: line 2 is not UTF-8 \(byte 0xff\), so it is no output of dlhw"):
        ResultWriter(out, "x")
    assert out.read_bytes().startswith(b'{"path": "a"')  # untouched


def test_a_csv_record_cut_inside_a_quoted_multiline_answer_is_dropped(tmp_path):
    out = tmp_path / "out.csv"
    writer = ResultWriter(out, "answer")
    writer.write([{"path": "p.txt:1", "status": "ok", "answer": 'one\ntwo "quoted"\nthree'}])
    writer.close()
    with out.open("a", encoding="utf-8", newline="") as handle:
        handle.write('p.txt:2,ok,"first line\nsecond')  # killed after a line break inside the quotes
    again = ResultWriter(out, "answer")
    assert again.done == {"p.txt:1"}
    again.close()
    assert out.read_bytes().endswith(b'three",\r\n')


def test_out_that_is_a_directory_a_fifo_or_an_input_is_a_usage_error(tmp_path):
    (tmp_path / "d.jsonl").mkdir()
    with pytest.raises(ConfigError, match=r"d\.jsonl is a directory, not a regular file"):
        check_out(tmp_path / "d.jsonl")
    os.mkfifo(tmp_path / "f.jsonl")
    with pytest.raises(ConfigError, match=r"f\.jsonl is a FIFO, not a regular file"):
        check_out(tmp_path / "f.jsonl")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    with pytest.raises(ConfigError, match=r"p\.jsonl is also an input; give another --out"):
        check_out(tmp_path / "." / "p.jsonl", [prompts])
    with pytest.raises(ConfigError, match="is also an input"):  # given as an input file
        expand_inputs([str(prompts)], (".jsonl",), out=prompts)
    (tmp_path / "t.txt").write_text("x\n")
    found = expand_inputs([str(tmp_path)], (".txt", ".jsonl"), out=prompts)  # in a searched folder: left out
    assert prompts not in found and tmp_path / "t.txt" in found


def test_fifos_and_dangling_links_with_input_names_get_error_records_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "ok.png").write_bytes(b"x")
    (tmp_path / "same.png").symlink_to(tmp_path / "ok.png")  # the same file twice: one input
    found = expand_inputs([str(tmp_path), str(tmp_path / "ok.png")], (".png",))
    assert [p.name for p in found] == ["gone.png", "ok.png", "pipe.png"]
    with pytest.raises(ValueError, match=r"not a regular file \(a FIFO\)"):
        check_input_file(tmp_path / "pipe.png")
    with pytest.raises(ValueError, match=r"a broken symbolic link \(to .*nowhere\.png, which does not exist\)"):
        check_input_file(tmp_path / "gone.png")
    (tmp_path / "lines.txt").unlink(missing_ok=True)
    os.mkfifo(tmp_path / "lines.txt")
    [item] = read_inputs(tmp_path / "lines.txt")  # returns at once: a FIFO is never opened
    assert item.error == "not a regular file (a FIFO)"
    out = tmp_path / "out.jsonl"
    summary, _ = predict_into(out, _Upper, {p: p for p in found}, 8)
    by_path = {r["path"]: r for r in _records(out)}
    assert summary.succeeded == 1 and summary.failed == 2
    assert by_path[str(tmp_path / "pipe.png")]["error"] == "ValueError: not a regular file (a FIFO)"
    assert "broken symbolic link" in by_path[str(tmp_path / "gone.png")]["error"]


def test_names_that_are_not_utf8_are_recorded_escaped_and_skipped_on_rerun(tmp_path):
    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9\xff.png")
    Path(bad).write_bytes(b"x")
    found = expand_inputs([str(tmp_path)], (".png",))
    assert found == [Path(bad)]
    out = tmp_path / "out.jsonl"
    predict_into(out, _Upper, {p: p for p in found}, 8)
    [record] = _records(out)
    assert record["path"] == f"{tmp_path}/caf\\xe9\\xff.png" and record["status"] == "ok"
    summary, _ = predict_into(out, _Upper, {p: p for p in found}, 8)
    assert (summary.skipped, len(_records(out))) == (1, 1)


def test_an_output_folder_that_cannot_be_written_is_one_error(tmp_path, monkeypatch):
    out = tmp_path / "ro" / "out.jsonl"
    real_open = Path.open

    def read_only(self: Path, mode: str = "r", *args: object, **kwargs: object):  # a read-only mount, for root too
        if self == out and "a" in mode:
            raise PermissionError(13, "Permission denied")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", read_only)
    with pytest.raises(DlhwError, match=r"--out .*ro/out\.jsonl: cannot write it \(Permission denied\)"):
        ResultWriter(out, "x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"file/out\.jsonl: Not a directory"):
        check_out(tmp_path / "file" / "out.jsonl")


def test_a_second_writer_of_one_output_exits_2_naming_the_first_and_takes_over_after_a_kill(tmp_path):
    out = tmp_path / "out.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom dlhw.core.locks import holding\n"
         f"with holding({str(out)!r}):\n    print('held', flush=True)\n    sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(ConfigError, match=rf"--out {out} is being written by process {holder.pid} \(dlhw"):
            predict_into(out, _Upper, {"a": "a"}, 8)
        assert not out.exists()  # refused before anything was written
    finally:
        holder.kill()
        holder.wait()
    summary, _ = predict_into(out, _Upper, {"a": "a"}, 8)  # the dead holder's lock is taken over
    assert summary.succeeded == 1 and not (tmp_path / ".out.jsonl.lock").exists()


def test_run_batch_job_still_counts_every_input_once(tmp_path):
    out = tmp_path / "out.jsonl"
    writer = ResultWriter(out, "v")
    summary = run_batch_job(["k\u2028a", "k\u2028b"], str, lambda b: [{"v": x} for x in b], writer, 1)
    writer.close()
    assert summary.succeeded == 2 and [r["path"] for r in _records(out)] == ["k\u2028a", "k\u2028b"]
