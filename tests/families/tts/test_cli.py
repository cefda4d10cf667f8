"""``dlhw tts``: WAVs and a manifest, split long lines, error records, resume after a kill, both backends."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlhw.families.tts.cli import read_utterances
from dlhw.families.tts.infer import wav_name
from tests.conftest import run_cli

LONG = " ".join(["این کتاب روی میز است.", "من دو سیب دارم، تو چند سیب داری؟"] * 14)  # 769 characters


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_read_utterances_keys_every_line(tmp_path: Path) -> None:
    txt = tmp_path / "a.txt"
    txt.write_text("سلام\n\nدو\n", encoding="utf-8")
    items = read_utterances([txt])
    assert [i.key for i in items] == [f"{txt}:1", f"{txt}:2", f"{txt}:3"]
    assert items[1].error == "empty line"  # an error record, not a line silently gone (WAVs are named by line)
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"text": "سلام", "speaker": "s1"}\n[1, 2]\n{"text": "x", "speaker": 3}\n{"text": \n',
                     encoding="utf-8")
    items = {i.key: i for i in read_utterances([jsonl])}
    assert items[f"{jsonl}:1"].get() == {"text": "سلام", "speaker": "s1"}
    assert items[f"{jsonl}:2"].error == 'expected an object with a string field "text", got an array'
    assert items[f"{jsonl}:3"].error == '"speaker" must be a string (a client_id or a WAV file), not 3'
    assert items[f"{jsonl}:4"].error == "not valid JSON (Expecting value, column 10)"
    tag = hashlib.sha1(str(txt).encode()).hexdigest()[:8]
    assert wav_name(f"{txt}:12") == f"a-00012-{tag}.wav"
    # two files of one stem (in two folders, or .txt beside .jsonl) never share a WAV
    names = {wav_name(k) for k in ("a/s.txt:1", "b/s.txt:1", "a/s.jsonl:1", "a/s.txt:2")}
    assert len(names) == 4 and all(n.startswith("s-0000") for n in names)


@pytest.mark.slow
def test_empty_digits_and_long_lines(tts_run: Path, tmp_path: Path) -> None:  # noqa: F811
    assert len(LONG) > 700
    lines = tmp_path / "lines.txt"
    lines.write_text(f"سلام دنیا\n\n۱۲۳\n{LONG}\n", encoding="utf-8")
    out = tmp_path / "wavs"
    code, log = run_cli("tts", str(lines), "--model", str(tts_run), "--out-dir", str(out), "--batch-size", "4")
    assert code == 1, log  # one line failed
    records = {r["path"]: r for r in _records(out / "manifest.jsonl")}
    assert records[f"{lines}:2"] == {"path": f"{lines}:2", "status": "error",
                                     "error": "ValueError: empty line"}
    digits = records[f"{lines}:3"]
    assert digits["status"] == "ok" and digits["text"] == "صد و بیست و سه" and digits["parts"] == 1
    long = records[f"{lines}:4"]
    assert long["parts"] == 3  # 769 characters over 300 text positions: split at sentence ends
    assert long["text"].count(".") == 14
    for record in (records[f"{lines}:1"], digits, long):
        info = sf.info(record["wav"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == record["frames"] * 256
    assert "3 lines done, 1 failed" in log


@pytest.mark.slow
def test_killed_job_resumes_without_gaps_or_duplicates(tts_run: Path, tmp_path: Path) -> None:  # noqa: F811
    lines = tmp_path / "many.txt"
    lines.write_text("\n".join(f"جمله شماره {i}" for i in range(1, 9)) + "\n", encoding="utf-8")
    out = tmp_path / "wavs"
    argv = [sys.executable, "-m", "dlhw", "tts", str(lines), "--model", str(tts_run), "--out-dir", str(out),
            "--batch-size", "2"]
    killed = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "DLHW_FAULT": "kill-after-batch:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    partial = _records(out / "manifest.jsonl")
    assert len(partial) == 4
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    records = _records(out / "manifest.jsonl")
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == 8
    assert paths[:4] == [r["path"] for r in partial]
    assert sorted(p.name for p in out.glob("*.wav")) == sorted(Path(r["wav"]).name for r in records)
    assert sorted(p.name for p in out.glob("*.wav")) == [wav_name(f"{lines}:{i}") for i in range(1, 9)]
    assert not list(out.glob(".*partial*"))


@pytest.mark.slow
def test_onnxruntime_wavs_equal_torch_wavs(tts_run: Path, tmp_path: Path) -> None:  # noqa: F811
    lines = tmp_path / "s.jsonl"
    lines.write_text('{"text": "سلام دنیا"}\n{"text": "من ۲۳ سیب دارم.", "speaker": "synthetic-02"}\n'
                     '{"text": "باران می‌بارد"}\n', encoding="utf-8")
    waves = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        code, log = run_cli("tts", str(lines), "--model", str(tts_run), "--out-dir", str(out), "--backend", backend,
                            "--batch-size", "3")
        assert code == 0, log
        waves[backend] = {r["path"]: (r["frames"], sf.read(r["wav"], dtype="int16")[0])
                          for r in _records(out / "manifest.jsonl")}
    assert waves["torch"].keys() == waves["onnxruntime"].keys()
    for key, (frames, wave) in waves["torch"].items():
        ort_frames, ort_wave = waves["onnxruntime"][key]
        assert frames == ort_frames  # the same stop step
        assert len(wave) == len(ort_wave) == frames * 256
        assert int(np.abs(wave.astype(int)).max()) > 1000  # not silence: the comparison means something
        assert int(np.abs(wave.astype(int) - ort_wave.astype(int)).max()) <= 33  # 1e-3 of full scale


@pytest.mark.slow
def test_single_text_to_one_wav_and_unknown_speaker(tts_run: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "a.wav"
    code, log = run_cli("tts", "--model", str(tts_run), "--text", "سلام ۲۳", "--out", str(out),
                        "--speaker", "synthetic-01")
    assert code == 0, log
    info = sf.info(str(out))
    assert (info.samplerate, info.channels) == (16000, 1) and info.frames % 256 == 0
    voice = tmp_path / "voice.wav"  # a recording as the speaker: embedded with the run's x-vector provider
    sf.write(str(voice), np.sin(np.arange(16000) * 2 * np.pi * 180 / 16000).astype(np.float32) * 0.3, 16000)
    code, log = run_cli("tts", "--model", str(tts_run), "--text", "سلام", "--out", str(tmp_path / "b.wav"),
                        "--speaker", str(voice))
    assert code == 0, log
    assert sf.info(str(tmp_path / "b.wav")).frames > 0
    code, log = run_cli("tts", "--model", str(tts_run), "--text", "سلام", "--out", str(out), "--speaker", "nobody")
    assert code == 2 and "--speaker nobody: neither a speaker of this run" in log
