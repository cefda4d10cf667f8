"""The TTS family's plots (spectrograms, clips per speaker) and report sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlhw.core.runs import RunFiles
from dlhw.reports.plots import plt, save_figure
from dlhw.reports.run_report import fmt


def plot_spectrograms(generated: np.ndarray, reference: np.ndarray, path: Path, title: str = "") -> Path:
    """Generated (top) and reference (bottom) log-mel spectrograms, (T, M) each."""
    fig, axes = plt.subplots(2, 1, figsize=(7.0, 4.6), sharex=False)
    for ax, mel, name in ((axes[0], generated, "generated"), (axes[1], reference, "reference")):
        ax.imshow(np.asarray(mel).T, origin="lower", aspect="auto", cmap="magma")
        ax.set_ylabel(f"{name}\nmel bin")
    axes[1].set_xlabel("frame (16 ms)")
    fig.suptitle(title[:80])
    return save_figure(fig, path)


def plot_clips_per_speaker(counts: dict[str, int], low: int, high: int, path: Path) -> Path:
    """Histogram of clips per speaker (log x), with the kept range shaded."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    values = np.array(sorted(counts.values()))
    bins = sorted({int(b) for b in np.logspace(0, np.log10(max(values.max(), 2)), 30)})
    ax.hist(values, bins=bins, color="tab:blue")
    ax.set_xscale("log")
    ax.axvspan(low, high, color="tab:green", alpha=0.15, label=f"kept: {low}-{high} clips")
    ax.set_xlabel("clips per speaker")
    ax.set_ylabel("speakers")
    ax.set_title(f"{len(values)} speakers, {int(values.sum())} clips")
    ax.legend()
    return save_figure(fig, path)


def data_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    data = summary.get("data")
    if not data:
        return []
    d = config["data"]
    out = ["## Data", "",
           f"- {data['train']} train / {data['val']} held-out clips ({data['hours']} h) from {data['source']}; "
           f"{data['speakers']} speakers kept ({d['min_clips_per_speaker']}-{d['max_clips_per_speaker']} clips each), "
           f"{data['speakers_dropped']} dropped; {data['speakers_crossing_split']} speakers have clips on both sides "
           "of the seeded clip-level split",
           f"- skipped clips: {data['skipped'] or 'none'}; over the model's limits: {data.get('over_limits') or 'none'}",
           f"- vocabulary extension ({len(data.get('extension', []))} characters, from the cleaned text of every "
           f"split): {' '.join(data.get('extension', []))}", ""]
    if RunFiles(run_dir).plot("clips_per_speaker.png").is_file():
        out += ["![clips per speaker](plots/clips_per_speaker.png)", ""]
    return out


def model_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    model = summary.get("model")
    if not model:
        return []
    out = ["## Model", "",
           f"- SpeechT5 `{model['base']}`, {model['parameters']:,} parameters, vocabulary {model['vocab_size']} "
           f"(+{model['added_tokens']}); vocoder `{model['vocoder']}`; reduction factor {model['reduction_factor']}",
           f"- speaker embeddings: {model['speaker_encoder']} (512-d, L2-normalized, cached per clip)"]
    if model.get("tiny_vocoder"):
        out.append("- the tiny preset's HiFi-GAN has random weights: its audio exercises the real path but is "
                   "not speech; compare the spectrograms")
    return [*out, ""]


def evaluation_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    if not evaluation:
        return []
    m, base = evaluation["metrics"], evaluation.get("base", {})
    out = ["## Evaluation (held-out clips, each with its own speaker's x-vector)", "",
           "| | mel L1 | MCD (dB) | duration ratio | speaker similarity |", "|---|---:|---:|---:|---:|"]
    if base:
        out.append(f"| before training | {fmt(base['mel_l1'])} | {fmt(base['mcd'])} | {fmt(base['duration_ratio'])} | "
                   f"{fmt(base['speaker_similarity'])} |")
    out.append(f"| fine-tuned | {fmt(m['mel_l1'])} | {fmt(m['mcd'])} | {fmt(m['duration_ratio'])} | "
               f"{fmt(m['speaker_similarity'])} |")
    out += ["", "MCD: 10/ln10 * sqrt(2 * sum_{d=1..24} (c_d - c'_d)^2) dB over DTW-aligned mel-cepstra (alpha 0.42, c_0 "
            f"left out) of the {'log-mel spectrograms' if evaluation.get('mcd_from') == 'mel' else 'waveforms'}.",
            "", f"Speaker similarity from {evaluation.get('speaker_similarity_from')} ({evaluation.get('speaker_encoder')})"
            f"; CER: {fmt(m['cer']) if 'cer' in m else m.get('cer_skipped', 'skipped')}.", ""]
    for s in evaluation.get("samples", []):
        rel = Path(s["plot"]).relative_to(run_dir) if Path(s["plot"]).is_relative_to(run_dir) else s["plot"]
        wav = Path(s["wav"]).relative_to(run_dir) if Path(s["wav"]).is_relative_to(run_dir) else s["wav"]
        out += [f"- {s['text']} ({s['frames']} vs {s['reference_frames']} frames): [{wav}]({wav})", "",
                f"![spectrogram]({rel})", ""]
    return out


def inspect_tts_data(config: Any, out_dir: str | Path) -> dict[str, Any]:
    """``dlhw data inspect tts``: load, clean, filter and split the clips as training would; plot the
    clips per speaker and the clip durations; return the counts (skipped clips by reason and speakers
    filtered out included). A folder filtered empty is reported with a warning, not refused."""
    from dlhw.families.tts.data import load_speech

    out = Path(out_dir)
    d = config.data
    splits = load_speech(d, config.seed, strict=False)
    clips = splits.all()
    counts = splits.clips_per_speaker
    filtered = {"below_min_clips": sum(n < d.min_clips_per_speaker for n in counts.values()),
                "above_max_clips": sum(n > d.max_clips_per_speaker for n in counts.values())}
    result: dict[str, Any] = {**splits.summary(), "speakers_filtered_out": filtered, "warnings": splits.warnings}
    paths = [plot_clips_per_speaker(counts, d.min_clips_per_speaker, d.max_clips_per_speaker,
                                    out / "clips_per_speaker.png")] if counts else []
    if not clips:
        return {**result, "plots": [str(p) for p in paths]}
    seconds = np.array([u.seconds for u in clips])
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.hist(seconds, bins=30, color="tab:blue")
    ax.set_xlabel("clip duration (s)")
    ax.set_ylabel("clips")
    ax.set_title(f"{len(clips)} clips kept, {seconds.sum() / 3600:.2f} h")
    paths.append(save_figure(fig, out / "durations.png"))
    chars = sorted({c for u in clips for c in u.text} - {" "})
    rate = np.array([len(u.text) / max(u.seconds, 1e-9) for u in clips])
    return {**result, "seconds_mean": round(float(seconds.mean()), 3),
            "seconds_max": round(float(seconds.max()), 3), "characters_per_second_mean": round(float(rate.mean()), 2),
            "characters": "".join(chars), "plots": [str(p) for p in paths]}
