"""``dlhw download``: what each recipe's config reads, listed offline, and fetched through huggingface_hub,
datasets and torch.hub (monkeypatched here: no hub is reachable in the tests)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dlhw.core import download
from dlhw.core.download import Needed, assets_of, fetch
from dlhw.core.family import HubAsset
from dlhw.core.registry import RECIPES
from tests.conftest import run_cli


def _ids(needed: list[Needed]) -> list[tuple[str, str, str | None]]:
    return [(n.asset.kind, n.asset.repo_id, n.asset.config_name) for n in needed]


def test_the_full_presets_name_their_hub_models_and_datasets():
    assert _ids(assets_of(["chat-lora", "summarize-sft"])) == [
        ("model", "google/gemma-2-2b-it", None), ("dataset", "universitytehran/SlimOrca", None),
        ("model", "HuggingFaceTB/SmolLM2-360M", None), ("model", "meta-llama/Llama-3.2-1B", None),
        ("model", "roberta-large", None), ("dataset", "abisee/cnn_dailymail", "3.0.0")]
    assert _ids(assets_of(["ner"])) == [("model", "FacebookAI/xlm-roberta-base", None),
                                        ("dataset", "eriktks/conll2003", None),
                                        ("dataset", "AliFartout/PEYMA-ARMAN-Mixed", None)]
    caption = assets_of(["caption-rnn", "caption-transformer"])
    assert [n.recipes for n in caption] == [["caption-rnn", "caption-transformer"]] * 2  # each asset once
    assert caption[1].asset.kind == "url" and caption[1].asset.repo_id.endswith("efficientnet_b0_rwightman-7f5810bc.pth")


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_tiny_presets_read_nothing_from_the_hub(recipe):
    assert assets_of([recipe], "tiny") == []


def test_local_sources_and_folders_are_not_downloaded(tmp_path):
    folder = tmp_path / "my-base"
    folder.mkdir()
    needed = assets_of(["chat-lora"], overrides=(f"model.name={folder}", "data.source=local", f"data.path={tmp_path}"))
    assert needed == []


def test_dry_run_lists_ids_and_what_the_cache_holds_without_fetching(monkeypatch):
    monkeypatch.setattr(download, "fetch", lambda asset: pytest.fail(f"fetched {asset}"))
    code, out = run_cli("download", "chat-lora", "summarize-sft", "--dry-run")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["kind", "id", "revision", "in", "cache", "needed", "by"]
    assert lines[1].split()[:4] == ["model", "google/gemma-2-2b-it", "default", "not"]
    assert "dataset  abisee/cnn_dailymail (3.0.0)" in out and "summarize-sft: eval.bertscore_model" in out
    assert lines[-1] == "dry run: 6 models and datasets, fetched nothing"


def test_offline_lists_and_says_so_in_one_line():
    code, out = run_cli("download", "ner")  # the suite runs with HF_HUB_OFFLINE=1
    assert code == 0, out
    assert out.splitlines()[-1].startswith("offline (HF_HUB_OFFLINE=1): listed 3 models and datasets, fetched nothing")
    assert "FacebookAI/xlm-roberta-base" in out


def test_a_tiny_preset_has_nothing_to_download():
    code, out = run_cli("download", "ner", "--preset", "tiny")
    assert code == 0 and out.startswith("nothing to download: ner [tiny]")


def _file(name: str, size: int, commit: str = "c0ffee" * 6 + "abcd") -> SimpleNamespace:
    return SimpleNamespace(filename=name, file_size=size, commit_hash=commit, is_cached=False, will_download=True)


def test_a_model_is_fetched_at_the_listed_commit_without_other_frameworks_weights(monkeypatch):
    import huggingface_hub

    calls = []
    listing = [_file("config.json", 700), _file("model.safetensors", 1000), _file("pytorch_model.bin", 1000),
               _file("tokenizer.json", 300)]

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        kept = [f for f in listing if not any(__import__("fnmatch").fnmatch(f.filename, p)
                                              for p in kwargs["ignore_patterns"])]
        return kept if kwargs.get("dry_run") else "/cache/snapshots/" + listing[0].commit_hash

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    got = fetch(HubAsset("model", "FacebookAI/xlm-roberta-base", "model.name"))
    (first_id, dry), (second_id, real) = calls
    assert first_id == second_id == "FacebookAI/xlm-roberta-base"
    assert dry["dry_run"] is True and dry["repo_type"] == real["repo_type"] == "model" and dry["revision"] is None
    assert {"*.h5", "*.msgpack", "*.onnx", "*.gguf"} <= set(dry["ignore_patterns"])
    assert real["revision"] == listing[0].commit_hash  # the commit the listing saw, not a moving branch
    assert "*.bin" in real["ignore_patterns"]  # safetensors are there: no pickled copy
    assert (got.revision, got.files, got.bytes) == (listing[0].commit_hash, 3, 2000)


def test_a_model_without_safetensors_keeps_its_pickled_weights(monkeypatch):
    import huggingface_hub

    seen = []

    def snapshot_download(repo_id, **kwargs):
        seen.append(kwargs)
        return [_file("config.json", 10), _file("pytorch_model.bin", 90)] if kwargs.get("dry_run") else "/x"

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    got = fetch(HubAsset("model", "microsoft/speecht5_hifigan", "model.vocoder", revision="v1"))
    assert seen[0]["revision"] == "v1" and "*.bin" not in seen[1]["ignore_patterns"]
    assert (got.files, got.bytes) == (2, 100)


def test_a_dataset_is_prepared_for_offline_load_dataset(monkeypatch):
    import datasets

    prepared = []

    class Builder:
        base_path = "hf://datasets/abisee/cnn_dailymail@" + "1" * 40
        info = SimpleNamespace(download_size=100, dataset_size=300)
        cache_dir = "/cache/datasets/abisee___cnn_dailymail/3.0.0"

        def download_and_prepare(self):
            prepared.append(True)

    def load_dataset_builder(path, name=None, revision=None):
        assert (path, name, revision) == ("abisee/cnn_dailymail", "3.0.0", None)
        return Builder()

    monkeypatch.setattr(datasets, "load_dataset_builder", load_dataset_builder)
    got = fetch(HubAsset("dataset", "abisee/cnn_dailymail", "data.hf_dataset", config_name="3.0.0"))
    assert prepared == [True] and (got.revision, got.bytes) == ("1" * 40, 400)


def test_download_fetches_each_asset_and_prints_a_summary(monkeypatch):
    monkeypatch.setattr(download, "hub_offline", lambda: False)
    fetched = []

    def fake_fetch(asset):
        fetched.append(asset.repo_id)
        return download.Fetched("a1b2c3d4e5f6a7b8", 4, 5 * 2**20, "/cache")

    monkeypatch.setattr(download, "fetch", fake_fetch)
    code, out = run_cli("download", "ner")
    assert code == 0, out
    assert fetched == ["FacebookAI/xlm-roberta-base", "eriktks/conll2003", "AliFartout/PEYMA-ARMAN-Mixed"]
    row = next(line for line in out.splitlines() if line.startswith("model"))
    assert row.split()[:6] == ["model", "FacebookAI/xlm-roberta-base", "a1b2c3d4e5f6", "4", "files,", "5.0"]
    assert out.splitlines()[-1] == "fetched 3 into the caches; train offline with HF_HUB_OFFLINE=1"


def test_a_failed_asset_is_reported_after_the_others_are_fetched(monkeypatch):
    monkeypatch.setattr(download, "hub_offline", lambda: False)

    def fake_fetch(asset):
        if asset.kind == "model":
            raise OSError("gated repo")
        return download.Fetched(None, None, None, "/cache")

    monkeypatch.setattr(download, "fetch", fake_fetch)
    code, out = run_cli("download", "ner")
    assert code == 1
    assert "error: 1 of 3 could not be fetched: FacebookAI/xlm-roberta-base: OSError: gated repo" in out
