"""The `gpu` marker skips by itself without CUDA (tests/conftest.py), with no skipif needed."""

import pytest
import torch


@pytest.mark.gpu
def test_cuda_bf16_matmul_runs():
    a = torch.randn(64, 64, device="cuda", dtype=torch.bfloat16)
    assert (a @ a).isfinite().all()


def test_gpu_tests_are_skipped_here_only_without_cuda(request):
    items = [i for i in request.session.items if i.get_closest_marker("gpu")]
    assert items, "this module has a gpu test"
    skipped = [i for i in items if any(m.name == "skip" for m in i.iter_markers())]
    assert (len(skipped) == len(items)) == (not torch.cuda.is_available())
