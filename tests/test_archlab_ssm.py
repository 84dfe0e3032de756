"""archlab.ssm's fused scan: its polynomial exp against libm, and the scan against a float64 loop
with steps so large that exp(delta * A) underflows (the fast exp must clamp, not wrap)."""

import numpy as np
import torch

from archlab import ssm


def test_fast_exp_matches_libm():
    from numba import njit

    @njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = ssm._fast_exp(x[i])
        return out

    x = np.linspace(-80, 5, 200_001).astype(np.float32)
    ref = np.exp(x.astype(np.float64))
    got = apply(x).astype(np.float64)
    # relative error below 1e-6 where exp(x) matters (x >= -20, exp >= 2e-9); further out the
    # float32 product x*log2(e) itself is off by |x|*6e-8, harmless next to the state's scale
    keep = x >= -20
    rel = np.abs(got[keep] - ref[keep]) / ref[keep]
    assert rel.max() < 1e-6, f"max relative error {rel.max():.2e} at x={x[keep][rel.argmax()]}"
    assert np.abs(got[~keep] - ref[~keep]).max() < 1e-14
    assert np.all(np.isfinite(apply(np.array([-1e4, -200.0, 0.0], np.float32))))


def test_fused_scan_with_huge_steps_equals_a_float64_loop():
    g = torch.Generator().manual_seed(3)
    B, L, D, N = 2, 37, 5, 16
    u, Bm, C = torch.randn(B, L, D, generator=g), torch.randn(B, L, N, generator=g), torch.randn(B, L, N, generator=g)
    delta = torch.rand(B, L, D, generator=g) * 300                    # exp(delta * A) -> 0
    A = -torch.rand(D, N, generator=g) - 0.1
    h = torch.zeros(B, D, N, dtype=torch.float64)
    ys = []
    for t in range(L):                                                 # h_t = exp(Δ A) h + Δ B u
        d = delta[:, t].double()[..., None]                            # (B, D, 1)
        h = torch.exp(d * A.double()) * h + d * Bm[:, t, None].double() * u[:, t, :, None].double()
        ys.append((h * C[:, t, None].double()).sum(-1))                # (B, D)
    ref = torch.stack(ys, 1).float()                                   # (B, L, D)
    got = ssm.selective_scan_fused(u, delta, A, Bm, C)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
