"""`--engine ray`: the local engine's records from a Ray Data actor pool; an actor killed mid-job, a
driver killed and rerun; the usage errors (Ray options without it, Ray not installed).

The Ray tests share one local Ray instance (`ray.init(num_cpus=2)`, as `--engine ray` itself starts
one); the job that kills its driver starts its own in a subprocess, as a user's `dlhw` would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import pytest

from dlhw.batch.options import Engine
from dlhw.batch.runner import predict_into
from dlhw.cli import cli
from dlhw.core.inputs import read_inputs
from dlhw.core.registry import FAMILIES
from dlhw.errors import ConfigError
from tests.conftest import run_cli

VERBS = sorted(f.batch_verb for f in FAMILIES.values() if f.batch_verb)


# ---- the options, without Ray running -------------------------------------------------------------


@pytest.mark.parametrize("verb", VERBS)
def test_every_batch_verb_takes_the_engine_options(verb):
    options = {opt: p for p in cli.commands[verb].params if isinstance(p, click.Option) for opt in p.opts}
    engine = options["--engine"]
    assert isinstance(engine.type, click.Choice) and list(engine.type.choices) == ["local", "ray"]
    assert engine.default == "local"
    assert {"--ray-address", "--workers", "--gpus-per-worker"} <= set(options)
    assert all(options[o].default is None for o in ("--ray-address", "--workers", "--gpus-per-worker"))


def test_ray_options_without_engine_ray_are_a_usage_error(tmp_path):
    code, text = run_cli("caption", str(tmp_path), "--model", str(tmp_path), "--workers", "2",
                         "--out", str(tmp_path / "a.jsonl"))
    assert code == 2 and "--workers is an option of the Ray engine: add --engine ray" in text
    code, text = run_cli("ner", "--model", str(tmp_path), "--text", "Ali flew to Paris .", "--engine", "ray")
    assert code == 2 and "--engine ray runs batch jobs; --text (one sentence) runs here" in text
    assert not (tmp_path / "a.jsonl").exists()


def test_engine_ray_without_ray_installed_is_one_line_naming_the_install(tmp_path):
    """Without the extra (`import ray` fails): exit 2 before anything loads, one line on stderr."""
    (tmp_path / "a.png").write_bytes(b"")
    no_ray = "import sys; sys.modules['ray'] = None; from dlhw.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", no_ray, "caption", str(tmp_path), "--model", str(tmp_path),
                           "--engine", "ray", "--workers", "2", "--out", str(tmp_path / "a.jsonl")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: --engine ray needs Ray, an optional extra: pip install 'dlhw[ray]'"]
    assert not (tmp_path / "a.jsonl").exists()


# ---- toy predictors on a local Ray instance ------------------------------------------------------


class _Upper:
    """A toy predictor: a load failure on "boom", a whole failing batch when it holds "explode"."""

    result_key = "upper"

    def load(self, key: str, raw: object) -> str:
        if raw == "boom":
            raise ValueError("cannot load boom")
        return str(raw)

    def predict(self, batch: list[str]) -> list[dict[str, object]]:
        if "explode" in batch:
            raise RuntimeError("the batch exploded")
        return [{"upper": text.upper()} for text in batch]

    def throughput(self, seconds: float) -> str | None:
        return None


class _Restarts(_Upper):
    """Also says whether the actor that computed a record is a restarted one."""

    def predict(self, batch: list[str]) -> list[dict[str, object]]:
        import ray

        restarted = ray.get_runtime_context().was_current_actor_reconstructed
        return [{**r, "restarted": restarted} for r in super().predict(batch)]


def _broken() -> _Upper:
    raise ConfigError("--model nowhere: not a run directory")


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the toy predictors travel by value
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def _items(tmp_path: Path) -> dict[str, object]:
    """40 inputs: two unreadable JSON lines (error items), a load failure, a batch that fails whole."""
    lines = [json.dumps(f"t{i}") for i in range(40)]
    lines[5], lines[17], lines[22], lines[33] = "{bad", '"boom"', "{worse", '"explode"'
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {item.key: item for item in read_inputs(source)}


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_ray_records_equal_the_local_engine_s(ray_cluster, tmp_path, suffix):
    items = _items(tmp_path)
    local, remote = tmp_path / f"local{suffix}", tmp_path / f"ray{suffix}"
    expected, _ = predict_into(local, _Upper, items, 4)
    summary, lines = predict_into(remote, _Upper, items, 4, engine=Engine("ray", workers=2))
    assert remote.read_bytes() == local.read_bytes()  # same records, same order, same error reasons
    assert (summary.succeeded, summary.failed, summary.exit_code) == (expected.succeeded, expected.failed, 1) == (33, 7, 1)
    assert lines == [summary.line("inputs")]
    text = remote.read_text(encoding="utf-8")
    assert "RuntimeError: the batch exploded" in text and "ValueError: cannot load boom" in text


@pytest.mark.slow
def test_an_actor_killed_mid_job_is_restarted_and_nothing_is_lost_or_doubled(ray_cluster, tmp_path, monkeypatch):
    items = _items(tmp_path)
    local = tmp_path / "local.jsonl"
    predict_into(local, _Upper, items, 4)
    monkeypatch.setenv("DLHW_FAULT", "kill-actor-at-batch:3")  # the actor computing batch 3 dies before returning it
    out = tmp_path / "ray.jsonl"
    summary, _ = predict_into(out, _Restarts, items, 4, engine=Engine("ray", workers=2))
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == 40 and set(paths) == set(items)  # one record per input
    assert summary.succeeded + summary.failed == 40 and summary.skipped == 0
    batch_3 = [r for r in records[8:12] if r["status"] == "ok"]
    assert batch_3 and all(r["restarted"] for r in batch_3)  # computed again, by the restarted actor
    plain = [{k: v for k, v in r.items() if k != "restarted"} for r in records]
    assert plain == [json.loads(line) for line in local.read_text(encoding="utf-8").splitlines()]  # and in order


@pytest.mark.slow
def test_a_model_that_does_not_open_is_the_local_engine_s_error_and_leaves_no_file(ray_cluster, tmp_path):
    out = tmp_path / "a.jsonl"
    with pytest.raises(ConfigError, match="--model nowhere: not a run directory"):
        predict_into(out, _broken, _items(tmp_path), 4, engine=Engine("ray", workers=1))
    assert not out.exists()


# ---- `dlhw caption --engine ray` on a trained tiny run --------------------------------------------


@pytest.fixture(scope="module")
def mixed_images(tmp_path_factory):
    """Held-out-style scenes (a seed training never drew) with unreadable files among them."""
    from PIL import Image

    from dlhw.families.caption.scenes import make_scenes

    folder = tmp_path_factory.mktemp("mixed")
    for scene in make_scenes(22, seed=123):
        scene.render(96).save(folder / f"{scene.image_id}.png")
    jpeg = folder.parent / "whole.jpg"
    Image.open(folder / "scene_00000.png").convert("RGB").save(jpeg)
    (folder / "corrupt.jpg").write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])  # a JPEG cut in half
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "sub").mkdir()
    (folder / "sub" / "text.png").write_text("this is not a picture")
    return folder


@pytest.fixture(scope="module")
def local_captions(trained_runs, mixed_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "b.jsonl"
    code, log = run_cli("caption", str(mixed_images), "--model", str(trained_runs["rnn"]), "--engine", "local",
                        "--batch-size", "4", "--num-workers", "0", "--out", str(out))
    assert code == 1, log  # the three unreadable files
    return out


def _caption_ray(run: Path, images: Path, out: Path, *extra: str) -> tuple[int, str]:
    return run_cli("caption", str(images), "--model", str(run), "--engine", "ray", "--workers", "2",
                   "--batch-size", "4", "--out", str(out), *extra)


@pytest.mark.slow
def test_caption_on_ray_writes_the_local_engine_s_records(ray_cluster, trained_runs, mixed_images, local_captions,
                                                          tmp_path):
    out = tmp_path / "a.jsonl"
    code, log = _caption_ray(trained_runs["rnn"], mixed_images, out)
    assert code == 1, log
    assert out.read_text() == local_captions.read_text()  # same paths, captions and error records, in order
    records = [json.loads(line) for line in out.read_text().splitlines()]
    errors = {Path(r["path"]).name for r in records if r["status"] == "error"}
    assert errors == {"corrupt.jpg", "empty.jpg", "text.png"}
    assert sum(r["status"] == "ok" and bool(r["caption"]) for r in records) == 22
    assert "22 images done, 3 failed, 0 skipped (already in the output) of 25" in log


@pytest.mark.slow
def test_caption_on_ray_with_an_actor_killed_loses_and_doubles_nothing(ray_cluster, trained_runs, mixed_images,
                                                                       local_captions, tmp_path, monkeypatch):
    monkeypatch.setenv("DLHW_FAULT", "kill-actor-at-batch:2")
    out = tmp_path / "a.jsonl"
    code, log = _caption_ray(trained_runs["rnn"], mixed_images, out)
    assert code == 1, log
    assert out.read_text() == local_captions.read_text()  # one record per input: 25 lines, none twice


@pytest.mark.slow
def test_caption_on_ray_killed_as_a_whole_and_rerun_has_no_gaps_and_no_duplicates(ray_cluster, trained_runs,
                                                                                   mixed_images, local_captions,
                                                                                   tmp_path):
    out = tmp_path / "a.jsonl"
    argv = [sys.executable, "-m", "dlhw", "caption", str(mixed_images), "--model", str(trained_runs["rnn"]),
            "--engine", "ray", "--workers", "2", "--batch-size", "4", "--out", str(out)]
    log_file = tmp_path / "killed.log"
    with log_file.open("w") as log_handle:  # a file, not a pipe: Ray's processes may outlive the driver
        driver = subprocess.Popen(argv, stdout=log_handle, stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "DLHW_FAULT": "kill-after-batch:2"})
        try:
            code = driver.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):  # the Ray instance it started dies with it
                os.killpg(driver.pid, signal.SIGKILL)
    assert code == -signal.SIGKILL, log_file.read_text()[-3000:]
    expected = local_captions.read_text().splitlines()
    assert out.read_text().splitlines() == expected[:8]  # two batches of four, written before the kill
    code, log = _caption_ray(trained_runs["rnn"], mixed_images, out)
    assert code == 1, log
    assert "8 skipped (already in the output) of 25" in log
    assert out.read_text().splitlines() == expected  # the rest, once each, in order
