# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Mamba: the selective scan from scratch, three ways, and the block around it
#
# **Mirrors:** §2 of the reading, *Mamba Architecture – Selective State Space Model*.
# **Estimated time:** 2 hours (plus the stretch exercise).
#
# **How to start.** Run the cells from the top. Every exercise is a cell that says
# `YOUR CODE HERE`: replace `raise NotImplementedError()` with your code, then run the test cell
# under it.
#
# **How to check your work.** The test cell under each exercise runs *visible* tests (shapes and
# a small worked example); passing silently means they passed. At grading, *hidden* tests also
# run (an independent loop, the Hugging Face Mamba mixer with your weights, random shapes,
# large step sizes), so passing the visible tests is necessary, not sufficient. Free-text
# answers are graded by your instructor.
#
# By the end you will be able to
# 1. discretise a state space model and write the selective scan as a loop;
# 2. write the same scan without a loop over time (an associative scan), and a fused one that
#    never stores the expanded state;
# 3. build the Mamba block with the reference parameter names, check it against Hugging Face's
#    `MambaMixer`, and decode with a state of constant size;
# 4. explain with bytes moved why the fused scan is the fast one, and show on the
#    selective-copying task what selectivity buys.
#
# **A date.** The reading calls Mamba a 2024 model; the paper is Gu & Dao, *Mamba: Linear-Time
# Sequence Modeling with Selective State Spaces*, arXiv:2312.00752, posted in **December 2023**.
#
# **Notation** (the paper's letters): `B` batch, `L` length, `D` channels (inside the block
# `d_inner = expand · d_model`), `N` state size. $x_t$ (`u` in code) is the scan's input,
# $\Delta_t$ the step size, $A$ `(D, N)`, $B_t, C_t$ `(N,)` per token; shapes are in the comment
# of every line that changes one.

# %% tags=["parameters"]
DEVICE = "auto"   # "auto" picks CUDA when present, else CPU; or "cpu" / "cuda"
QUICK = True      # small sizes (CI and grading); False for the full-size experiments
SEED = 0

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import glob
import json
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from numba import njit, prange
from tqdm.auto import tqdm

import archlab
from archlab import measure, widgets
from archlab.checks import assert_close, assert_shape, check_shape
from archlab.device import pick_device

if os.environ.get("NBGRADER_EXECUTION"):
    QUICK = True  # the grader always runs the small version
device = pick_device(DEVICE)
from archlab import fastpaths  # noqa: E402
fastpaths.show(device)  # which implementation each fast path uses here, kept in the output
torch.manual_seed(SEED)
REPO = Path(archlab.__file__).resolve().parents[1]   # the repository root, wherever we run from


def check_scan_inputs(u, delta, A, B, C, D=None):
    """Raise a ValueError naming the expected shapes unless u, delta (B,L,D), A (D,N), B, C (B,L,N), D (D,)."""
    sizes = {}
    check_shape(u, ("B", "L", "D"), "u", sizes)
    check_shape(delta, ("B", "L", "D"), "delta", sizes)
    check_shape(A, ("D", "N"), "A", sizes)
    check_shape(B, ("B", "L", "N"), "B", sizes)
    check_shape(C, ("B", "L", "N"), "C", sizes)
    if D is not None:
        check_shape(D, ("D",), "D", sizes)


# %% [markdown]
# ## 1. The reading's example, with the import shimmed
#
# The reading builds one block with `mamba_ssm.Mamba`. That package needs an NVIDIA GPU and its
# CUDA kernels, so the cell below imports it only when CUDA and the package are present; on a
# CPU it takes `archlab.mamba.Mamba`: transformers' `MambaMixer` (a library's pure-PyTorch
# block, not the course's) behind mamba-ssm's constructor, with the same parameter names as the
# block you are about to write. The rest of the code is the reading's, with `"cuda"` replaced by
# the device found, and it prints which block it used.

# %%
import torch
# Import Mamba package (shim: mamba-ssm's CUDA block when available, else archlab's CPU block)
try:
    if not torch.cuda.is_available():
        raise ImportError("no CUDA")
    from mamba_ssm import Mamba
    where = "cuda"
    print("using mamba_ssm.Mamba on CUDA")
except ImportError:
    from archlab.mamba import Mamba
    where = "cpu"
    print("mamba-ssm or CUDA not available: using archlab.mamba.Mamba (transformers' MambaMixer, pure PyTorch) on CPU")

batch, length, dim = 2, 64, 16  # example: batch=2, sequence=64, dimension=16
x = torch.randn(batch, length, dim).to(where)   # arbitrary input tensor

# Create Mamba block model
model = Mamba(
    d_model=dim,  # model dimension (embedding dimension)
    d_state=16,   # SSM state dimension (expansion degree)
    d_conv=4,     # local convolution size
    expand=2      # internal channel expansion ratio
).to(where)

y = model(x)  # process input with Mamba block
print(y.shape)  # check output tensor size (should be batch, length, dim)

# %% [markdown]
# ## 2. Exercise: discretisation
#
# A state space model in continuous time is $h'(t) = A h(t) + B x(t)$, $y = C h$. Sampling it
# with step $\Delta$ under a zero-order hold gives (Gu & Dao 2023, eq. 4)
# $\bar A = \exp(\Delta A)$. For $\bar B$ the paper's code uses the simpler Euler step
# $\bar B = \Delta B$ (the exact rule $(\Delta A)^{-1}(\exp(\Delta A) - I)\,\Delta B$ differs
# only at second order in $\Delta$). Mamba has one $\Delta$ per token and channel and a diagonal
# $A$ per channel, so both come out per token, channel and state entry.
#
# Write `discretize(A, delta, B)`: `A (D, N)`, `delta (B, L, D)`, `B (B, L, N)` →
# `(A_bar, B_bar)`, each `(B, L, D, N)`.

