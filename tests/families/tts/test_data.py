"""Common Voice from its local layout (generated at test time: 48 kHz MP3 clips and release TSVs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlhw.errors import DataError
from dlhw.families.tts.config import TtsDataConfig
from dlhw.families.tts.data import decode_audio, load_commonvoice, load_embedded, read_cv_tsv

HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tvariant\tlocale\tsegment"


def _tone(seconds: float, freq: float, rate: int = 48000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture()
def cv_dir(tmp_path: Path) -> Path:
    """A Common Voice fa locale folder: speakers a (3 clips, one stereo), b (2 clips), c (1 clip), plus
    an empty, an undecodable, a too-short and a too-long clip, and a sentence of symbols only."""
    import soundfile as sf

    root = tmp_path / "fa"
    clips = root / "clips"
    clips.mkdir(parents=True)
    good = {"a1.mp3": ("a", "سلام ۲۳", 1.2), "a2.mp3": ("a", "كتاب خوب", 1.0), "a3.mp3": ("a", "stereo", 1.1),
            "b1.mp3": ("b", "باران", 0.9), "b2.mp3": ("b", "دریا", 1.3), "c1.mp3": ("c", "کوه", 1.0)}
    for name, (_, _, seconds) in good.items():
        wave = _tone(seconds, 220.0)
        data = np.stack([wave, 0.5 * wave], axis=1) if name == "a3.mp3" else wave
        sf.write(str(clips / name), data, 48000, format="MP3")
    (clips / "empty.mp3").write_bytes(b"")
    (clips / "broken.mp3").write_bytes(b"this is not an mp3 file" * 20)
    sf.write(str(clips / "short.mp3"), _tone(0.2, 300.0), 48000, format="MP3")
    sf.write(str(clips / "long.mp3"), _tone(3.5, 300.0), 48000, format="MP3")
    sf.write(str(clips / "symbols.mp3"), _tone(1.0, 300.0), 48000, format="MP3")
    rows = [(spk, name, text) for name, (spk, text, _) in good.items()]
    rows += [("a", "empty.mp3", "خالی"), ("b", "broken.mp3", "خراب"), ("a", "short.mp3", "کوتاه"),
             ("b", "long.mp3", "بلند"), ("a", "symbols.mp3", "«»…")]
    lines = [f"{spk}\t{name}\t{text}\t2\t0\ttwenties\tmale_masculine\t\t\tfa\t" for spk, name, text in rows]
    (root / "train.tsv").write_text("\n".join([HEADER, *lines[:8]]) + "\n", encoding="utf-8")
    (root / "dev.tsv").write_text("\n".join([HEADER, *lines[8:]]) + "\n", encoding="utf-8")
    (root / "test.tsv").write_text("\n".join([HEADER, lines[0]]) + "\n", encoding="utf-8")  # a1 again: counted once
    return root


def _cfg(root: Path, **kw: object) -> TtsDataConfig:
    base = dict(source="commonvoice", data_dir=str(root), min_seconds=0.5, max_seconds=3.0, min_clips_per_speaker=2,
                max_clips_per_speaker=3, val_fraction=0.2)
    return TtsDataConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_common_voice_layout_loads_with_skipped_counts_and_reasons(cv_dir: Path) -> None:
    splits = load_commonvoice(_cfg(cv_dir), seed=1)
    assert splits.skipped == {"empty": 1, "undecodable": 1, "shorter than 0.5 s": 1, "longer than 3 s": 1,
                              "empty sentence after cleaning": 1}
    assert splits.clips_per_speaker == {"a": 3, "b": 2, "c": 1}
    assert splits.speakers_dropped == 1  # c: one clip, below min_clips_per_speaker
    kept = sorted(u.key for u in splits.all())
    assert kept == ["a1.mp3", "a2.mp3", "a3.mp3", "b1.mp3", "b2.mp3"]
    assert len(splits.val) == 1 and len(splits.train) == 4
    texts = {u.key: u.text for u in splits.all()}
    assert texts["a1.mp3"] == "سلام بیست و سه" and texts["a2.mp3"] == "کتاب خوب"
    summary = splits.summary()
    assert summary["skipped"]["undecodable"] == 1 and summary["speakers"] == 2


def test_stereo_48k_mp3_decodes_to_16k_mono(cv_dir: Path) -> None:
    audio = decode_audio(cv_dir / "clips" / "a3.mp3")
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert abs(len(audio) - 1.1 * 16000) < 0.06 * 16000  # the MP3 codec pads a few ms
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 220.0) < 5.0  # still the 220 Hz tone


def test_split_is_seeded_and_speaker_range_configurable(cv_dir: Path) -> None:
    one = load_commonvoice(_cfg(cv_dir), seed=3)
    two = load_commonvoice(_cfg(cv_dir), seed=3)
    assert [u.key for u in one.val] == [u.key for u in two.val]
    wide = load_commonvoice(_cfg(cv_dir, min_clips_per_speaker=1), seed=3)
    assert "c1.mp3" in {u.key for u in wide.all()}
    narrow = load_commonvoice(_cfg(cv_dir, max_clips_per_speaker=2), seed=3)
    assert {u.speaker_id for u in narrow.all()} == {"b"}


def test_wrong_tsv_columns_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "train.tsv"
    bad.write_text("path\tsentence\nx.mp3\tسلام\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.tsv:1: not a Common Voice TSV: missing column\(s\) client_id"):
        read_cv_tsv(bad)


def test_missing_locale_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--data-dir.*--preset tiny"):
        load_commonvoice(_cfg(tmp_path / "nowhere"), seed=0)


def test_embedded_corpus_is_deterministic_and_speakers_differ() -> None:
    cfg = TtsDataConfig(source="embedded", embedded_utterances=40, embedded_speakers=4, min_clips_per_speaker=1)
    a, b = load_embedded(cfg, 5), load_embedded(cfg, 5)
    assert [u.text for u in a.all()] == [u.text for u in b.all()]
    assert np.array_equal(a.train[0].audio, b.train[0].audio)  # type: ignore[arg-type]
    assert len({u.speaker_id for u in a.all()}) == 4
    assert all(not any(ch.isdigit() for ch in u.text) for u in a.all())  # digits spelled out


def test_hub_mirror_offline_says_what_to_do() -> None:
    from dlhw.families.tts.data import load_speech

    cfg = TtsDataConfig(source="hub", hf_dataset="mozilla-foundation/common_voice_13_0", data_dir=None)
    with pytest.raises(DataError, match=r"common_voice_13_0 \(fa\).*withdrawn.*--data-dir.*--preset tiny"):
        load_speech(cfg, seed=0)


def test_data_inspect_reports_the_fixture(cv_dir: Path, tmp_path: Path) -> None:
    import json

    from tests.conftest import run_cli

    code, out = run_cli("data", "inspect", "tts", "--data-dir", str(cv_dir), "--out", str(tmp_path / "fig"),
                        "--set", "data.min_clips_per_speaker=2", "--set", "data.max_clips_per_speaker=3",
                        "--set", "data.max_seconds=3.0", "--set", "data.val_fraction=0.2")
    assert code == 0, out
    numbers = json.loads(out[out.index("{"):])
    assert numbers["skipped"]["undecodable"] == 1 and numbers["skipped"]["empty"] == 1
    assert numbers["train"] + numbers["val"] == 5 and numbers["speakers"] == 2
    assert "ب" in numbers["characters"] and "2" not in numbers["characters"]
    assert sorted(Path(p).name for p in numbers["plots"]) == ["clips_per_speaker.png", "durations.png"]


def test_data_inspect_reports_every_speaker_filtered_out(cv_dir: Path, tmp_path: Path) -> None:
    """The default 10-1,000 clips per speaker keeps none of the fixture's three speakers: inspect says
    so (exit 0, a warning, the counts) where training refuses."""
    import json

    from tests.conftest import run_cli

    code, out = run_cli("data", "inspect", "tts", "--data-dir", str(cv_dir), "--out", str(tmp_path / "fig"),
                        "--set", "data.max_seconds=3.0")
    assert code == 0, out
    assert "warning: " in out and "no clip left after filtering" in out and "data.min_clips_per_speaker" in out
    numbers = json.loads(out[out.index("{"):])
    assert (numbers["train"], numbers["val"], numbers["speakers_dropped"]) == (0, 0, 3)
    assert numbers["speakers_filtered_out"] == {"below_min_clips": 3, "above_max_clips": 0}
    assert numbers["skipped"]["undecodable"] == 1 and len(numbers["warnings"]) == 1
    assert [Path(p).name for p in numbers["plots"]] == ["clips_per_speaker.png"]
    with pytest.raises(DataError, match="no clip left after filtering"):
        load_commonvoice(_cfg(cv_dir, min_clips_per_speaker=10, max_clips_per_speaker=1000), seed=0)
