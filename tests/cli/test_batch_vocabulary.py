"""Every batch verb speaks one vocabulary: --model, --backend, --device (auto), --batch-size, --shard, --out."""

from __future__ import annotations

import click
import pytest

from dlhw.cli import cli
from dlhw.core.registry import FAMILIES
from tests.conftest import run_cli

VERBS = sorted(f.batch_verb for f in FAMILIES.values() if f.batch_verb)


def _options(verb: str) -> dict[str, click.Option]:
    command = cli.commands[verb]
    return {opt: p for p in command.params if isinstance(p, click.Option) for opt in p.opts}


def test_the_batch_verbs_are_the_five_families_with_one() -> None:
    assert VERBS == ["caption", "chat", "ner", "summarize", "tts"]


@pytest.mark.parametrize("verb", VERBS)
def test_each_batch_verb_declares_the_shared_options(verb: str) -> None:
    options = _options(verb)
    model, device, out = options["--model"], options["--device"], options["--out"]
    assert model.name == "model_path"
    assert model.required is (verb != "chat")  # chat also takes the run as its argument
    assert (device.default, device.show_default) == ("auto", True)
    assert out.name == "out" and isinstance(out.type, click.Path) and not out.type.dir_okay
    batch = options["--batch-size"]
    assert isinstance(batch.type, click.IntRange) and batch.type.min == 1 and isinstance(batch.default, int)
    assert options["--shard"].default is None and options["--shard"].metavar == "i/n"
    backend = options["--backend"]
    assert backend.default == "torch" and isinstance(backend.type, click.Choice)
    assert {"torch", "onnxruntime"} <= set(backend.type.choices) <= {"torch", "onnxruntime", "tensorrt"}
    assert "--output-dir" not in options and "--out-dir" not in [o for o, p in options.items() if not p.hidden]


@pytest.mark.parametrize("verb", VERBS)
def test_help_lists_the_shared_options(verb: str) -> None:
    code, text = run_cli(verb, "--help")
    assert code == 0
    for flag in ("--model RUN", "--backend", "--device DEVICE", "--batch-size", "--shard i/n", "--out FILE"):
        assert flag in text, flag
    device_help = text[text.index("--device"):text.index("--", text.index("--device") + 2)]
    assert "[default: auto]" in " ".join(device_help.split())


@pytest.mark.parametrize("verb", VERBS)
def test_a_misspelt_device_is_a_usage_error_before_anything_loads(verb: str, tmp_path) -> None:
    inputs = [] if verb == "chat" else [str(tmp_path / "in.txt")]  # chat's argument is its run
    code, text = run_cli(verb, *inputs, "--model", str(tmp_path), "--device", "gpu", "--out", str(tmp_path / "o.jsonl"))
    assert code == 2 and "Invalid value for '--device'" in text and "cuda:N" in text


def test_chat_takes_the_run_as_model_or_argument_once(tmp_path) -> None:
    out = str(tmp_path / "a.jsonl")
    (tmp_path / "p.txt").write_text("hello\n", encoding="utf-8")
    for args in (("--model", str(tmp_path)), (str(tmp_path),)):
        code, text = run_cli("chat", *args, "--prompts", str(tmp_path / "p.txt"), "--out", out)
        assert code == 2 and "the torch backend needs a chat run directory" in text  # got as far as loading it
    code, text = run_cli("chat", str(tmp_path), "--model", str(tmp_path), "--prompts", str(tmp_path / "p.txt"),
                         "--out", out)
    assert code == 2 and "the run is given twice" in text and "give --model RUN only" in text
    code, text = run_cli("chat", "--prompts", "p.txt", "--out", out)
    assert code == 2 and "give the chat run: --model RUN" in text


def test_tts_out_is_the_manifest_and_out_dir_its_old_spelling(tmp_path) -> None:
    model = str(tmp_path)
    code, text = run_cli("tts", "a.txt", "--model", model, "--out", str(tmp_path / "a.wav"))
    assert code == 2 and "in batch mode --out is the manifest (.jsonl or .csv)" in text
    code, text = run_cli("tts", "a.txt", "--model", model, "--out-dir", "w", "--out", "w/m.jsonl")
    assert code == 2 and "--out-dir w is the old spelling of --out w/manifest.jsonl" in text
    code, text = run_cli("tts", "--model", model, "--text", "سلام", "--out", "a.wav", "--wav-dir", "w")
    assert code == 2 and "--text goes with --out FILE.wav" in text
    code, text = run_cli("tts", "a.txt", "--model", model)
    assert code == 2 and "give INPUTS and --out MANIFEST.jsonl" in text


def test_chat_batch_usage_errors_come_before_the_model_loads(tmp_path) -> None:
    """A bad --out, --shard or --prompts file is reported without opening the (here missing) run."""
    (tmp_path / "p.txt").write_text("hello\n", encoding="utf-8")
    base = ("chat", "--model", str(tmp_path), "--prompts", str(tmp_path / "p.txt"))  # a folder, not a run
    code, text = run_cli(*base, "--out", str(tmp_path / "a.txt"))
    assert code == 2 and "use a .jsonl or .csv file" in text
    code, text = run_cli(*base, "--out", str(tmp_path / "a.jsonl"), "--shard", "3/2")
    assert code == 2 and "--shard '3/2': expected i/n" in text
    assert not (tmp_path / "a.jsonl").exists()