# %% nbgrader={"grade": false, "grade_id": "discretize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def discretize(A, delta, B):
    """A_bar = exp(delta * A), B_bar = delta * B (Euler), each (B, L, D, N)."""
    check_shape(A, ("D", "N"), "A")
    check_shape(delta, ("B", "L", A.shape[0]), "delta")
    check_shape(B, (delta.shape[0], delta.shape[1], A.shape[1]), "B")
    ### BEGIN SOLUTION
    A_bar = torch.exp(delta[..., None] * A)            # (B, L, D, N)
    B_bar = delta[..., None] * B[:, :, None, :]        # (B, L, D, N)
    return A_bar, B_bar
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_discretize", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""discretize: shapes and one scalar example; hidden: every entry against a loop written here."""
Ab, Bb = discretize(torch.tensor([[-1.0, -2.0]]), torch.tensor([[[0.5]]]), torch.tensor([[[3.0, 4.0]]]))
assert_shape(Ab, (1, 1, 1, 2), "A_bar")
assert_shape(Bb, (1, 1, 1, 2), "B_bar")
assert_close(Ab.flatten(), torch.tensor([math.exp(-0.5), math.exp(-1.0)]), name="A_bar = exp(delta A)")
assert_close(Bb.flatten(), torch.tensor([1.5, 2.0]), name="B_bar = delta B")
### BEGIN HIDDEN TESTS
g = torch.Generator().manual_seed(11)
for (b_, l_, d_, n_) in [(2, 3, 4, 5), (1, 1, 3, 2), (3, 7, 2, 4)]:
    A_h = -torch.rand(d_, n_, generator=g) * 4
    dl_h = F.softplus(torch.randn(b_, l_, d_, generator=g))
    B_h = torch.randn(b_, l_, n_, generator=g)
    Ab_h, Bb_h = discretize(A_h, dl_h, B_h)
    assert_shape(Ab_h, (b_, l_, d_, n_), "A_bar")
    assert_shape(Bb_h, (b_, l_, d_, n_), "B_bar")
    ref_a, ref_b = torch.empty(b_, l_, d_, n_), torch.empty(b_, l_, d_, n_)
    for i in range(b_):
        for t in range(l_):
            for c in range(d_):
                for k in range(n_):
                    ref_a[i, t, c, k] = math.exp(float(dl_h[i, t, c]) * float(A_h[c, k]))
                    ref_b[i, t, c, k] = float(dl_h[i, t, c]) * float(B_h[i, t, k])
    assert_close(Ab_h, ref_a, rtol=1e-5, atol=1e-6, name="A_bar")   # float32
    assert_close(Bb_h, ref_b, rtol=1e-5, atol=1e-6, name="B_bar")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Exercise: the selective scan, as a loop
#
# With $\bar A_t, \bar B_t$ in hand the model is a linear recurrence per channel (Algorithm 2):
#
# $$h_t = \bar A_t \odot h_{t-1} + \bar B_t\, x_t, \qquad y_t = C_t \cdot h_t + D\, x_t,
# \qquad h_0 = 0 .$$
#
# For one channel $h_t$ has $N$ entries; $C_t \cdot h_t$ sums over them. Write
# `selective_scan(u, delta, A, B, C, D=None)` with a Python loop over $t$: `u, delta (B, L, D)`,
# `A (D, N)`, `B, C (B, L, N)`, `D (D,)` or None (no skip term); return `y (B, L, D)`. This is
# the readable twin every faster scan below must equal.

# %% nbgrader={"grade": false, "grade_id": "selective_scan", "locked": false, "schema_version": 3, "solution": true, "task": false}
def selective_scan(u, delta, A, B, C, D=None):
    """Sequential selective scan: h_t = A_bar_t h_{t-1} + B_bar_t u_t, y_t = C_t . h_t + D u_t."""
    check_scan_inputs(u, delta, A, B, C, D)
    ### BEGIN SOLUTION
    Bsz, L, Dch = u.shape
    A_bar, B_bar = discretize(A, delta, B)             # (B, L, D, N)
    h = u.new_zeros(Bsz, Dch, A.shape[1])              # (B, D, N)
    ys = []
    for t in range(L):
        h = A_bar[:, t] * h + B_bar[:, t] * u[:, t, :, None]   # (B, D, N)
        ys.append((h * C[:, t, None, :]).sum(-1))               # (B, D)
    y = torch.stack(ys, dim=1)                         # (B, L, D)
    return y if D is None else y + u * D
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_selective_scan", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""selective_scan: shape, a one-channel worked example; hidden: a loop written here over random shapes, the D term, large Δ."""
# one channel, N = 1, A = -1, Δ = log 2 so A_bar = 1/2, B = C = 1: h_t = h_{t-1}/2 + log2 * x_t
ln2 = math.log(2.0)
y1 = selective_scan(torch.ones(1, 3, 1), torch.full((1, 3, 1), ln2), torch.tensor([[-1.0]]),
                    torch.ones(1, 3, 1), torch.ones(1, 3, 1))
assert_shape(y1, (1, 3, 1), "y")
assert_close(y1.flatten(), torch.tensor([ln2, 1.5 * ln2, 1.75 * ln2]), name="worked example y")
### BEGIN HIDDEN TESTS
def _loop_scan(u, delta, A, B, C, D=None):
    """Independent reference: every (batch, channel, state entry) separately, in float64."""
    u, delta, A, B, C = (t.double() for t in (u, delta, A, B, C))
    b_, l_, d_ = u.shape
    y = torch.zeros(b_, l_, d_, dtype=torch.float64)
    for i in range(b_):
        for c in range(d_):
            h = torch.zeros(A.shape[1], dtype=torch.float64)
            for t in range(l_):
                h = torch.exp(delta[i, t, c] * A[c]) * h + delta[i, t, c] * B[i, t] * u[i, t, c]
                y[i, t, c] = (C[i, t] * h).sum() + (0.0 if D is None else D[c].double() * u[i, t, c])
    return y.float()


def _rand_inputs(g, b_, l_, d_, n_, scale=1.0):
    return (torch.randn(b_, l_, d_, generator=g), F.softplus(torch.randn(b_, l_, d_, generator=g)) * scale,
            -torch.rand(d_, n_, generator=g) * 3 - 0.1, torch.randn(b_, l_, n_, generator=g),
            torch.randn(b_, l_, n_, generator=g), torch.randn(d_, generator=g))


g = torch.Generator().manual_seed(21)
for (b_, l_, d_, n_) in [(2, 5, 3, 4), (1, 1, 2, 3), (3, 9, 4, 2)]:
    u_h, dl_h, A_h, B_h, C_h, D_h = _rand_inputs(g, b_, l_, d_, n_)
    got = selective_scan(u_h, dl_h, A_h, B_h, C_h, D_h)
    assert_shape(got, (b_, l_, d_), "y")
    assert_close(got, _loop_scan(u_h, dl_h, A_h, B_h, C_h, D_h), rtol=1e-4, atol=1e-5, name="y with D")  # float32
    assert_close(selective_scan(u_h, dl_h, A_h, B_h, C_h), _loop_scan(u_h, dl_h, A_h, B_h, C_h),
                 rtol=1e-4, atol=1e-5, name="y with D=None")
