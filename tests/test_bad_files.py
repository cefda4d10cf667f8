"""Damaged or hostile files a user may hand dlhw: each is one ``error:`` line (exit 1 for data or the
environment, 2 for usage) or one error record per bad input, never a traceback.

a. a damaged weights file; b. a damaged ONNX export; c. text that is not UTF-8 on the command line
or stdin; d. a config with a Python tag; e. bad lines among good ones in a prompts file, empty input
files; f. a folder that cannot be written.

The tests that need a trained run reuse the session's tiny runs (``tests/conftest.py``) and damage
a copy in ``tmp_path``.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dlhw.cli import main
from tests.conftest import run_cli

CUT = "incomplete metadata, file not fully covered"
"""What the safetensors reader says of a file cut short (its header's byte ranges pass the end)."""


def _copy(run: Path, tmp_path: Path, name: str = "run") -> Path:
    target = tmp_path / name
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("checkpoints"))
    return target


def _cut(path: Path) -> None:
    """Keep the first half of ``path`` (a copy interrupted half way)."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``dlhw ARGS`` through the console entry point: (exit code, the last line on stderr)."""
    monkeypatch.setattr(sys, "argv", ["dlhw", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0), capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_damaged_weights_file_is_one_line_naming_it(ner_run: Path, chat_runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(ner_run, tmp_path)
    shutil.rmtree(run / "export", ignore_errors=True)  # another test may have exported the session's run
    weights = run / "model" / "model.safetensors"
    _cut(weights)
    texts = tmp_path / "t.txt"
    texts.write_text("Ali lives in Tehran.\n", encoding="utf-8")
    line = f"error: {weights}: the weights file is damaged ({CUT}); re-train the run or restore the file"
    for args in (["evaluate", str(run)], ["export", str(run), "--onnx"],
                 ["prune", str(run), "--amount", "0.3", "--output-dir", str(tmp_path / "pruned")],
                 ["ner", str(texts), "--model", str(run), "--out", str(tmp_path / "o.jsonl")]):
        code, out = run_cli(*args)
        assert (code, out.strip().splitlines()[-1]) == (1, line), args
    assert not (tmp_path / "o.jsonl").exists() and not (run / "export" / "onnx").exists()

    # bytes that are no safetensors file at all, in a language-model run (loaded by from_pretrained)
    chat = _copy(chat_runs["lora"], tmp_path, "chat")
    adapter = chat / "model" / "adapter_model.safetensors"
    adapter.write_bytes(b"\xff" * 4096)
    prompts = tmp_path / "p.txt"
    prompts.write_text("hello\n", encoding="utf-8")
    code, out = run_cli("chat", str(chat), "--prompts", str(prompts), "--out", str(tmp_path / "a.jsonl"))
    assert (code, out.strip().splitlines()[-1]) == (
        1, f"error: {adapter}: the weights file is damaged (header too large); re-train the run or restore the file")


@pytest.mark.slow
def test_b_a_damaged_export_is_one_line_saying_to_export_again(ner_export: tuple[Path, str],
                                                                tmp_path: Path) -> None:
    run = _copy(ner_export[0].parent.parent, tmp_path)
    export = run / "export" / "onnx"
    texts = tmp_path / "t.txt"
    texts.write_text("Ali lives in Tehran.\n", encoding="utf-8")
    again = f"re-export with `dlhw export {run} --onnx`"

    def last_line() -> tuple[int, str]:
        code, out = run_cli("ner", str(texts), "--model", str(run), "--backend", "onnxruntime",
                            "--out", str(tmp_path / "o.jsonl"))
        return code, out.strip().splitlines()[-1]

    meta = json.loads((export / "export.json").read_text(encoding="utf-8"))
    _cut(export / "model.onnx")
    assert last_line() == (1, f"error: {export / 'model.onnx'}: the ONNX file is damaged (Protobuf parsing failed); "
                              f"{again}")
    (export / "export.json").write_text('{"family": "ner", "files": {', encoding="utf-8")
    assert last_line() == (1, f"error: {export / 'export.json'}: not valid JSON (line 1, column 29: Expecting "
                              f"property name enclosed in double quotes); {again}")
    del meta["files"]
    (export / "export.json").write_text(json.dumps(meta), encoding="utf-8")
    assert last_line() == (1, f'error: {export / "export.json"}: no "files" entry (written by another dlhw '
                              f"version, or edited); {again}")
    assert not (tmp_path / "o.jsonl").exists()


def test_c_text_that_is_not_utf8_is_a_usage_error_or_refused_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from dlhw.families.chat.cli import _interactive

    # argv bytes that are not UTF-8 arrive surrogate-escaped: b"\xff" is "\udcff"
    fix = "pass it in UTF-8 (check the terminal's or the script's encoding)"
    code, out = run_cli("tts", "--model", str(tmp_path), "--text", "\udcff\udcfe salam", "--out", "a.wav")
    assert (code, out.strip().splitlines()[-1]) == (2, f"error: --text: not UTF-8 text (byte 0xff at character 1); {fix}")
    code, out = run_cli("tts", "--model", str(tmp_path), "--text", "salam", "--speaker", "sp\udcff", "--out", "a.wav")
    assert (code, out.strip().splitlines()[-1]) == (2, f"error: --speaker: not UTF-8 text (byte 0xff at character 3); "
                                                       f"{fix}")
    code, out = run_cli("chat", str(tmp_path), "--system", "be \udcffkind")
    assert (code, out.strip().splitlines()[-1]) == (2, f"error: --system: not UTF-8 text (byte 0xff at character 4); "
                                                       f"{fix}")

    # the interactive session: the bad line is refused, the next one answered
    asked: list[Any] = []

    class Generator:
        tokenizer = SimpleNamespace(decode=lambda *a, **k: "")

        def generate(self, conversations: list[Any], streamer: Any = None) -> list[Any]:
            asked.append([dict(m) for m in conversations[0]])
            return [SimpleNamespace(text="fine")]

    stdin = io.TextIOWrapper(io.BytesIO(b"hello\n\xff bad\nbye\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    _interactive(Generator(), None)
    assert capsys.readouterr().err.splitlines()[1] == (
        "that line is not UTF-8 text (byte 0xff at character 1); type it again in UTF-8")
    assert [conv[-1]["content"] for conv in asked] == ["hello", "bye"]


def test_d_a_config_with_a_python_tag_runs_nothing_and_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}", encoding="utf-8")
    pwned = tmp_path / "pwned"
    (run / "config.yaml").write_text(f'recipe: ner\npreset: tiny\nseed: !!python/object/apply:os.system ["touch {pwned}"]\n',
                                     encoding="utf-8")
    line = (f"error: {run / 'config.yaml'}:3:7: the tag !!python/object/apply:os.system is not allowed (a config "
            "holds plain values; dlhw builds no objects from YAML); remove the tag")
    for args in (["report", "run", str(run)], ["evaluate", str(run)], ["export", str(run), "--onnx"],
                 ["train", "ner", "--config", str(run / "config.yaml"), "--output-dir", str(tmp_path / "new")]):
        code, out = run_cli(*args)
        assert (code, out.strip().splitlines()[-1]) == (2, line), args
    assert not pwned.exists() and not (tmp_path / "new").exists()


@pytest.mark.slow
def test_e_each_bad_prompt_is_its_own_record_and_empty_files_are_one(chat_runs: dict[str, Path], ner_run: Path,
                                                                      tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    lines = ['{"prompt": "hello"}', "[1, 2]", '{"messages": [{"role": "user"}]}', '{"messages": "oops"}',
             '{"id": 7, "prompt": "hi"}', '{"id": "q8", "messages": [{"role": "user", "content": "good"}]}']
    prompts.write_bytes("\n".join(lines).encode() + b'\n{"prompt": "\xff"}\n')
    out = tmp_path / "a.jsonl"
    code, _ = run_cli("chat", str(chat_runs["lora"]), "--prompts", str(prompts), "--out", str(out),
                      "--max-new-tokens", "2")
    records = {r["path"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert code == 1
    assert {k: r.get("error") for k, r in records.items()} == {
        f"{prompts}:1": None,
        f"{prompts}:2": f"ValueError: {prompts}:2: message 0 is int, expected an object",
        f"{prompts}:3": f"ValueError: {prompts}:3: message 0 needs role/content (or from/value), got keys ['role']",
        f"{prompts}:4": f"ValueError: {prompts}:4: messages must be a list, got a string that is not a JSON list",
        f"{prompts}:5": 'ValueError: "id" must be a string, got 7',
        "q8": None,
        f"{prompts}:7": "ValueError: not UTF-8 (byte 0xff at column 13)",
    }
    assert records["q8"]["prompt"] == "good" and records["q8"]["status"] == "ok"

    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    code, _ = run_cli("chat", str(chat_runs["lora"]), "--prompts", str(empty), "--out", str(tmp_path / "e.jsonl"))
    assert code == 1
    assert [json.loads(x) for x in (tmp_path / "e.jsonl").read_text(encoding="utf-8").splitlines()] == [
        {"path": str(empty), "status": "error", "error": "ValueError: empty file"}]
    texts = tmp_path / "empty.txt"
    texts.write_bytes(b"\n")
    code, _ = run_cli("ner", str(texts), "--model", str(ner_run), "--out", str(tmp_path / "n.jsonl"))
    assert code == 1
    assert [json.loads(x) for x in (tmp_path / "n.jsonl").read_text(encoding="utf-8").splitlines()] == [
        {"path": str(texts), "status": "error", "error": "ValueError: empty file"}]


def test_f_a_folder_that_cannot_be_written_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o555)  # the real refusal
    else:  # root writes anyway: the file system refuses as a read-only mount would
        real_mkdir = os.mkdir

        def refusing_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
            if Path(path).parent == locked:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
            real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", refusing_mkdir)
    code, line = _main(monkeypatch, capsys, "train", "ner", "--preset", "tiny", "--output-dir", str(locked / "run"))
    assert (code, line) == (1, f"error: {locked} is not writable (Permission denied); make it writable or choose "
                               f"another folder ({locked / 'run'} could not be written)")
    assert not (locked / "run").exists()


def test_f_not_writable_names_the_folder_and_leaves_other_errors(tmp_path: Path) -> None:
    from dlhw.core.writable import not_writable

    plots = tmp_path / "run" / "plots"
    plots.mkdir(parents=True)
    refused = not_writable(OSError(errno.EROFS, "Read-only file system", str(plots / "loss.png")))
    assert str(refused) == (f"{plots} is not writable (Read-only file system); make it writable or choose another "
                            f"folder ({plots / 'loss.png'} could not be written)")
    assert str(not_writable(PermissionError(errno.EACCES, "Permission denied", str(plots)))) == (
        f"{plots} is not writable (Permission denied); make it writable or choose another folder")
    assert not_writable(FileNotFoundError(errno.ENOENT, "No such file or directory", str(plots / "x"))) is None
    assert not_writable(OSError(errno.EROFS, "Read-only file system")) is None  # no file named: left as it is


def test_a_weights_reader_names_cut_random_and_foreign_files(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from dlhw.core.weights import check_weights, load_state
    from dlhw.errors import DlhwError

    good = tmp_path / "model" / "model.safetensors"
    good.parent.mkdir()
    save_file({"weight": torch.ones(32, 32), "bias": torch.zeros(32)}, str(good))
    layer = torch.nn.Linear(32, 32)
    load_state(layer, good)
    assert layer.weight.sum().item() == 1024.0
    fix = "re-train the run or restore the file"
    _cut(good)  # the header whole, half of the data gone
    with pytest.raises(DlhwError) as err:
        check_weights([tmp_path / "model"])  # a folder: every weights file in it
    assert str(err.value) == f"{good}: the weights file is damaged ({CUT}); {fix}"
    good.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DlhwError) as err:
        load_state(layer, good)
    assert str(err.value) == f"{good}: the weights file is damaged (header too large); {fix}"
    save_file({"weight": torch.ones(3, 3)}, str(good))
    with pytest.raises(DlhwError) as err:
        load_state(layer, good)
    assert str(err.value) == (f"{good}: the weights file is damaged (its tensors do not fit the model of the run's "
                              f'config: Missing key(s) in state_dict: "bias"); {fix}')
    with pytest.raises(DlhwError) as err:
        check_weights([tmp_path / "gone.safetensors"])
    assert str(err.value) == f"{tmp_path / 'gone.safetensors'}: the weights file is missing; {fix}"


def test_b_export_meta_names_the_file_and_the_missing_entry(tmp_path: Path) -> None:
    from dlhw.backends import read_export_meta
    from dlhw.errors import DlhwError

    export = tmp_path / "run" / "export" / "onnx"
    export.mkdir(parents=True)
    again = f"re-export with `dlhw export {tmp_path / 'run'} --onnx`"
    (export / "export.json").write_text('{"family": "tts", "files": {"encoder": "encoder.onnx"}}', encoding="utf-8")
    meta = read_export_meta(export)
    assert meta["files"]["encoder"] == "encoder.onnx" and meta.get("tensorrt") is None
    with pytest.raises(DlhwError) as err:
        meta["files"]["decoder_step"]
    assert str(err.value) == (f'{export / "export.json"}: no "files.decoder_step" entry (written by another dlhw '
                              f"version, or edited); {again}")
    (export / "export.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DlhwError) as err:
        read_export_meta(export)
    assert str(err.value) == f"{export / 'export.json'}: holds a JSON list, not an object; {again}"
    with pytest.raises(DlhwError) as err:
        read_export_meta(tmp_path, "tts.json")
    assert str(err.value) == f"{tmp_path / 'tts.json'}: missing from the export; re-export with `dlhw export RUN --onnx`"
