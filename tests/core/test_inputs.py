"""The one reader of the batch verbs' .txt / .jsonl inputs: keys, error items, the edge cases."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from dlhw.batch.runner import ResultWriter, run_batch_job
from dlhw.core.inputs import (
    InputItem,
    convert_values,
    printable_key,
    read_all,
    read_inputs,
    text_field,
)
from dlhw.errors import ConfigError


def _summary(items: list[InputItem]) -> list[tuple[str, object, str | None]]:
    return [(i.key.rsplit(":", 1)[-1] if ":" in i.key else "FILE", i.value, i.error) for i in items]


def test_txt_lines_bom_crlf_and_final_line_breaks(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_bytes(b"\xef\xbb\xbffirst  \r\n\r\n   \r\nbad \xff\xfe bytes\r\n\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85 \xff\nlast\r\n\r\n\n")
    items = read_inputs(f)
    assert [i.key for i in items] == [f"{f}:{n}" for n in range(1, 7)]  # the final line breaks are no lines
    assert _summary(items) == [
        ("1", "first  ", None),  # BOM dropped, CR dropped, the line's own spaces kept (offsets index it)
        ("2", None, "empty line"),
        ("3", None, "empty line"),  # whitespace only is empty too
        ("4", None, "not UTF-8 (byte 0xff at column 5)"),
        ("5", None, "not UTF-8 (byte 0xff at column 6)"),  # columns count characters: سلام is 4, not 8
        ("6", "last", None),
    ]
    assert items[3].where == items[3].key
    with pytest.raises(ValueError, match=r"^empty line$"):
        items[1].get()


def test_unicode_line_separators_stay_inside_a_line(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("one\u2028still one\x0cand\x85one\ntwo\n", encoding="utf-8")
    assert [i.value for i in read_inputs(f)] == ["one\u2028still one\x0cand\x85one", "two"]


def test_jsonl_records_and_error_lines(tmp_path: Path) -> None:
    f = tmp_path / "b.jsonl"
    f.write_text('{"text": "ok"}\n{"text": \n\n[1, 2]\n"\\ud800 half"\n{"text": "\\ud83d\\ude00"}\n', encoding="utf-8")
    items = read_inputs(f)
    assert _summary(items) == [
        ("1", {"text": "ok"}, None),
        ("2", None, "not valid JSON (Expecting value, column 10)"),
        ("3", None, "empty line"),
        ("4", [1, 2], None),  # any JSON value: the family says what it needs
        ("5", None, "not valid JSON (a \\u escape is half of a surrogate pair)"),
        ("6", {"text": "\U0001f600"}, None),  # a whole pair is one character
    ]


def test_empty_files_and_whole_file_documents(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_bytes(b"\xef\xbb\xbf\r\n\n")
    assert _summary(read_inputs(empty)) == [("FILE", None, "empty file")]
    assert read_inputs(empty)[0].key == str(empty)
    doc = tmp_path / "d.txt"
    doc.write_bytes(b"\xef\xbb\xbfline one\r\nline two\r\n")
    assert _summary(read_inputs(doc, txt="document")) == [("FILE", "line one\nline two\n", None)]
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n", encoding="utf-8")
    assert _summary(read_inputs(blank, txt="document")) == [("FILE", None, "empty file")]
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(b"first\n" + "سلام caf".encode() + b"\xe9")  # a latin-1 é after 8 characters
    assert _summary(read_inputs(latin, txt="document")) == [
        ("FILE", None, "not UTF-8 (byte 0xe9 at line 2, column 9)")]
    jsonl = tmp_path / "j.jsonl"
    jsonl.write_text('{"article": "a"}\n', encoding="utf-8")
    assert _summary(read_inputs(jsonl, txt="document")) == [("1", {"article": "a"}, None)]  # jsonl: always lines


def test_ids_key_records_and_duplicates_stop_before_anything_runs(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "a", "prompt": "x"}\n{"prompt": "y"}\n{"id": 7}\n', encoding="utf-8")
    items = read_inputs(f, id_field="id", label="p.jsonl")
    assert [(i.key, i.where) for i in items] == [("a", "p.jsonl:1"), ("p.jsonl:2", "p.jsonl:2"), ("7", "p.jsonl:3")]
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": 1, "prompt": "a"}\n{"id": "1", "prompt": "b"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"dup.jsonl:2: duplicate ids: key '1' is also the key of .*dup.jsonl:1; "
                                          r'give each record its own "id"'):
        read_inputs(dup, id_field="id")
    other = tmp_path / "q.jsonl"
    other.write_text('{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate ids"):
        read_all([f, other], id_field="id")  # across files too
    assert len(read_all([f, other])) == 4  # without ids, keys are FILE:LINE and never collide


def test_convert_values_turns_a_rejected_value_into_an_error_item(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text('{"text": "hi"}\n{"text": 3}\n{"text": "  "}\n{"title": "x"}\n{"text": \n', encoding="utf-8")
    items = convert_values(read_inputs(f), lambda item: text_field(item.value))
    assert _summary(items) == [
        ("1", "hi", None),
        ("2", None, '"text" is a number, expected a string'),
        ("3", None, '"text" is empty'),
        ("4", None, 'expected an object with a string field "text", got an object with keys title'),
        ("5", None, "not valid JSON (Expecting value, column 10)"),  # an error item passes through unconverted
    ]
    assert text_field({"dialogue": "d", "text": "t"}, ("article", "dialogue", "text")) == "d"  # first field wins


def test_a_ten_megabyte_line_is_read_in_linear_time(tmp_path: Path) -> None:
    words = "kalameh " * 1_310_720  # 10 MiB
    txt = tmp_path / "big.txt"
    txt.write_text(f"short\n{words}\nshort\n", encoding="utf-8")
    jsonl = tmp_path / "big.jsonl"
    jsonl.write_text(json.dumps({"text": words}) + "\n" + '{"text": "\\u0041"}\n', encoding="utf-8")
    start = time.perf_counter()
    lines = read_inputs(txt)
    records = read_inputs(jsonl)
    seconds = time.perf_counter() - start
    assert [len(i.value) for i in lines] == [5, len(words), 5]
    assert records[0].value == {"text": words} and records[1].value == {"text": "A"}
    assert seconds < 5  # linear: well under a second on a laptop; a quadratic pass would take minutes


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the file system must take non-UTF-8 names")
def test_a_file_name_that_is_not_utf8_gives_keys_that_can_be_written(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")  # 'caf\udce9.txt': Python's escape for the byte 0xe9
    f = tmp_path / name
    f.write_text("one\ntwo\n", encoding="utf-8")
    items = read_inputs(f)
    assert [i.key for i in items] == [f"{tmp_path}/caf\\xe9.txt:1", f"{tmp_path}/caf\\xe9.txt:2"]
    assert all(i.key.encode("utf-8") for i in items)  # no surrogates left: json.dumps + write cannot fail
    out = tmp_path / "out.jsonl"
    writer = ResultWriter(out, "result")
    summary = run_batch_job([i.key for i in items] + [f], lambda key: key, lambda b: [{"result": "x"} for _ in b],
                            writer, batch_size=2)
    writer.close()
    assert summary.succeeded == 3
    paths = [json.loads(line)["path"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert paths == [items[0].key, items[1].key, f"{tmp_path}/caf\\xe9.txt"]  # the runner keys files alike
    again = ResultWriter(out, "result")  # a rerun finds them all done: the keys survive the round trip
    assert run_batch_job([i.key for i in items] + [f], lambda key: key, lambda b: [{} for _ in b], again, 2).skipped == 3
    again.close()


def test_printable_key_leaves_text_alone_and_escapes_what_utf8_cannot_hold() -> None:
    assert printable_key("texts/سلام.txt:3") == "texts/سلام.txt:3"
    assert printable_key(Path("a") / "b.txt") == "a/b.txt"
    assert printable_key("id-\ud800") == "id-\\xed\\xa0\\x80"
    assert printable_key(12) == "12"  # the runner takes any key with a stable str()


def test_an_error_item_is_one_error_record_and_the_job_goes_on(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"text": "a"}\n{"text": \n{"text": "c"}\n', encoding="utf-8")
    items = {i.key: i for i in read_inputs(f)}
    out = tmp_path / "out.jsonl"
    writer = ResultWriter(out, "result")
    summary = run_batch_job(list(items), lambda key: items[key].get()["text"],
                            lambda batch: [{"result": t.upper()} for t in batch], writer, batch_size=8)
    writer.close()
    records = {r["path"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert (summary.succeeded, summary.failed, summary.exit_code) == (2, 1, 1)
    assert records[f"{f}:2"] == {"path": f"{f}:2", "status": "error",
                                 "error": "ValueError: not valid JSON (Expecting value, column 10)"}
    assert records[f"{f}:3"]["result"] == "C"


def test_a_file_that_cannot_be_read_is_one_error_item(tmp_path: Path) -> None:
    missing = tmp_path / "gone.txt"
    (item,) = read_inputs(missing)
    assert item.key == str(missing) and item.error == "cannot read the file (No such file or directory)"