# large Δ: A_bar underflows to 0, the state forgets everything; the result must stay finite
u_h, dl_h, A_h, B_h, C_h, D_h = _rand_inputs(g, 2, 6, 3, 4, scale=200.0)
got = selective_scan(u_h, dl_h, A_h, B_h, C_h, D_h)
assert bool(torch.isfinite(got).all()), "large delta gave inf/nan"
assert_close(got, _loop_scan(u_h, dl_h, A_h, B_h, C_h, D_h), rtol=1e-4, atol=1e-3, name="y with large delta")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. No loop over time: a scan as a tree
#
# The loop does $L$ dependent steps. The trick that removes them is that the step is
# **associative**. Start with a cumulative sum: $s_t = s_{t-1} + x_t$. Instead of $L$ steps,
# add to every position the value $1$ place back, then $2$ back, then $4$ back, …: after round
# $k$ each position holds the sum of its last $2^k$ inputs, so $\lceil\log_2 L\rceil$ rounds of
# whole-tensor additions finish the job (Hillis & Steele 1986).

# %%
xs = torch.arange(1.0, 11.0)                # (10,)
s, k = xs.clone(), 1
while k < len(s):
    s = torch.cat([s[:k], s[k:] + s[:-k]])  # round: add the value k places back
    print(f"after reach {k:2d}: {s.tolist()}")
    k *= 2
assert torch.equal(s, xs.cumsum(0))

# %% [markdown]
# Our recurrence $h_t = a_t h_{t-1} + b_t$ (with $a_t = \bar A_t$, $b_t = \bar B_t x_t$) has the
# same structure once each position carries a **pair** $(a, b)$ meaning "multiply by $a$, then
# add $b$". Doing $(a_1, b_1)$ and then $(a_2, b_2)$ is $(a_2 a_1,\; a_2 b_1 + b_2)$, again a
# pair, and this composition is associative. So the same rounds work: in the round with reach
# $k$, position $t$ combines its pair with the pair at $t-k$ — **use the old $a_t$ for $b$ before
# you overwrite $a$**. At the end $b_t = h_t$.
#
# Write `selective_scan_parallel(u, delta, A, B, C, D=None)`: same inputs and result as
# `selective_scan` (within $10^{-4}$ relative in float32), **no Python loop over $t$** (a loop
# over the $\log_2 L$ rounds is fine). Do not divide by cumulative products of $\bar A$: with a
# large $\Delta$ they underflow to 0 (the hidden tests use one).

# %% nbgrader={"grade": false, "grade_id": "selective_scan_parallel", "locked": false, "schema_version": 3, "solution": true, "task": false}
def selective_scan_parallel(u, delta, A, B, C, D=None):
    """Same result as selective_scan, by an associative (Hillis-Steele) scan over the pairs (A_bar, B_bar u)."""
    check_scan_inputs(u, delta, A, B, C, D)
    ### BEGIN SOLUTION
    A_bar, B_bar = discretize(A, delta, B)             # (B, L, D, N)
    a, b = A_bar, B_bar * u[..., None]                 # (B, L, D, N) each
    L, k = u.shape[1], 1
    while k < L:
        b = torch.cat([b[:, :k], a[:, k:] * b[:, :-k] + b[:, k:]], dim=1)   # (B, L, D, N), old a
        a = torch.cat([a[:, :k], a[:, k:] * a[:, :-k]], dim=1)               # (B, L, D, N)
        k *= 2
    y = torch.einsum("bldn,bln->bld", b, C)           # (B, L, D): b now holds h_t
    return y if D is None else y + u * D
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_selective_scan_parallel", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""selective_scan_parallel: equals selective_scan on one input; hidden: a loop written here over random shapes (L = 1, non-powers of two), large Δ, and no Python loop over L."""
g = torch.Generator().manual_seed(5)
args_v = (torch.randn(2, 6, 3, generator=g), F.softplus(torch.randn(2, 6, 3, generator=g)),
          -torch.rand(3, 4, generator=g), torch.randn(2, 6, 4, generator=g), torch.randn(2, 6, 4, generator=g),
          torch.randn(3, generator=g))
yp = selective_scan_parallel(*args_v)
assert_shape(yp, (2, 6, 3), "y")
assert_close(yp, selective_scan(*args_v), rtol=1e-4, atol=1e-5, name="parallel vs sequential")  # float32
### BEGIN HIDDEN TESTS
from torch.overrides import TorchFunctionMode


class _CountTorchCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def _loop_scan_p(u, delta, A, B, C, D=None):
    """Independent reference in float64, one (batch, channel) at a time."""
    u, delta, A, B, C = (t.double() for t in (u, delta, A, B, C))
    b_, l_, d_ = u.shape
    y = torch.zeros(b_, l_, d_, dtype=torch.float64)
    for i in range(b_):
        for c in range(d_):
            h = torch.zeros(A.shape[1], dtype=torch.float64)
            for t in range(l_):
                h = torch.exp(delta[i, t, c] * A[c]) * h + delta[i, t, c] * B[i, t] * u[i, t, c]
                y[i, t, c] = (C[i, t] * h).sum() + (0.0 if D is None else D[c].double() * u[i, t, c])
    return y.float()


g = torch.Generator().manual_seed(99)
for (b_, l_, d_, n_, scale) in [(1, 1, 2, 3, 1.0), (2, 7, 3, 4, 1.0), (1, 13, 2, 5, 1.0), (2, 33, 3, 2, 1.0),
                                (1, 16, 2, 4, 1.0), (2, 21, 2, 3, 300.0)]:
    a_h = (torch.randn(b_, l_, d_, generator=g), F.softplus(torch.randn(b_, l_, d_, generator=g)) * scale,
           -torch.rand(d_, n_, generator=g) * 3 - 0.1, torch.randn(b_, l_, n_, generator=g),
           torch.randn(b_, l_, n_, generator=g), torch.randn(d_, generator=g))
    got = selective_scan_parallel(*a_h)
    assert_shape(got, (b_, l_, d_), "y")
    assert bool(torch.isfinite(got).all()), f"inf/nan for L={l_}, delta scale {scale}"
    assert_close(got, _loop_scan_p(*a_h), rtol=1e-4, atol=1e-4, name=f"parallel scan, L={l_}, delta scale {scale}")
    assert_close(selective_scan_parallel(*a_h[:5]), _loop_scan_p(*a_h[:5]), rtol=1e-4, atol=1e-4, name=f"D=None, L={l_}")
