"""The fault matrix: every long command SIGKILLed at deterministic points (``DLHW_FAULT``), then rerun.

For each command and kill point the test asserts what a user relies on after a crash:

* nothing lost: the rerun ends with every input's record (batch verbs), every training step's
  loss, the artifact complete;
* nothing doubled: one record per input, one metrics record per step;
* no partial artifact that loads: a killed training has no ``model/``, a killed export or prune
  leaves the previous export (or nothing) at the final name, never a half-made one;
* no leftovers: after the rerun no lock file, temporary file, ``.partial-*`` or ``.old-*`` folder
  remains.

The batch verbs' records after two kills and a rerun equal those of an uninterrupted job.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _dlhw(*args: str, fault: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("DLHW_FAULT", None)
    if fault:
        env["DLHW_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "dlhw", *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=cwd)


def _killed(*args: str, fault: str) -> None:
    proc = _dlhw(*args, fault=fault)
    assert proc.returncode == -signal.SIGKILL, f"{fault}: {proc.returncode}\n{proc.stderr[-2000:]}"


def _leftovers(*roots: Path) -> list[str]:
    """Lock files, temporaries, partial and old folders under ``roots``."""
    found = []
    for root in roots:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            name = path.name
            if name.startswith(".") and (name.endswith((".lock", ".tmp")) or ".partial" in name or ".old-" in name):
                found.append(str(path))
        parent = root.parent  # a run's or an output's lock lives beside it
        found += [str(p) for p in parent.glob(f".{root.name}.lock")]
    return sorted(set(found))


def _records(path: Path) -> dict[str, dict]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]
    keys = [r["path"] for r in records]
    assert len(keys) == len(set(keys)), "a record was written twice"
    return {r["path"]: r for r in records}


# --- batch verbs -------------------------------------------------------------------------------------

def _caption_inputs(folder: Path) -> list[str]:
    from dlhw.families.caption.scenes import make_scenes

    folder.mkdir()
    for scene in make_scenes(22, seed=11):
        scene.render(64).save(folder / f"{scene.image_id}.png")
    return [str(folder)]


def _ner_inputs(folder: Path) -> list[str]:
    folder.mkdir()
    (folder / "a.txt").write_text("\n".join(f"Person {i} Lewis met Nina Young in Oslo on {i % 28 + 1} May ."
                                            for i in range(14)) + "\n", encoding="utf-8")
    (folder / "b.txt").write_text("Ali went to Paris\u2028with Sara\n\nHelen Adams sold the Westgate in Lima\n",
                                  encoding="utf-8")  # a separator inside a line, an empty line (error record)
    return [str(folder)]


def _prompts(folder: Path) -> list[str]:
    folder.mkdir()
    (folder / "p.txt").write_text("\n".join(["سلام", "حالت چطور است؟", "عدد ۸۸ را با حروف بنویس.",
                                             "پایتخت ایران کجاست؟", "یک جمله درباره باران بنویس."] * 4) + "\n",
                                  encoding="utf-8")
    return ["--prompts", str(folder / "p.txt")]


def _documents(folder: Path) -> list[str]:
    from dlhw.families.summarization.summary_tasks import make_articles

    folder.mkdir()
    for i, article in enumerate(make_articles(10, seed=7)):
        (folder / f"d{i:02d}.txt").write_text(article.document, encoding="utf-8")
    return [str(folder)]


def _utterances(folder: Path) -> list[str]:
    folder.mkdir()
    (folder / "s.txt").write_text("\n".join(f"جمله شماره {i}" for i in range(1, 9)) + "\n", encoding="utf-8")
    sub = folder / "sub"
    sub.mkdir()
    (sub / "s.txt").write_text("یک\nدو\n", encoding="utf-8")  # the same file name in another folder
    return [str(folder)]


# verb -> (run fixture name and key, input maker, extra options, the kill points: one per killed run)
BATCH_VERBS: dict[str, tuple[tuple[str, str | None], Callable[[Path], list[str]], list[str], tuple[int, ...]]] = {
    "caption": (("trained_runs", "rnn"), _caption_inputs, ["--batch-size", "4", "--num-workers", "0"], (1, 2)),
    "ner": (("ner_run", None), _ner_inputs, ["--batch-size", "4"], (1, 2)),
    "chat": (("chat_runs", "lora"), _prompts, ["--batch-size", "1", "--max-new-tokens", "6", "--device", "cpu"],
             (1, 1)),  # batches of 8 prompts (a length window of one-prompt batches)
    "summarize": (("summarization_runs", "sft"), _documents, ["--batch-size", "1"], (1,)),
    "tts": (("tts_run", None), _utterances, ["--batch-size", "2"], (1, 2)),
}


@pytest.mark.parametrize("verb", list(BATCH_VERBS))
def test_a_batch_verb_killed_twice_then_rerun_loses_and_doubles_nothing(verb: str, request: pytest.FixtureRequest,
                                                                       tmp_path: Path) -> None:
    (fixture, key), make_inputs, options, points = BATCH_VERBS[verb]
    runs = request.getfixturevalue(fixture)
    run = runs[key] if key is not None else runs
    inputs = make_inputs(tmp_path / "in")

    def command(out: Path) -> list[str]:
        model = [str(run)] if verb == "chat" else ["--model", str(run)]
        return [verb, *model, *inputs, "--out", str(out), *options]

    straight_out = tmp_path / "straight" / "out.jsonl"
    straight = _dlhw(*command(straight_out))
    assert straight.returncode in (0, 1), straight.stderr[-2000:]
    expected = _records(straight_out)

    out = tmp_path / "killed" / "out.jsonl"
    for point in points:
        _killed(*command(out), fault=f"kill-after-batch:{point}")
        assert 0 < len(_records(out)) < len(expected)  # some written, none twice
    done = _dlhw(*command(out))
    assert done.returncode == straight.returncode, done.stderr[-2000:]
    got = _records(out)
    assert sorted(got) == sorted(expected)  # nothing lost
    for path, record in expected.items():  # the same results as the uninterrupted job
        record = {k: v for k, v in record.items() if k != "wav"}  # WAVs live in their own folders
        assert {k: v for k, v in got[path].items() if k != "wav"} == record, path
    if verb == "tts":
        wavs = sorted(Path(r["wav"]).name for r in got.values() if r["status"] == "ok")
        assert len(wavs) == len(set(wavs)) == 10  # two files named s.txt: ten distinct WAVs
        assert sorted(p.name for p in out.parent.glob("*.wav")) == wavs
    assert _leftovers(out.parent, tmp_path / "in") == []


# --- training, evaluation, export, prune -------------------------------------------------------------

TRAIN = ["train", "caption-rnn", "--preset", "tiny", "--set", "data.num_scenes=200", "--set", "train.max_steps=16",
         "--set", "train.eval_strategy=steps", "--set", "train.eval_steps=5", "--set", "train.logging_steps=1",
         "--set", "train.early_stopping_patience=0", "--set", "train.save_total_limit=5"]


def test_training_killed_twice_then_resumed_loses_and_doubles_no_step(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _killed(*TRAIN, "--output-dir", str(run), fault="kill-after-step:7")  # checkpoint 5 complete
    assert not (run / "model").exists()
    evaluate = _dlhw("evaluate", str(run))  # a killed training is no run that loads
    assert evaluate.returncode != 0 and "Traceback" not in evaluate.stderr
    _killed("train", "caption-rnn", "--output-dir", str(run), "--resume", fault="kill-after-step:12")
    assert not (run / "model").exists()
    done = _dlhw("train", "caption-rnn", "--output-dir", str(run), "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().split("\n")
             if line and "loss" in json.loads(line)]
    assert steps == list(range(1, 17))  # every step once
    assert (run / "model" / "model.safetensors").is_file()
    assert _leftovers(run) == []


def test_evaluation_killed_before_its_rename_keeps_the_old_eval_json(trained_runs: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_runs["rnn"], run)
    before = (run / "eval.json").read_text(encoding="utf-8")
    _killed("evaluate", str(run), fault="kill-before-rename:eval.json")
    assert (run / "eval.json").read_text(encoding="utf-8") == before  # whole, the old one
    done = _dlhw("evaluate", str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((run / "eval.json").read_text(encoding="utf-8"))["metrics"]
    assert _leftovers(run) == []


EXPORT_POINTS = ("kill-at:export-meta-written", "kill-at:export-swap-old-moved")
"""Two of the export's ten points; tests/backends/test_export_atomic.py kills it at every one."""


