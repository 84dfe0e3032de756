"""The instructor-only references (archref): the scans equal their sequential twin, the block equals
the Hugging Face mixer, and archref.ssm's fused scan: its polynomial exp against libm, and the scan against a
float64 loop with steps so large that exp(delta * A) underflows (the fast exp must clamp, not wrap)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archref import mamba as amamba
from archref import ssm


def _inputs(seed, b, length, d, n, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, length, d, generator=g), F.softplus(torch.randn(b, length, d, generator=g)) * scale,
            -torch.rand(d, n, generator=g) * 3 - 0.1, torch.randn(b, length, n, generator=g),
            torch.randn(b, length, n, generator=g), torch.randn(d, generator=g))


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


@pytest.mark.parametrize("shape", [(1, 1, 3, 4), (2, 37, 8, 16), (3, 130, 5, 7)])
@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_archref_scans_equal_the_sequential_twin(shape, scale):
    args = _inputs(sum(shape), *shape, scale=scale)
    ref = ssm.selective_scan_sequential(*args)
    # float32: parallel within 1e-4 relative, the fused numba scan within 1e-5 of the output scale
    tol = 1e-5 * float(ref.abs().max())
    torch.testing.assert_close(ssm.selective_scan_parallel(*args), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ssm.selective_scan_fused(*args), ref, rtol=1e-5, atol=tol)
    torch.testing.assert_close(ssm.selective_scan_fused(*args[:5]), ssm.selective_scan_sequential(*args[:5]),
                               rtol=1e-5, atol=tol)


def test_archref_mamba_equals_hugging_face_mixer_forward_and_step():
    from transformers import MambaConfig
    from transformers.models.mamba.modeling_mamba import MambaMixer
    cfg = MambaConfig(hidden_size=24, state_size=8, conv_kernel=4, expand=2, time_step_rank=math.ceil(24 / 16),
                      use_bias=False, use_conv_bias=True)
    torch.manual_seed(0)
    mixer = MambaMixer(cfg, 0).eval()
    x = torch.randn(2, 17, 24)
    with torch.no_grad():
        ref = mixer(x)
        for scan in ("sequential", "parallel", "fused"):
            blk = amamba.Mamba(24, d_state=8, d_conv=4, expand=2, scan=scan).eval()
            blk.load_state_dict(mixer.state_dict())
            torch.testing.assert_close(blk(x), ref, rtol=1e-4, atol=1e-5)
        state, outs = None, []
        for t in range(x.shape[1]):
            y, state = blk.step(x[:, t:t + 1], state)
            outs.append(y)
        torch.testing.assert_close(torch.cat(outs, 1), ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="scan must be one of"):
        amamba.Mamba(16, scan="fast")