# no Python loop over t: a loop makes at least L torch calls, the tree about 10 per round
Lc = 512
a_c = (torch.randn(1, Lc, 2), F.softplus(torch.randn(1, Lc, 2)), -torch.rand(2, 2), torch.randn(1, Lc, 2),
       torch.randn(1, Lc, 2), torch.randn(2))
with _CountTorchCalls() as counter:
    selective_scan_parallel(*a_c)
assert counter.calls < Lc // 2, f"{counter.calls} torch calls for L={Lc}: that is a loop over time, not a tree"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Stretch exercise: a fused scan (the "hardware-aware" part)
#
# The parallel scan removed the loop but pays in memory: it builds $\bar A$, $\bar B x$ and
# every round's new pair as `(B, L, D, N)` tensors, $N = 16$ times the size of the input, and
# reads and writes them about $\log_2 L$ times. The fix in the paper (§3.3.2) is to **never
# write the expanded state to slow memory**: load $\Delta, A, B, C, x$ into fast memory (SRAM on
# a GPU, cache and registers on a CPU), discretise there, run the recurrence, and write back
# only $y$, `(B, L, D)`.
#
# On a CPU we can write that kernel with numba: `@njit(parallel=True, fastmath=True)` compiles
# Python loops to machine code, and `prange` spreads the (batch, channel) pairs over cores,
# since different channels never interact. For one (batch, channel): keep `h`, a length-$N$
# local array, and for each $t$ compute `exp(delta*A[d, i])` inside the loop.
#
# Write `selective_scan_fused(u, delta, A, B, C, D=None)` returning the same `y (B, L, D)`
# (within $10^{-5}$ relative in float32). The wrapper converts tensors to float32 numpy arrays
# (`t.detach().float().contiguous().numpy()`) and back (`torch.from_numpy`); the kernel must
# not allocate anything of size `B·L·D·N` (the hidden test measures the peak memory on a shape
# where that would be 64 MiB). Tip: transposing `u` and `delta` to `(B, D, L)` first makes each
# channel's walk through time contiguous in memory. On CUDA, mamba-ssm's `selective_scan_fn` is
# this kernel; the bench script uses it when present.

# %% nbgrader={"grade": false, "grade_id": "selective_scan_fused", "locked": false, "schema_version": 3, "solution": true, "task": false}
@njit(parallel=True, fastmath=True, cache=False)
def _fused_scan_kernel(u, delta, A, B, C, D, y):
    """Write y[b, d, t] for all b, d, t. u, delta, y: (B, D, L); B, C: (B, L, N); A: (D, N); D: (D,)."""
    ### BEGIN SOLUTION
    nb, nd, nl = u.shape
    n = A.shape[1]
    for job in prange(nb * nd):               # one (batch, channel) per iteration, channels independent
        b, d = job // nd, job % nd
        h = np.zeros(n, dtype=np.float32)     # the state: N numbers, stays in cache
        for t in range(nl):
            dt, x = delta[b, d, t], u[b, d, t]
            acc = np.float32(0.0)
            for i in range(n):
                h[i] = np.exp(dt * A[d, i]) * h[i] + dt * B[b, t, i] * x   # discretised here, never stored
                acc += C[b, t, i] * h[i]
            y[b, d, t] = acc + D[d] * x
    ### END SOLUTION


def selective_scan_fused(u, delta, A, B, C, D=None):
    """Same result as selective_scan; discretisation fused into one pass, state kept in fast memory."""
    check_scan_inputs(u, delta, A, B, C, D)
    ### BEGIN SOLUTION
    f32 = lambda t: t.detach().to(torch.float32).contiguous().numpy()
    u_ = f32(u.transpose(1, 2))                        # (B, D, L)
    d_ = f32(delta.transpose(1, 2))                    # (B, D, L)
    D_ = f32(D) if D is not None else np.zeros(u.shape[2], np.float32)   # (D,)
    y = np.empty_like(u_)                              # (B, D, L)
    _fused_scan_kernel(u_, d_, f32(A), f32(B), f32(C), D_, y)
    return torch.from_numpy(y).transpose(1, 2).to(u.dtype)   # (B, L, D)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_selective_scan_fused", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""selective_scan_fused: equals selective_scan on one input; hidden: a loop written here (L = 1, large Δ, D=None), and peak memory far below B·L·D·N floats."""
yf = selective_scan_fused(*args_v)
assert_shape(yf, (2, 6, 3), "y")
ys_v = selective_scan(*args_v)
# float32: 1e-5 relative to the output's scale
assert_close(yf, ys_v, rtol=1e-5, atol=1e-5 * float(ys_v.abs().max()), name="fused vs sequential")
### BEGIN HIDDEN TESTS
import tracemalloc


def _loop_scan_f(u, delta, A, B, C, D=None):
    """Independent reference in float64, one (batch, channel) at a time."""
    u, delta, A, B, C = (t.double() for t in (u, delta, A, B, C))
    b_, l_, d_ = u.shape
    y = torch.zeros(b_, l_, d_, dtype=torch.float64)
    for i in range(b_):
        for c in range(d_):
            h = torch.zeros(A.shape[1], dtype=torch.float64)
            for t in range(l_):
                h = torch.exp(delta[i, t, c] * A[c]) * h + delta[i, t, c] * B[i, t] * u[i, t, c]
                y[i, t, c] = (C[i, t] * h).sum() + (0.0 if D is None else D[c].double() * u[i, t, c])
    return y


g = torch.Generator().manual_seed(7)
for (b_, l_, d_, n_, scale) in [(1, 1, 3, 4, 1.0), (2, 19, 3, 5, 1.0), (3, 8, 2, 16, 1.0), (1, 12, 2, 3, 300.0)]:
    a_h = (torch.randn(b_, l_, d_, generator=g), F.softplus(torch.randn(b_, l_, d_, generator=g)) * scale,
           -torch.rand(d_, n_, generator=g) * 3 - 0.1, torch.randn(b_, l_, n_, generator=g),
           torch.randn(b_, l_, n_, generator=g), torch.randn(d_, generator=g))
    for with_D in (True, False):
        args_h = a_h if with_D else a_h[:5]
        got = selective_scan_fused(*args_h)
        assert_shape(got, (b_, l_, d_), "y")
        assert got.dtype == torch.float32, f"return float32 for float32 inputs, got {got.dtype}"
        ref = _loop_scan_f(*args_h)
        assert_close(got, ref.float(), rtol=1e-5, atol=1e-5 * float(ref.abs().max()) + 1e-7,
                     name=f"fused scan, L={l_}, N={n_}, delta scale {scale}, D {'given' if with_D else 'None'}")