def test_an_export_killed_anywhere_keeps_the_previous_export_loading(ner_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(ner_run, run, ignore=shutil.ignore_patterns("export"))
    first = _dlhw("export", str(run), "--onnx")
    assert first.returncode == 0, first.stderr[-2000:]
    text = tmp_path / "t.txt"
    text.write_text("Helen Adams sold the Westgate in Lima\n", encoding="utf-8")
    reference = None
    for n, fault in enumerate(EXPORT_POINTS):
        _killed("export", str(run), "--onnx", fault=fault)
        out = tmp_path / f"o{n}.jsonl"
        tagged = _dlhw("ner", str(text), "--model", str(run), "--backend", "onnxruntime", "--out", str(out))
        assert tagged.returncode == 0, f"after {fault}: {tagged.stderr[-2000:]}"
        [record] = _records(out).values()
        reference = reference or record
        assert record == reference, fault  # the previous export, whole
    done = _dlhw("export", str(run), "--onnx")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _leftovers(run) == []


PRUNE_POINTS = ("kill-at:prune-pruned", "kill-at:prune-saved")


def test_a_prune_killed_anywhere_leaves_no_run_and_reruns(ner_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "pruned"
    for fault in PRUNE_POINTS:
        _killed("prune", str(ner_run), "--amount", "0.3", "--output-dir", str(target), fault=fault)
        assert not target.exists()  # nothing that looks like a run
    done = _dlhw("prune", str(ner_run), "--amount", "0.3", "--output-dir", str(target))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (target / "sparsity.json").is_file() and (target / "report.md").is_file()
    assert _leftovers(target) == []
