"""The selective scan of Mamba (Gu & Dao, arXiv:2312.00752, Dec 2023, §3.2 Algorithm 2), three ways.

Glossary (code name = paper symbol):
    u      x_t, the input of the SSM, (B, L, D)          B batch, L length, D channels (= d_inner)
    delta  Δ_t, the step size per token and channel, (B, L, D), already through softplus
    A      A, the continuous state matrix (diagonal, one row a channel), (D, N), negative
    Bm, C  B_t, C_t, input-dependent projections, (B, L, N)     N state size
    Dskip  D, the skip connection, (D,)
    A_bar  Ā_t = exp(Δ_t A)   (zero-order hold, eq. 4)
    B_bar  B̄_t = Δ_t B_t      (Euler for B, as the paper's reference code does)
    h      h_t, the state, (B, D, N):  h_t = Ā_t h_{t-1} + B̄_t x_t,   y_t = C_t · h_t + D x_t

Three scans with one signature `scan(u, delta, A, Bm, C, Dskip=None) -> y (B, L, D)`:
    selective_scan_sequential  the readable loop over t (the naive twin, the specification)
    selective_scan_parallel    Hillis-Steele associative scan: log2(L) tensor steps, no loop over t;
                               materialises (B, L, D, N) and is bound by memory traffic
    selective_scan_fused       numba: one (batch, channel) per thread, the N state values in a local
                               array, discretisation inside the loop; reads (B, L, D) + (B, L, N) once
The official kernel is mamba-ssm's `selective_scan_cuda` (csrc/selective_scan); the same loop
structure, with the state in registers/SRAM, is what makes it "hardware-aware" (§3.3.2).
"""

import warnings

import numpy as np
import torch

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a dependency, this only keeps imports cheap
    numba = None


def discretize(A, delta, Bm):
    """A (D, N), delta (B, L, D), Bm (B, L, N) -> A_bar, B_bar, each (B, L, D, N)."""
    A_bar = torch.exp(delta[..., None] * A)                 # (B, L, D, N)
    B_bar = delta[..., None] * Bm[:, :, None, :]            # (B, L, D, N)
    return A_bar, B_bar


def selective_scan_sequential(u, delta, A, Bm, C, Dskip=None):
    """The recurrence, one t at a time (the specification the other scans must equal)."""
    Bsz, L, D = u.shape
    A_bar, B_bar = discretize(A, delta, Bm)                 # (B, L, D, N)
    h = u.new_zeros(Bsz, D, A.shape[1])                     # (B, D, N)
    ys = []
    for t in range(L):
        h = A_bar[:, t] * h + B_bar[:, t] * u[:, t, :, None]  # (B, D, N)
        ys.append((h * C[:, t, None, :]).sum(-1))          # (B, D)
    y = torch.stack(ys, dim=1)                              # (B, L, D)
    return y if Dskip is None else y + u * Dskip


def selective_scan_parallel(u, delta, A, Bm, C, Dskip=None):
    """Same result without a Python loop over t: an inclusive scan of the pairs (Ā_t, B̄_t x_t).

    The pairs compose associatively: (a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2). Hillis-Steele
    doubles the reach each round: after round k every t holds the composition of the last 2^k
    pairs, so log2(L) rounds suffice (the tree cumulative sum, with products in front).
    """
    A_bar, B_bar = discretize(A, delta, Bm)                 # (B, L, D, N)
    a, b = A_bar, B_bar * u[..., None]                      # (B, L, D, N) each
    L, k = u.shape[1], 1
    while k < L:
        # 1. fold in the pair k steps back (old a, old b); positions < k have nothing there
        b = torch.cat([b[:, :k], a[:, k:] * b[:, :-k] + b[:, k:]], dim=1)  # (B, L, D, N)
        a = torch.cat([a[:, :k], a[:, k:] * a[:, :-k]], dim=1)              # (B, L, D, N)
        k *= 2
    y = torch.einsum("bldn,bln->bld", b, C)                 # (B, L, D): b is now h_t
    return y if Dskip is None else y + u * Dskip


# exp(x) = 2^k * 2^f with k = floor(x log2 e) and f in [0, 1): 2^f by a degree-7 polynomial
# (least-squares on [0, 1], relative error ~1e-7 in float32), 2^k by writing the exponent bits.
# No function call is left in the inner loop, so LLVM vectorises it over the N state entries;
# with libm's expf (no SVML in PyPI's llvmlite) the scan spends most of its time in exp.
_EXP2_POLY = tuple(np.float32(c) for c in (1.0, 6.93147186e-01, 2.40226386e-01, 5.55051178e-02,
                                           9.61404392e-03, 1.34222259e-03, 1.43553769e-04, 2.14897918e-05))