# memory: (B, L, D, N) float32 would be 64 MiB here; the inputs and y are 1 MiB each.
# Every torch op's outputs are watched (a dispatch mode) and numpy's allocations traced.
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class _LargestTensor(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel() * t.element_size())
        return out


Bm_, Lm_, Dm_, Nm_ = 1, 2048, 128, 64
a_m = (torch.randn(Bm_, Lm_, Dm_), F.softplus(torch.randn(Bm_, Lm_, Dm_)) * 0.1, -torch.rand(Dm_, Nm_),
       torch.randn(Bm_, Lm_, Nm_) * 0.1, torch.randn(Bm_, Lm_, Nm_) * 0.1, torch.randn(Dm_))
selective_scan_fused(*a_m)  # compile first
tracemalloc.start()
with _LargestTensor() as watch:
    selective_scan_fused(*a_m)
numpy_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
expanded = Bm_ * Lm_ * Dm_ * Nm_ * 4
assert watch.largest < expanded / 4 and numpy_peak < expanded / 4, (
    f"largest torch tensor {watch.largest / 2**20:.1f} MiB, numpy peak {numpy_peak / 2**20:.1f} MiB: the "
    f"(B, L, D, N) state ({expanded / 2**20:.0f} MiB) must not be materialised")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Exercise: the Mamba block
#
# The block (Gu & Dao 2023, Fig. 3) wraps the scan in a gated MLP-like shell. With
# `d_inner = expand · d_model` and `dt_rank = ceil(d_model / 16)`:
#
# 1. `in_proj` maps `(B, L, d_model)` to `(B, L, 2·d_inner)`; split it into the SSM branch `x`
#    and the gate `z` (first half, second half);
# 2. `conv1d`, a depthwise convolution of width `d_conv`, mixes each channel with its
#    `d_conv - 1` predecessors: it is built with `padding=d_conv-1`, so keep only the **first**
#    `L` outputs (the last ones would see the future); then SiLU;
# 3. `x_proj` gives `dt_rank + 2N` numbers per token: split into $\Delta$'s low-rank input, $B$,
#    $C$; $\Delta$ = softplus(`dt_proj`(…)) (positive step sizes); $A = -\exp(A_{\log})$;
# 4. the scan with skip term `D`, chosen by `self.scan` (`"fused"`, `"parallel"` or
#    `"sequential"`, your three functions);
# 5. multiply by SiLU($z$) and `out_proj` back to `d_model`.
#
# The constructor is given (the parameter names are those of mamba-ssm and Hugging Face, so
# their checkpoints load). Write `ssm_params`, `forward` and `step`. `step(x_t, state=None)`
# takes one token `(B, 1, d_model)` and a state `(conv_state (B, d_inner, d_conv), ssm_state
# (B, d_inner, N))` — the last `d_conv` conv inputs and $h$ — (zeros when None) and returns
# `(y_t (B, 1, d_model), new_state)`. The state's size does not depend on how many tokens came
# before: that is the constant-memory decoding the reading promises.

# %% nbgrader={"grade": false, "grade_id": "MambaBlock", "locked": false, "schema_version": 3, "solution": true, "task": false}
SCAN_FUNCTIONS = {"sequential": selective_scan, "parallel": selective_scan_parallel, "fused": selective_scan_fused}


class MambaBlock(nn.Module):
    """Mamba block (Gu & Dao 2023, Fig. 3) with mamba-ssm's parameter names; scan chosen explicitly."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, scan="fused"):
        super().__init__()
        if scan not in SCAN_FUNCTIONS:
            raise ValueError(f"scan must be one of {sorted(SCAN_FUNCTIONS)}; got {scan!r}")
        self.d_model, self.d_state, self.d_conv, self.scan = d_model, d_state, d_conv, scan
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1.0)).repeat(self.d_inner, 1))  # (d_inner, N)
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        with torch.no_grad():   # softplus(bias) log-uniform in [0.001, 0.1], as the paper initialises Δ
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def ssm_params(self, xc):
        """xc (B, L, d_inner) or (B, d_inner) -> delta (same shape as xc), B and C (..., N)."""
        ### BEGIN SOLUTION
        dt, Bm, C = self.x_proj(xc).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.softplus(self.dt_proj(dt)), Bm, C     # delta (..., d_inner), B, C (..., N)
        ### END SOLUTION

    def forward(self, x):
        check_shape(x, ("B", "L", self.d_model), "x")
        ### BEGIN SOLUTION
        L = x.shape[1]
        xs, z = self.in_proj(x).chunk(2, dim=-1)                         # (B, L, d_inner) each
        xc = self.conv1d(xs.transpose(1, 2))[..., :L].transpose(1, 2)    # (B, L, d_inner), causal
        xc = F.silu(xc)
        delta, Bm, C = self.ssm_params(xc)                               # (B, L, d_inner), (B, L, N) x2
        A = -torch.exp(self.A_log)                                       # (d_inner, N)
        y = SCAN_FUNCTIONS[self.scan](xc, delta, A, Bm, C, self.D)       # (B, L, d_inner)
        return self.out_proj(y * F.silu(z))                              # (B, L, d_model)
        ### END SOLUTION

    def step(self, x_t, state=None):
        check_shape(x_t, ("B", 1, self.d_model), "x_t")
        ### BEGIN SOLUTION
        Bsz = x_t.shape[0]
        if state is None:
            state = (x_t.new_zeros(Bsz, self.d_inner, self.d_conv), x_t.new_zeros(Bsz, self.d_inner, self.d_state))
        conv_state, h = state
        xs, z = self.in_proj(x_t[:, 0]).chunk(2, dim=-1)                 # (B, d_inner) each
        conv_state = torch.cat([conv_state[:, :, 1:], xs[:, :, None]], -1)   # (B, d_inner, d_conv)
        xc = F.silu((conv_state * self.conv1d.weight[:, 0]).sum(-1) + self.conv1d.bias)  # (B, d_inner)
        delta, Bm, C = self.ssm_params(xc)                               # (B, d_inner), (B, N), (B, N)
        A = -torch.exp(self.A_log)                                       # (d_inner, N)
        h = torch.exp(delta[..., None] * A) * h + delta[..., None] * Bm[:, None] * xc[..., None]  # (B, d_inner, N)
        y = (h * C[:, None]).sum(-1) + self.D * xc                       # (B, d_inner)
        return self.out_proj(y * F.silu(z))[:, None], (conv_state, h)    # (B, 1, d_model)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_MambaBlock", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""MambaBlock: shapes, causality; hidden: Hugging Face MambaMixer with copied weights (forward with each scan, step by step), a future-leak probe."""
