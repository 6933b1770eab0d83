"""GPU kernel time under torch.profiler (bench.backends.transformers.profile)."""

import pytest
import torch

from bench.backends.transformers.profile import gpu_busy_frac, kernel_seconds


def test_no_kernel_time_without_a_gpu_kernel():
    if torch.cuda.is_available():  # a GPU profile that saw no kernel is an error, not an idle GPU
        with pytest.raises(RuntimeError, match="no GPU kernels"):
            kernel_seconds(lambda: torch.ones(64) * 2, top=3)
    else:
        total, top = kernel_seconds(lambda: torch.ones(64) * 2, top=3)
        assert total == 0.0 and top == []
    assert gpu_busy_frac(0.5, 2.0) == 0.25 and gpu_busy_frac(1.0, 0.0) is None


@pytest.mark.gpu
def test_kernel_time_of_a_matmul_is_positive_and_under_its_wall_time():
    a = torch.randn(2048, 2048, device="cuda")
    total, top = kernel_seconds(lambda: a @ a, top=2)
    assert total > 0 and top and top[0].calls >= 1