if numba is not None:
    _c0, _c1, _c2, _c3, _c4, _c5, _c6, _c7 = _EXP2_POLY

    @njit(fastmath=True, inline="always")
    def _fast_exp2(z):
        """2**z in float32 (z clamped to the normal range)."""
        z = min(max(z, np.float32(-125.0)), np.float32(127.0))
        k = np.floor(z)
        f = z - k
        p = ((((((_c7 * f + _c6) * f + _c5) * f + _c4) * f + _c3) * f + _c2) * f + _c1) * f + _c0
        return p * np.int32((np.int32(k) + np.int32(127)) << np.int32(23)).view(np.float32)

    @njit(fastmath=True, inline="always")
    def _fast_exp(x):
        return _fast_exp2(x * np.float32(1.4426950408889634))

    @njit(parallel=True, fastmath=True, cache=False)
    def _fused_kernel(u, delta, A, Bm, C, Dskip, y, lanes):
        # u, delta, y: (B, L, D) as given; Bm, C: (B, L, N) shared by all channels; A: (D, N).
        # One job owns `lanes` neighbouring channels of one sequence and walks t in order; the
        # innermost loop runs across those channels, so the compiler vectorises it with no
        # horizontal sums, and the job's state h (N, lanes) stays in L1 cache.
        nb, nl, nd = u.shape
        n = A.shape[1]
        nblk = (nd + lanes - 1) // lanes
        for job in prange(nb * nblk):
            b, d0 = job // nblk, (job % nblk) * lanes
            w_n = min(lanes, nd - d0)
            h = np.zeros((n, lanes), dtype=np.float32)          # the state, never (B, L, D, N)
            a = np.zeros((n, lanes), dtype=np.float32)          # A for these channels, transposed
            for i in range(n):
                for w in range(w_n):
                    a[i, w] = A[d0 + w, i] * np.float32(1.4426950408889634)   # exp(x) = 2^(x log2 e)
            dt = np.zeros(lanes, dtype=np.float32)
            x = np.zeros(lanes, dtype=np.float32)
            acc = np.zeros(lanes, dtype=np.float32)
            dx = np.zeros(lanes, dtype=np.float32)
            for t in range(nl):
                for w in range(w_n):
                    dt[w], x[w], acc[w] = delta[b, t, d0 + w], u[b, t, d0 + w], 0.0
                    dx[w] = dt[w] * x[w]
                for i in range(n):
                    bt, ct = Bm[b, t, i], C[b, t, i]
                    for w in range(lanes):
                        # 1. discretise in the loop: Ā = exp(Δ A), B̄ x = Δ B x  (never stored)
                        hv = _fast_exp2(dt[w] * a[i, w]) * h[i, w] + bt * dx[w]
                        h[i, w] = hv
                        # 2. read out y_t = C_t · h_t
                        acc[w] += ct * hv
                for w in range(w_n):
                    y[b, t, d0 + w] = acc[w] + Dskip[d0 + w] * x[w]


def selective_scan_fused(u, delta, A, Bm, C, Dskip=None):
    """Same result, one pass over memory: numba kernel on CPU (float32), mamba-ssm on CUDA if present."""
    if u.is_cuda:
        try:
            from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
            y = selective_scan_fn(u.transpose(1, 2).contiguous(), delta.transpose(1, 2).contiguous(), A,
                                  Bm.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(),
                                  None if Dskip is None else Dskip.float())   # (B, D, L)
            return y.transpose(1, 2)                                           # (B, L, D)
        except ImportError:
            warnings.warn("selective_scan_fused: mamba-ssm is not installed, so on CUDA this runs "
                          "selective_scan_parallel (materialises (B, L, D, N)), not a fused kernel", stacklevel=2)
            return selective_scan_parallel(u, delta, A, Bm, C, Dskip)
    if numba is None:
        raise ImportError("selective_scan_fused needs numba on CPU (pip install numba)")
    dtype = u.dtype

    def f32(t):
        return t.detach().to(torch.float32).contiguous().numpy()

    nd = u.shape[2]
    Dv = f32(Dskip) if Dskip is not None else np.zeros(nd, np.float32)  # (D,)
    y = np.empty(tuple(u.shape), np.float32)                             # (B, L, D)
    # channels per job: wide enough to vectorise, narrow enough to give every thread work
    lanes = int(max(8, min(256, nd // (2 * numba.get_num_threads()) // 8 * 8)))
    _fused_kernel(f32(u), f32(delta), f32(A), f32(Bm), f32(C), Dv, y, lanes)
    return torch.from_numpy(y).to(dtype)                                 # (B, L, D)


SCANS = {"sequential": selective_scan_sequential, "parallel": selective_scan_parallel,
         "fused": selective_scan_fused}
