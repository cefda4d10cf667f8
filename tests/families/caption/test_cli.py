"""`dlhw caption` on a quickly trained tiny run: bad inputs, kill and rerun, shards (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from dlhw.families.caption.scenes import make_scenes
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("quick") / "run"
    code, out = run_cli("train", "caption-rnn", "--preset", "tiny", "--output-dir", str(run),
                        "--set", "data.num_scenes=200", "--set", "train.max_steps=10")
    assert code == 0, out
    return run


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for scene in make_scenes(12, seed=9):
        scene.render(96).save(folder / f"{scene.image_id}.png")
    return folder


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_bad_inputs_become_error_records_and_exit_1(quick_run, images, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in sorted(images.iterdir())[:5]:
        (folder / p.name).write_bytes(p.read_bytes())
    jpeg = folder.parent / "x.jpg"
    from PIL import Image

    Image.open(images / "scene_00000.png").convert("RGB").save(jpeg)
    data = jpeg.read_bytes()
    (folder / "corrupt.jpg").write_bytes(data[: len(data) // 2])  # a JPEG cut in half
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("this is not a picture")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    out = tmp_path / "out.jsonl"
    proc = subprocess.run([sys.executable, "-m", "dlhw", "caption", str(folder), "--model", str(quick_run),
                           "--out", str(out), "--batch-size", "4"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    records = _records(out)
    errors = {os.path.basename(r["path"]): r["error"] for r in records if r["status"] == "error"}
    assert set(errors) == {"corrupt.jpg", "empty.jpg", "text.png"}
    assert errors["empty.jpg"] == "ValueError: empty file"
    assert "cannot identify image file" in errors["text.png"]
    assert sum(1 for r in records if r["status"] == "ok" and r["caption"]) == 5
    assert "5 images done, 3 failed" in proc.stderr


def test_a_killed_job_rerun_has_no_duplicates_and_no_gaps(quick_run, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for scene in make_scenes(60, seed=4):
        scene.render(96).save(folder / f"{scene.image_id}.png")
    out = tmp_path / "out.csv"
    argv = [sys.executable, "-m", "dlhw", "caption", str(folder), "--model", str(quick_run), "--out", str(out),
            "--batch-size", "4", "--num-workers", "0"]
    killed = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "DLHW_FAULT": "kill-after-batch:5"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    import csv

    partial = list(csv.DictReader(out.open()))
    assert len(partial) == 20  # five batches of four, written and flushed before the kill
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    rows = list(csv.DictReader(out.open()))
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) == 60
    assert paths[:20] == [r["path"] for r in partial]
    assert all(r["status"] == "ok" and r["result"] for r in rows)


def test_shards_cover_every_image_once(quick_run, images, tmp_path):
    outs = []
    for i in range(3):
        out = tmp_path / f"shard{i}.jsonl"
        code, log = run_cli("caption", str(images), "--model", str(quick_run), "--out", str(out),
                            "--shard", f"{i}/3", "--num-workers", "0")
        assert code == 0, log
        outs.append({r["path"] for r in _records(out)})
    assert sum(map(len, outs)) == 12 and set().union(*outs) == {str(p) for p in images.iterdir()}
    code, log = run_cli("caption", str(images), "--model", str(quick_run), "--out", str(tmp_path / "x.jsonl"),
                        "--shard", "3/3")
    assert code == 2 and "expected i/n" in log


def test_hostile_names_killed_twice_and_rerun_give_one_record_per_image(quick_run, tmp_path):
    folder = tmp_path / "hostile"
    folder.mkdir()
    scenes = make_scenes(202, seed=5)
    for scene in scenes[:200]:
        scene.render(64).save(folder / f"{scene.image_id}.png")
    raw = os.fsencode(folder)
    scenes[200].render(64).save(os.fsdecode(raw + b"/bad\xff\xfename.png"))  # not UTF-8
    scenes[201].render(64).save(folder / "line\u2028break.png")  # a separator str.splitlines() splits at
    out = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "dlhw", "caption", str(folder), "--model", str(quick_run), "--out", str(out),
            "--batch-size", "16", "--num-workers", "0"]
    for batch in (3, 5):  # killed twice: after 3 batches, then after 5 more
        killed = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "DLHW_FAULT": f"kill-after-batch:{batch}"})
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert len(out.read_text(encoding="utf-8").split("\n")) - 1 == 16 * 8
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "74 images done, 0 failed, 128 skipped (already in the output) of 202" in done.stderr
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)  # nothing left: nothing redone
    assert "0 images done, 0 failed, 202 skipped" in again.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == 202 and all(r["status"] == "ok" and r["caption"] for r in records)
    assert f"{folder}/bad\\xff\\xfename.png" in paths and f"{folder}/line\u2028break.png" in paths
    assert len(out.read_text(encoding="utf-8").splitlines()) == 202  # the separator is escaped in the file


def test_a_second_job_on_one_output_exits_2_naming_the_first_and_a_new_job_takes_over_after_kill_9(
        quick_run, images, tmp_path):
    out = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "dlhw", "caption", str(images), "--model", str(quick_run), "--out", str(out),
            "--batch-size", "1", "--num-workers", "0"]
    # the first job stops (SIGSTOP, its lock held) right after its first batch is written
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "DLHW_FAULT": "stop-after-batch:1"})
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), status
        assert len(out.read_text(encoding="utf-8").split("\n")) - 1 == 1
        second = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr[-2000:]
        assert second.stderr.strip().splitlines()[-1].startswith(
            f"error: --out {out} is being written by process {first.pid} (dlhw caption")
    finally:
        first.kill()  # kill -9
        first.wait()
    third = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]
    paths = [json.loads(line)["path"] for line in out.read_text(encoding="utf-8").split("\n") if line]
    assert len(paths) == len(set(paths)) == 12
