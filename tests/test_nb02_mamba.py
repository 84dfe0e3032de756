"""Notebook 02 beyond its graded cells: clear errors on bad input, the Δ widget responds, and
archlab's reference scans and Mamba block (used by the reading's example and the benchmark)."""

import math

import pytest
import torch
import torch.nn.functional as F

from archlab import mamba as amamba
from archlab import ssm

NB = "02_mamba"


@pytest.fixture
def ns(executed):
    return dict(executed(NB)[1])


def _inputs(seed, b, l, d, n, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, l, d, generator=g), F.softplus(torch.randn(b, l, d, generator=g)) * scale,
            -torch.rand(d, n, generator=g) * 3 - 0.1, torch.randn(b, l, n, generator=g),
            torch.randn(b, l, n, generator=g), torch.randn(d, generator=g))


def test_scans_reject_wrong_shapes_naming_the_expected_shape(ns):
    u, dl, A, B, C, D = _inputs(0, 2, 5, 3, 4)
    for name in ("selective_scan", "selective_scan_parallel", "selective_scan_fused"):
        with pytest.raises(ValueError, match=r"delta must have shape \(B, L, D\) = \(2, 5, 3\)"):
            ns[name](u, dl[:, :4], A, B, C, D)
        with pytest.raises(ValueError, match=r"A must have shape \(D, N\)"):
            ns[name](u, dl, A.T, B, C, D)
        with pytest.raises(ValueError, match=r"C must have shape \(B, L, N\) = \(2, 5, 4\)"):
            ns[name](u, dl, A, B, C[..., :3], D)
    with pytest.raises(ValueError, match=r"B must have shape"):
        ns["discretize"](A, dl, B[..., :2])


def test_block_rejects_wrong_shapes_and_unknown_scan(ns):
    blk = ns["MambaBlock"](16, d_state=4)
    with pytest.raises(ValueError, match=r"x must have shape \(B, L, 16\)"):
        blk(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match=r"x_t"):
        blk.step(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="scan must be one of"):
        ns["MambaBlock"](16, scan="fast")


def test_delta_widget_redraws_when_a_slider_moves(ns):
    w = ns["delta_explorer"]
    log_a, sel, bias = w.children[:3]
    before = w.result["decay"].clone()
    assert before.shape == (3, 51) and bool((before[:, 0] == 1).all())
    # with positive selectivity a larger input gets a larger Δ and forgets faster
    assert bool((before[2, 1:] < before[0, 1:]).all())
    sel.value = 0.0
    flat = w.result["decay"]
    assert torch.allclose(flat[0], flat[2]), "no selectivity: every input decays alike"
    log_a.value = 1.0
    assert bool((w.result["decay"][:, 10] < flat[:, 10]).all()), "a larger |A| forgets faster"


@pytest.mark.parametrize("shape", [(1, 1, 3, 4), (2, 37, 8, 16), (3, 130, 5, 7)])
@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_archlab_scans_equal_the_sequential_twin(shape, scale):
    args = _inputs(sum(shape), *shape, scale=scale)
    ref = ssm.selective_scan_sequential(*args)
    # float32: parallel within 1e-4 relative, the fused numba scan within 1e-5 of the output scale
    tol = 1e-5 * float(ref.abs().max())
    torch.testing.assert_close(ssm.selective_scan_parallel(*args), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ssm.selective_scan_fused(*args), ref, rtol=1e-5, atol=tol)
    torch.testing.assert_close(ssm.selective_scan_fused(*args[:5]), ssm.selective_scan_sequential(*args[:5]),
                               rtol=1e-5, atol=tol)


def test_archlab_mamba_equals_hugging_face_mixer_forward_and_step():
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


def test_mamba_block_shim_says_which_block_it_built(capsys):
    blk = amamba.mamba_block(16, d_state=4, device="cpu")
    assert isinstance(blk, amamba.Mamba)
    assert "archlab.mamba.Mamba" in capsys.readouterr().out
    with pytest.raises(ValueError, match="scan must be one of"):
        amamba.Mamba(16, scan="fast")
