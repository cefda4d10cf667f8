"""The test session's caches are its own, and cached assets are keyed by config and code."""

from __future__ import annotations

import os
from pathlib import Path

from dlhw.core import cache as cache_module
from dlhw.core.cache import asset_key, cache_dir
from tests.conftest import SESSION_CACHE


def test_every_cache_of_the_session_lives_in_its_temporary_directory():
    home_cache = Path.home() / ".cache"
    for name in ("DLHW_CACHE_DIR", "HF_HOME", "HF_DATASETS_CACHE", "TORCH_HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR"):
        path = Path(os.environ[name])
        assert SESSION_CACHE in path.parents and home_cache not in path.parents, name
    assert cache_dir() == SESSION_CACHE / "dlhw"
    from huggingface_hub import constants

    assert SESSION_CACHE in Path(constants.HF_HUB_CACHE).parents


def test_asset_keys_change_with_the_config_and_with_the_code():
    def build_a(): return 1  # noqa: E704

    def build_b(): return 2  # noqa: E704

    key = asset_key({"hidden": 64}, cache_module, build_a)
    assert key == asset_key({"hidden": 64}, cache_module, build_a)
    assert key != asset_key({"hidden": 32}, cache_module, build_a)
    assert key != asset_key({"hidden": 64}, cache_module, build_b)