torch.manual_seed(0)
blk = MambaBlock(16, d_state=4, d_conv=4, expand=2, scan="sequential")
xb = torch.randn(2, 9, 16)
with torch.no_grad():
    yb = blk(xb)
    assert_shape(yb, (2, 9, 16), "forward output")
    x_future = xb.clone()
    x_future[:, 5:] += 10.0
    assert_close(blk(x_future)[:, :5], yb[:, :5], rtol=1e-5, atol=1e-5, name="outputs before t=5 after changing t>=5")
    y0, st = blk.step(xb[:, :1])
    assert_shape(y0, (2, 1, 16), "step output")
    assert_close(y0, yb[:, :1], rtol=1e-4, atol=1e-5, name="first step vs forward")
### BEGIN HIDDEN TESTS
from transformers import MambaConfig
from transformers.models.mamba.modeling_mamba import MambaMixer
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()   # its "no mamba-ssm kernel" notice goes to stderr, which graders count as failure

for (dm, ns_, dc, ex, Lh) in [(16, 4, 4, 2, 13), (32, 8, 3, 1, 1), (24, 16, 4, 2, 20)]:
    cfg_h = MambaConfig(hidden_size=dm, state_size=ns_, conv_kernel=dc, expand=ex,
                        time_step_rank=math.ceil(dm / 16), use_bias=False, use_conv_bias=True, hidden_act="silu")
    torch.manual_seed(dm + Lh)
    mixer = MambaMixer(cfg_h, layer_idx=0).eval()
    with torch.no_grad():   # random, non-default weights so every parameter matters
        for p in mixer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    xh = torch.randn(2, Lh, dm)
    with torch.no_grad():
        ref = mixer(xh)
    for scan_name in ("sequential", "parallel", "fused"):
        mine = MambaBlock(dm, d_state=ns_, d_conv=dc, expand=ex, scan=scan_name).eval()
        mine.load_state_dict(mixer.state_dict())
        with torch.no_grad():
            out_h = mine(xh)
        assert_shape(out_h, (2, Lh, dm), "forward output")
        assert_close(out_h, ref, rtol=1e-4, atol=1e-4, name=f"forward (scan={scan_name}) vs HF MambaMixer, L={Lh}")  # float32
    st, outs = None, []
    with torch.no_grad():
        for t in range(Lh):
            yt, st = mine.step(xh[:, t:t + 1], st)
            outs.append(yt)
    assert_shape(st[0], (2, ex * dm, dc), "conv_state")
    assert_shape(st[1], (2, ex * dm, ns_), "ssm_state")
    assert_close(torch.cat(outs, 1), ref, rtol=1e-4, atol=1e-4, name=f"step by step vs HF MambaMixer, L={Lh}")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Experiment: timing the three scans, and bytes moved
#
# Same inputs for all: batch 1, $D$ channels, $N = 16$, float32. We also time the scan that
# Hugging Face `transformers` falls back to without mamba-ssm (`mamba_selective_scan` in
# `models/mamba/modeling_mamba.py`, a Python loop over $t$ over precomputed `(B, D, L, N)`
# tensors). The fused scan's first call compiles the numba kernel; `time_fn` runs warm-up calls
# first, so compile time is not in the medians.

# %%
from transformers.models.mamba import modeling_mamba

D_t, N_t = (256, 16) if QUICK else (1536, 16)
L_list = [128, 512] if QUICK else [512, 2048, 8192]
g = torch.Generator().manual_seed(SEED)
scan_rows = []
for L_t in L_list:
    u_t = torch.randn(1, L_t, D_t, generator=g)
    dl_t = F.softplus(torch.randn(1, L_t, D_t, generator=g) - 3)
    A_t = -torch.arange(1, N_t + 1.0).repeat(D_t, 1)
    B_t, C_t, D_skip = torch.randn(1, L_t, N_t, generator=g), torch.randn(1, L_t, N_t, generator=g), torch.ones(D_t)
    hf = lambda: modeling_mamba.mamba_selective_scan(u_t.transpose(1, 2), dl_t.transpose(1, 2), A_t,
                                                     B_t.transpose(1, 2), C_t.transpose(1, 2), D=D_skip)
    fns = {"transformers reference": hf,
           "sequential (yours)": lambda: selective_scan(u_t, dl_t, A_t, B_t, C_t, D_skip),
           "parallel (yours)": lambda: selective_scan_parallel(u_t, dl_t, A_t, B_t, C_t, D_skip),
           "fused (yours)": lambda: selective_scan_fused(u_t, dl_t, A_t, B_t, C_t, D_skip)}
    row = {"L": L_t}
    for name, fn in fns.items():
        row[name] = measure.time_fn(fn, warmup=1, repeat=3, what=f"{name}, L={L_t}").median
    scan_rows.append(row)
    print(" | ".join(f"{k}: {v * 1e3:.1f} ms" if k != "L" else f"L={v}" for k, v in row.items()))

for row in scan_rows:
    print(f"L={row['L']}: fused is {row['transformers reference'] / row['fused (yours)']:.1f}x the "
          f"transformers reference scan, {row['parallel (yours)'] / row['fused (yours)']:.1f}x your parallel scan")

# %% [markdown]
# **Bytes moved.** Count what each scan must read and write in float32 for one call:
#
# * the fused scan reads $x, \Delta$ `(B, L, D)`, $B, C$ `(B, L, N)` once and writes $y$
#   `(B, L, D)`: about $4\,BL(3D + 2N)$ bytes;
# * the parallel scan writes $\bar A$ and $\bar B x$, `(B, L, D, N)` each, then in each of
#   $\lceil\log_2 L\rceil$ rounds reads two such tensors and writes two more: about
#   $4 \cdot BLDN \cdot (2 + 4\log_2 L)$ bytes, $N(2 + 4 \log_2 L)/3$ times as much;
# * the loops (yours and transformers') move as much as the parallel scan's first step, but pay
#   Python's and PyTorch's fixed cost per call $L$ times.
#
# Arithmetic is the same few multiply-adds and one `exp` per state entry for all of them; the
# difference is memory traffic and per-call overhead. The cell below prints the ratio.

# %%
for row in scan_rows:
    L_t = row["L"]
    fused_bytes = 4 * L_t * (3 * D_t + 2 * N_t)
    parallel_bytes = 4 * L_t * D_t * N_t * (2 + 4 * math.ceil(math.log2(L_t)))
    print(f"L={L_t}: fused moves {fused_bytes / 2**20:.1f} MiB, parallel {parallel_bytes / 2**20:.0f} MiB "
          f"({parallel_bytes / fused_bytes:.0f}x)")

