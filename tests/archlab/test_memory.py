"""archlab.measure.peak_memory counts numpy's arrays as well as torch's allocator (issue 13).

The fused selective scan computes its output as a numpy array; counting torch's allocator alone
reported it as 0.0 MiB at every length.
"""

import numpy as np
import torch

from archlab.measure import memory_peaks, peak_memory
from archref import ssm

MiB = 2**20


def _numpy_array_of(n_bytes):
    a = np.ones(n_bytes // 8)           # float64
    return float(a[0])


def test_a_numpy_allocation_is_counted():
    result, peak = peak_memory(lambda: _numpy_array_of(32 * MiB))
    assert result == 1.0
    assert 32 * MiB <= peak <= 33 * MiB, f"peak {peak / MiB:.2f} MiB"


def test_the_two_parts_are_reported_apart():
    def both():
        t = torch.ones(16 * MiB // 4)   # 16 MiB through torch's allocator
        a = np.ones(8 * MiB // 8)       # 8 MiB through numpy
        return float(t[0]) + float(a[0])

    result, peaks = memory_peaks(both)
    assert result == 2.0
    assert 16 * MiB <= peaks["torch"] <= 17 * MiB
    assert 8 * MiB <= peaks["numpy"] <= 9 * MiB
    _, total = peak_memory(both)
    assert 24 * MiB <= total <= 26 * MiB, "peak_memory = torch's peak + numpy's peak"


def test_the_fused_scans_numpy_output_is_not_free():
    g = torch.Generator().manual_seed(0)
    Bsz, L, D, N = 1, 512, 64, 8
    u, delta = torch.randn(Bsz, L, D, generator=g), torch.rand(Bsz, L, D, generator=g) * 0.1
    A = -torch.rand(D, N, generator=g) - 0.5
    Bm, C = torch.randn(Bsz, L, N, generator=g), torch.randn(Bsz, L, N, generator=g)
    ssm.selective_scan_fused(u, delta, A, Bm, C)          # numba compiles outside the measurement
    y, peaks = memory_peaks(lambda: ssm.selective_scan_fused(u, delta, A, Bm, C))
    assert peaks["numpy"] >= y.numel() * y.element_size(), peaks   # the (B, L, D) output at least


def test_tracing_started_by_someone_else_is_left_running():
    import tracemalloc
    tracemalloc.start()
    try:
        _, peak = peak_memory(lambda: _numpy_array_of(4 * MiB))
        assert tracemalloc.is_tracing()
        assert 4 * MiB <= peak <= 5 * MiB
    finally:
        tracemalloc.stop()