# The benchmark script measures the full-size case (d_inner 1536, N 16, L up to 8192); if its
# result file is in the repository, quote it here.
for path in sorted(glob.glob(str(REPO / "bench" / "results" / "selective_scan-*.json"))):
    res = json.loads(Path(path).read_text())
    for r in res.get("scans", []):
        if "speedup_fused_vs_reference" in r:
            print(f"{Path(path).name}: L={r['L']}: fused {r['speedup_fused_vs_reference']:.1f}x the reference scan")

# %% [markdown]
# ## 8. Explore: how Δ decides what is remembered
#
# For one state entry $\bar A_t = \exp(\Delta_t A)$ multiplies the state every step, so after
# $n$ steps a token's contribution is scaled by $\exp(A \sum \Delta)$. With
# $\Delta = \mathrm{softplus}(w\,x + b)$ depending on the input $x$, a small $\Delta$ keeps the
# state (the token is ignored and the past remembered), a large $\Delta$ resets it to the
# current input. Move the sliders: the curves show the decay over time for three inputs.

# %%
delta_explorer = widgets.mamba_delta_explorer()
delta_explorer

# %% [markdown]
# ## 9. Experiment: selective copying
#
# The task from the paper (§4.1.1): a sequence of noise tokens with a few data tokens at random
# positions, followed by marker tokens; at each marker the model must output the data tokens in
# order. The positions vary, so a model whose $\Delta, B, C$ do not depend on the input (a
# linear time-invariant, LTI, SSM such as S4) cannot know which inputs to keep; a selective one
# can set $\Delta$ large on data tokens and small on noise. We train two tiny models, identical
# except for that: the LTI one learns $\Delta, B, C$ as plain parameters.

# %%
N_COPY, VOCAB_DATA = 4, 8                 # tokens to copy, data-token values 1..8
NOISE, MARK = 0, VOCAB_DATA + 1
SPAN = 24 if QUICK else 64                # positions the data tokens are scattered over
STEPS = 200 if QUICK else 2000
BATCH = 48 if QUICK else 64
VOCAB = VOCAB_DATA + 2


def selective_copy_batch(n, gen):
    """-> tokens (n, SPAN + N_COPY), targets (n, N_COPY): data tokens in order of appearance."""
    data = torch.randint(1, VOCAB_DATA + 1, (n, N_COPY), generator=gen)                  # (n, K)
    pos = torch.rand(n, SPAN, generator=gen).argsort(-1)[:, :N_COPY].sort(-1).values     # (n, K) sorted
    x = torch.full((n, SPAN + N_COPY), NOISE)
    x.scatter_(1, pos, data)
    x[:, SPAN:] = MARK
    return x, data


class LTIBlock(MambaBlock):
    """The same block with Δ, B, C input-independent (learned constants): an LTI SSM."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.dt_const = nn.Parameter(self.dt_proj.bias.detach().clone())       # (d_inner,)
        self.B_const = nn.Parameter(torch.randn(self.d_state) * 0.5)            # (N,)
        self.C_const = nn.Parameter(torch.randn(self.d_state) * 0.5)            # (N,)

    def ssm_params(self, xc):
        shape = xc.shape[:-1]
        return (F.softplus(self.dt_const).expand(*shape, -1), self.B_const.expand(*shape, -1),
                self.C_const.expand(*shape, -1))


class TinySSM(nn.Module):
    def __init__(self, block_cls, d_model=32, n_layers=2):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, d_model)
        self.blocks = nn.ModuleList(block_cls(d_model, d_state=8, expand=2, scan="parallel") for _ in range(n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_layers))
        self.head = nn.Linear(d_model, VOCAB_DATA + 1)

    def forward(self, x):
        h = self.emb(x)                                          # (B, L, d)
        for norm, blk in zip(self.norms, self.blocks):
            h = h + blk(norm(h))                                 # (B, L, d)
        return self.head(h[:, -N_COPY:])                         # (B, K, classes)


def train_copy(block_cls, label):
    torch.manual_seed(SEED)
    net = TinySSM(block_cls)
    opt = torch.optim.AdamW(net.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(SEED)
    curve = []
    for _ in tqdm(range(STEPS), desc=label):
        x, tgt = selective_copy_batch(BATCH, gen)
        logits = net(x)                                          # (BATCH, K, classes)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append((loss.item(), (logits.argmax(-1) == tgt).float().mean().item()))
    return net, curve


ckpt = REPO / "build" / f"02_mamba_selective_copy_{'quick' if QUICK else 'full'}_s{SEED}.pt"
if ckpt.exists():
    saved = torch.load(ckpt)
    curves = saved["curves"]
    print(f"loaded {ckpt.relative_to(REPO)} (delete it to retrain)")
else:
    curves = {}
    for label, cls in (("selective", MambaBlock), ("LTI", LTIBlock)):
        _, curves[label] = train_copy(cls, label)
    try:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"curves": curves, "steps": STEPS, "span": SPAN}, ckpt)
        print(f"saved {ckpt.relative_to(REPO)}")
    except OSError as err:   # a read-only checkout (e.g. the grader's sandbox): keep the curves in memory
        print(f"could not save the checkpoint ({err.strerror}); it will be retrained next time")
for label, curve in curves.items():
    tail = curve[-20:]
    print(f"{label}: final loss {np.mean([c[0] for c in tail]):.3f}, token accuracy {np.mean([c[1] for c in tail]):.2f}"
          f" (chance {1 / VOCAB_DATA:.2f})")

# %%
fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(11, 4))
for label, curve in curves.items():
    ax_l.plot([c[0] for c in curve], label=label)
    acc = np.convolve([c[1] for c in curve], np.ones(10) / 10, mode="valid")
    ax_a.plot(acc, label=label)
ax_l.set(xlabel="step", ylabel="cross-entropy", title="Selective copying: training loss")
ax_a.set(xlabel="step", ylabel="token accuracy (10-step mean)", title="Selective copying: accuracy")
ax_a.axhline(1 / VOCAB_DATA, ls=":", c="gray", label="chance")
ax_l.legend()
ax_a.legend()
plt.show()

# %% [markdown]
# **What to look for.** In QUICK mode (24 positions, 200 steps of 48 sequences) both models
# start at chance; the selective model's loss then falls faster and it ends with a clearly
# higher token accuracy than the LTI model (the printed numbers above), although neither has
# finished learning: the QUICK gap is a gap in learning speed. Run with `QUICK = False` (64 positions, 2000 steps of 64): the selective
# model approaches perfect copying while the LTI model stays far below, as in the paper's
# Table 1 (S4 and the LTI ablations fail the task, S6 solves it).

# %% [markdown]
# ## 10. Checkpoint questions
#
# Each question has an autograded part and a written answer your instructor grades.
#
# ### Question 1
# - What is the biggest advantage of Mamba **compared to Transformer**? Explain how Mamba can avoid the **$O(n^2)$ bottleneck of attention**.
#
# Autograded part: when a Mamba model generates token $L+1$ after $L$ tokens, how do the work
# and the memory for that one step grow with $L$? Set `q1_choice`.
#
# * **A.** Both grow linearly: it re-reads a cache of all $L$ tokens.
# * **B.** Both are constant: it updates a fixed-size state (conv window and $h$) per layer.
# * **C.** Work is constant but memory grows linearly.
# * **D.** Both grow quadratically, as for attention.

# %% nbgrader={"grade": false, "grade_id": "q1_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q1_choice = "?"   # one of "A", "B", "C", "D"
### BEGIN SOLUTION
q1_choice = "B"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q1_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 1, autograded part: q1_choice is one of A-D (hidden: the right letter)."""
assert q1_choice in {"A", "B", "C", "D"}, f"q1_choice must be one of 'A', 'B', 'C', 'D'; got {q1_choice!r}"
### BEGIN HIDDEN TESTS
assert q1_choice == "B"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q1_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** Mamba processes a sequence in time linear in its length and decodes with a
# state of fixed size, so long contexts are cheap and generation is fast. It never compares
# every pair of tokens: each layer compresses the past into a state $h$ of $D \times N$ numbers
# updated by a recurrence, so a forward pass is one scan ($O(L)$) and a decode step is one
# state update ($O(1)$ in $L$, no KV cache). Training stays parallel because the recurrence is
# computed with a fused/associative scan instead of a step-by-step loop.
#
# **Rubric (2 points).** 1 point: advantage = linear-time processing / constant memory and
# time per generated token (higher inference throughput). 1 point: mechanism = a recurrent
# state updated per token (no pairwise attention), computed with an efficient scan.
# ### END SOLUTION

# %% [markdown]
# ### Question 2
# - What does the **"selective"** operation mean in Mamba's Selective SSM? What effects can be obtained in language models as a result?
#
# Autograded part: which parameters of Mamba's SSM are functions of the current input? Set
# `q2_choice`.
#
# * **A.** Only $A$.
# * **B.** $A$, $B$ and $C$.
# * **C.** $\Delta$, $B$ and $C$ ($A$ and $D$ are input-independent).
# * **D.** None: they are fixed after training, as in S4.

# %% nbgrader={"grade": false, "grade_id": "q2_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q2_choice = "?"   # one of "A", "B", "C", "D"
### BEGIN SOLUTION
q2_choice = "C"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q2_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 2, autograded part: q2_choice is one of A-D (hidden: the right letter)."""
assert q2_choice in {"A", "B", "C", "D"}, f"q2_choice must be one of 'A', 'B', 'C', 'D'; got {q2_choice!r}"
### BEGIN HIDDEN TESTS
assert q2_choice == "C"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q2_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** "Selective" means the SSM's step size $\Delta$ and its input and output
# maps $B$ and $C$ are computed from each token, so the recurrence changes from token to token.
# A large $\Delta$ lets a token overwrite the state (focus on it), a small one lets the state
# pass it by (ignore it). The model can therefore keep relevant content and drop filler
# regardless of where it appears, which fixed (LTI) SSMs cannot: it solves content-based tasks
# such as selective copying and induction heads, and reaches Transformer-level language
# modelling quality on discrete tokens.
#
# **Rubric (2 points).** 1 point: input-dependent $\Delta$/$B$/$C$ (parameters as functions of
# the token). 1 point: effect = content-based remembering/forgetting (filtering irrelevant
# tokens, context-dependent reasoning), better quality on language.
# ### END SOLUTION

# %% [markdown]
# ### Question 3
# - Mention the performance-related characteristics shown by the Mamba-3B model (e.g., comparison with same-size Transformer, comparison with 2x larger Transformer, etc.).
#
# Autograded part: which statement matches the Mamba paper's abstract (Gu & Dao 2023)? Set
# `q3_choice`.
#
# * **A.** Mamba-3B matches Transformers of the same size but is 5x slower at inference.
# * **B.** Mamba-3B outperforms Transformers of the same size and matches Transformers twice its
#   size, with about 5x higher inference throughput than Transformers.
# * **C.** Mamba-3B matches Transformers ten times its size.
# * **D.** Mamba-3B is worse than same-size Transformers but uses less memory.

# %% nbgrader={"grade": false, "grade_id": "q3_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q3_choice = "?"   # one of "A", "B", "C", "D"
### BEGIN SOLUTION
q3_choice = "B"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q3_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 3, autograded part: q3_choice is one of A-D (hidden: the right letter)."""
assert q3_choice in {"A", "B", "C", "D"}, f"q3_choice must be one of 'A', 'B', 'C', 'D'; got {q3_choice!r}"
### BEGIN HIDDEN TESTS
assert q3_choice == "B"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q3_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** In the paper (Gu & Dao 2023, abstract and §4.2) Mamba-3B has lower
# perplexity and better zero-shot scores than Transformers of the same size and is on par with
# Transformers of about twice its size (e.g. Pythia-6.9B on the zero-shot evaluations); its
# generation throughput is about 5x that of a same-size Transformer because it needs no KV
# cache and can use larger batches, and its cost grows linearly with sequence length.
#
# **Rubric (2 points).** 1 point: better than same-size Transformers and comparable to ones
# twice as large. 1 point: a speed property: ~5x inference throughput / linear scaling in
# sequence length.
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# * Mamba discretises $A$ with $\exp(\Delta A)$ and makes $\Delta, B, C$ functions of the token.
# * The recurrence can be computed as a loop, a $\log_2 L$-round associative scan, or a fused
#   kernel; the fused one wins because it moves $O(BLD)$ bytes instead of $O(BLDN \log L)$.
# * Decoding keeps a state of fixed size; the selective parameters let it choose what to keep.

# %%
# Parity record (scripts/parity.py compares a CPU run with a CUDA run): under
# `python -m autograder execute` these numbers are written beside the executed notebook; otherwise nothing is.
from archlab.parity import save_record

save_record(globals(), device, close=["yf", "ys_v"], loose=["curves"])
