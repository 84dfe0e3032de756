# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · RWKV: a Transformer you can run as an RNN
#
# **Mirrors:** §3 of the reading, *RWKV Architecture – Efficient Processing with RNN-like
# Structure* (RWKV-4, the generation of the reading's `RWKV/rwkv-4-169m-pile` example).
# **Estimated time:** 90 minutes.
#
# **How to start.** Run the cells from the top (*Run → Run All Cells* works once you have filled
# in the exercises). Every exercise is a cell that says `YOUR CODE HERE`: replace
# `raise NotImplementedError()` with your code, then run the test cell under it.
#
# **How to check your work.** The test cell under each exercise runs *visible* tests: a shape
# check and a small worked example. Passing them silently means those checks passed. When you
# submit, the grader also runs *hidden* tests (the Hugging Face RWKV blocks with the same
# weights, random shapes, very large keys, an empty state) that count towards your grade, so a
# passing visible test is necessary, not sufficient. Free-text answers are graded by your
# instructor.
#
# By the end you will be able to
# 1. write RWKV-4's token shift and its "WKV" operator, once as a recurrence that carries a
#    fixed-size state and once as an attention-like formula over the whole sequence, and show
#    the two agree;
# 2. keep the recurrence finite for any key size with the running-maximum trick;
# 3. build the time-mix and channel-mix blocks with the parameter names of the Hugging Face
#    implementation, so that real RWKV weights load into them;
# 4. generate text from the state alone and measure that its memory and its time per token do
#    not grow with the context, unlike a Transformer's KV cache.
#
# **Notation** (Peng et al. 2023, *RWKV: Reinventing RNNs for the Transformer Era*,
# arXiv:2305.13048, §3). `B` batch, `T` sequence length, `C` channels (model width). Per channel:
# $w$ is the decay (`time_decay`, stored so that one step multiplies by $e^{-e^{w}}$), $u$ the
# bonus of the current token (`time_first`), $k_t$, $v_t$ the key and value of token $t$, $r_t$
# the receptance. $\mu$ are the token-shift mixing weights (`time_mix_*`). Shapes are written in
# the comment of every line that changes one.

# %% tags=["parameters"]
DEVICE = "auto"   # "auto" picks CUDA when present, else CPU; or "cpu" / "cuda"
QUICK = True      # small sizes (CI and grading); False for the full-size experiment
SEED = 0

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math
import os
import tempfile

import matplotlib.pyplot as plt
import torch
import torch.nn as nn

from archlab import measure, models, plots, widgets
from archlab.checks import assert_close, assert_shape, check_shape
from archlab.device import pick_device

if os.environ.get("NBGRADER_EXECUTION"):
    QUICK = True  # the grader always runs the small version
device = pick_device(DEVICE)
from archlab import fastpaths  # noqa: E402
fastpaths.show(device)  # which implementation each fast path uses here, kept in the output
torch.manual_seed(SEED);

# %% [markdown]
# ## 1. What RWKV computes
#
# A Transformer layer lets token $t$ read every earlier token through softmax attention; the
# price is a KV cache that grows with $t$. RWKV-4 keeps the idea "a weighted average of past
# values, weighted by how well their keys score" but makes the weight of a past token depend
# on its key and on **how long ago** it was, not on the current token's query:
#
# $$
# wkv_t = \frac{\sum_{i=1}^{t-1} e^{-(t-1-i)\,e^{w} + k_i}\, v_i \;+\; e^{u + k_t}\, v_t}
#              {\sum_{i=1}^{t-1} e^{-(t-1-i)\,e^{w} + k_i} \;+\; e^{u + k_t}}
# $$
#
# (paper eq. 14, per channel; the paper writes the decay as $w$, Hugging Face stores
# $w_{\text{stored}}$ with $e^{w_{\text{stored}}}$ in its place so that the decay is always
# positive). The immediately preceding token has weight $e^{k_{t-1}}$, the one before
# $e^{-e^w} e^{k_{t-2}}$, and so on: each step back multiplies by $e^{-e^{w}} \in (0, 1)$.
# The current token instead gets the separate bonus $u$.
#
# Because the decay is a fixed factor per step, numerator and denominator can be updated with
# one multiply-add each per token: an RNN with a state of two numbers per channel. Because the
# weights are a fixed function of positions and keys, they can also be written as a $T\times T$
# matrix and applied to all tokens at once: a (causal, query-free) attention, which is how RWKV
# trains in parallel. You will write both forms.
#
# Before mixing over time, every block also mixes each token with its predecessor
# (**token shift**): the inputs to the key, value and receptance projections are
# $\mu \odot x_t + (1-\mu) \odot x_{t-1}$ with a learned $\mu$ per channel.
#
# ## 2. Exercise: token shift
#
# Write `token_shift(x)`: `x` is `(B, T, C)`; return the sequence delayed by one step, with
# zeros at the first position (there is no token before the first). The result has the shape
# of `x`.

# %% nbgrader={"grade": false, "grade_id": "token_shift", "locked": false, "schema_version": 3, "solution": true, "task": false}
def token_shift(x):
    """x (B, T, C) -> (B, T, C) with out[:, 0] = 0 and out[:, t] = x[:, t-1]."""
    check_shape(x, ("B", "T", "C"), "x")
    ### BEGIN SOLUTION
    zeros = torch.zeros_like(x[:, :1])                       # (B, 1, C)
    return torch.cat([zeros, x[:, :-1]], dim=1)              # (B, T, C)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_token_shift", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""token_shift: shape kept, a worked example; hidden: the ZeroPad2d the Hugging Face blocks use, T = 1, dtypes and gradients."""
xs = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])     # (B=1, T=3, C=2)
shifted = token_shift(xs)
assert_shape(shifted, (1, 3, 2), "token_shift(x)")
assert_close(shifted, torch.tensor([[[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]]]), name="token_shift of the worked example")
### BEGIN HIDDEN TESTS
pad = nn.ZeroPad2d((0, 0, 1, -1))                              # what RwkvSelfAttention.time_shift does
g = torch.Generator().manual_seed(31)
for B_, T_, C_ in [(1, 1, 4), (2, 5, 3), (3, 9, 16), (1, 2, 1)]:
    x = torch.randn(B_, T_, C_, generator=g)
    got = token_shift(x)
    assert_shape(got, (B_, T_, C_), "token_shift(x)")
    assert torch.equal(got, pad(x)), f"token_shift differs from the reference for shape {(B_, T_, C_)}"
x64 = torch.randn(2, 4, 3, dtype=torch.float64)
assert token_shift(x64).dtype == torch.float64, "keep the input's dtype"
xg = torch.randn(2, 4, 3, requires_grad=True)
token_shift(xg).sum().backward()
assert_close(xg.grad, torch.cat([torch.ones(2, 3, 3), torch.zeros(2, 1, 3)], 1), name="gradient of token_shift")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Exercise: the WKV recurrence, kept finite
#
# Read the formula as two running sums per channel, $a_{t}$ (numerator) and $b_{t}$
# (denominator) over the tokens **before** $t$:
#
# 1. output: $wkv_t = \dfrac{a_{t-1} + e^{u+k_t} v_t}{b_{t-1} + e^{u+k_t}}$;
# 2. update: $a_t = e^{-e^{w}} a_{t-1} + e^{k_t} v_t$, $\;b_t = e^{-e^{w}} b_{t-1} + e^{k_t}$,
#    starting from $a_0 = b_0 = 0$.
#
# Written like this it overflows: in float32 $e^{k}$ is `inf` once $k > 88$, and trained models
# do produce large keys. The fix (used by the official code and by Hugging Face) stores the
# sums divided by $e^{p}$, where $p$ is the largest exponent seen so far, and keeps $p$ in the
# state: the state is $(\tilde a, \tilde b, p)$ with $a = \tilde a\, e^{p}$, $b = \tilde b\, e^{p}$.
# Each time two terms are added, subtract the larger exponent first:
#
# * output: $q = \max(p, u + k_t)$, $e_1 = e^{p - q}$, $e_2 = e^{u + k_t - q}$,
#   $wkv_t = \dfrac{e_1 \tilde a + e_2 v_t}{e_1 \tilde b + e_2}$;
# * update: $q' = \max(p - e^{w}, k_t)$, $e_1 = e^{p - e^{w} - q'}$, $e_2 = e^{k_t - q'}$,
#   $\tilde a \leftarrow e_1 \tilde a + e_2 v_t$, $\tilde b \leftarrow e_1 \tilde b + e_2$,
#   $p \leftarrow q'$.
#
# Every exponent is now $\le 0$, so nothing overflows. The empty state is
# $\tilde a = \tilde b = 0$ and $p = -10^{38}$ (a stand-in for $-\infty$ that keeps $e_1 = 0$
# without producing `nan`).
#
# Write `wkv_recurrent(w, u, k, v, state=None, return_state=False)`:
#
# * `w`, `u` are `(C,)` as Hugging Face stores them (`time_decay`, `time_first`); `k`, `v` are
#   `(B, T, C)`;
# * `state` is `None` (empty) or a tuple `(num, den, max)` of three `(B, C)` tensors:
#   $(\tilde a, \tilde b, p)$ after the tokens seen so far (Hugging Face's layout);
# * return `wkv (B, T, C)`, or `(wkv, (num, den, max))` when `return_state=True`.
#
# Do the arithmetic in float32 or wider (`k.float()` for half-precision inputs), and loop over
# `T` with whole `(B, C)` tensors at each step. The given `check_wkv_inputs` rejects shapes that
# do not fit.

# %% nbgrader={"grade": false, "grade_id": "given_wkv_checks", "locked": true, "schema_version": 3, "solution": false, "task": false}
def check_wkv_inputs(w, u, k, v, state=None):
    """Raise a ValueError naming the expected shapes if w, u (C,), k, v (B, T, C), state do not fit."""
    sizes = {}
    check_shape(k, ("B", "T", "C"), "k", sizes)
    check_shape(v, ("B", "T", "C"), "v", sizes)
    check_shape(w, ("C",), "w (time_decay)", sizes)
    check_shape(u, ("C",), "u (time_first)", sizes)
    if state is not None:
        if not isinstance(state, (tuple, list)) or len(state) != 3:
            raise ValueError("state must be None or a tuple (num, den, max) of three (B, C) tensors")
        for name, s in zip(("num", "den", "max"), state):
            check_shape(s, ("B", "C"), f"state {name}", sizes)


def empty_wkv_state(B, C, device=None):
    """The state before any token: num = den = 0, max = -1e38 (stands in for minus infinity)."""
    zeros = torch.zeros(B, C, device=device)                  # (B, C)
    return zeros, zeros.clone(), torch.full((B, C), -1e38, device=device)


# %% nbgrader={"grade": false, "grade_id": "wkv_recurrent", "locked": false, "schema_version": 3, "solution": true, "task": false}
def wkv_recurrent(w, u, k, v, state=None, return_state=False):
    """RWKV-4's WKV as an RNN in the running-max form (paper eq. 14; Hugging Face's CPU path).

    w, u (C,); k, v (B, T, C); state None or (num, den, max) each (B, C)
    -> wkv (B, T, C), or (wkv, (num, den, max)) with return_state=True.
    """
    check_wkv_inputs(w, u, k, v, state)
    ### BEGIN SOLUTION
    B, T, C = k.shape
    if state is None:
        state = empty_wkv_state(B, C, device=k.device)
    num, den, mx = (s.float() for s in state)                 # each (B, C)
    decay = -torch.exp(w.float())                              # (C,) log of the per-step factor
    u = u.float()
    out = torch.empty(B, T, C, device=k.device, dtype=torch.promote_types(k.dtype, torch.float32))
    for t in range(T):
        kt, vt = k[:, t].float(), v[:, t].float()              # each (B, C)
        # 1. output: past sums plus the current token with its bonus u
        q = torch.maximum(mx, u + kt)                          # (B, C)
        e1, e2 = torch.exp(mx - q), torch.exp(u + kt - q)
        out[:, t] = (e1 * num + e2 * vt) / (e1 * den + e2)
        # 2. update: decay the past one step, add the current token (no bonus)
        q = torch.maximum(mx + decay, kt)                      # (B, C)
        e1, e2 = torch.exp(mx + decay - q), torch.exp(kt - q)
        num, den, mx = e1 * num + e2 * vt, e1 * den + e2, q
    out = out.to(v.dtype) if v.dtype.is_floating_point else out
    return (out, (num, den, mx)) if return_state else out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_wkv_recurrent", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""wkv_recurrent: shape and a worked example; hidden: Hugging Face's CPU wkv with and without state, a float64 loop of the plain formula, keys large enough to overflow exp(), the empty state."""
# Worked example, one channel: decay factor 1/2 per step (w = log(log 2)), bonus e^u = 2, keys 0.
w1 = torch.tensor([math.log(math.log(2.0))])
u1 = torch.tensor([math.log(2.0)])
k1 = torch.zeros(1, 3, 1)
v1 = torch.tensor([[[1.0], [10.0], [100.0]]])                  # (B=1, T=3, C=1)
got1 = wkv_recurrent(w1, u1, k1, v1)
assert_shape(got1, (1, 3, 1), "wkv")
want1 = torch.tensor([[[1.0], [(1 + 2 * 10) / 3], [(0.5 * 1 + 10 + 2 * 100) / 3.5]]])
assert_close(got1, want1, name="wkv of the worked example", rtol=1e-5, atol=1e-5)
out_s, st = wkv_recurrent(w1, u1, k1, v1, return_state=True)
assert isinstance(st, tuple) and len(st) == 3, "with return_state=True return (wkv, (num, den, max))"
for _s in st:
    assert_shape(_s, (1, 1), "each state tensor")
### BEGIN HIDDEN TESTS
from transformers.models.rwkv.modeling_rwkv import rwkv_linear_attention_cpu


def _wkv_loop64(w, u, k, v):
    """The formula as written, in float64 with log-sum-exp: independent of the running max."""
    B, T, C = k.shape
    w, u, k, v = w.double(), u.double(), k.double(), v.double()
    out = torch.empty(B, T, C, dtype=torch.float64)
    for t in range(T):
        lags = torch.arange(t - 1, -1, -1, dtype=torch.float64)                   # (t,) = t-1-i
        logits = torch.cat([-lags[None, :, None] * torch.exp(w) + k[:, :t],       # (B, t, C)
                            (u + k[:, t])[:, None]], dim=1)                       # (B, t+1, C)
        out[:, t] = (torch.softmax(logits, dim=1) * v[:, :t + 1]).sum(1)          # (B, C)
    return out


def _real(state, ref_max):
    """num, den rescaled to a common exponent: compares states that use a different max."""
    num, den, mx = state
    scale = torch.exp(mx.double() - ref_max.double())
    return num.double() * scale, den.double() * scale


TOL32 = dict(rtol=2e-4, atol=2e-5)   # float32 against float64 / against HF float32
g = torch.Generator().manual_seed(303)
for trial, (B_, T_, C_) in enumerate([(1, 1, 1), (2, 7, 5), (3, 12, 8), (1, 20, 3)]):
    w = torch.randn(C_, generator=g) * 1.5 - 1.0
    u = torch.randn(C_, generator=g)
    k = torch.randn(B_, T_, C_, generator=g) * 2
    v = torch.randn(B_, T_, C_, generator=g)
    got = wkv_recurrent(w, u, k, v)
    assert_shape(got, (B_, T_, C_), "wkv")
    ref, _ = rwkv_linear_attention_cpu(w, u, k, v)
    assert_close(got, ref, name=f"wkv vs Hugging Face (trial {trial})", **TOL32)
    assert_close(got.double(), _wkv_loop64(w, u, k, v), name=f"wkv vs the plain formula in float64 (trial {trial})", **TOL32)
    # split the sequence: the state carries everything the second half needs
    cut = T_ // 2
    first, st1 = wkv_recurrent(w, u, k[:, :cut], v[:, :cut], return_state=True)
    second, st2 = wkv_recurrent(w, u, k[:, cut:], v[:, cut:], state=st1, return_state=True)
    assert_close(torch.cat([first, second], 1), got, name=f"wkv in two chunks with the state (trial {trial})", **TOL32)
    _, ref_state = rwkv_linear_attention_cpu(w, u, k, v, return_state=True)
    for name_, mine_, theirs_ in zip(("num", "den"), _real(st2, ref_state[2]), ref_state[:2]):
        assert_close(mine_, theirs_.double(), name=f"state {name_} after T tokens vs Hugging Face (trial {trial})", **TOL32)
# the first position with the empty state: the bonus token alone, whatever w, u, k
w = torch.randn(6, generator=g)
k = torch.randn(2, 1, 6, generator=g) * 30
v = torch.randn(2, 1, 6, generator=g)
assert_close(wkv_recurrent(w, torch.randn(6, generator=g), k, v), v, name="wkv at the first position (empty state)")
# large keys: exp(k) overflows float32 at k > 88; the running-max form stays finite and exact
for scale in (60.0, 500.0):
    w = torch.randn(4, generator=g) - 1
    u = torch.randn(4, generator=g)
    k = torch.randn(2, 9, 4, generator=g) * scale
    v = torch.randn(2, 9, 4, generator=g)
    got = wkv_recurrent(w, u, k, v)
    assert bool(torch.isfinite(got).all()), f"wkv_recurrent is not finite for keys of size ~{scale}: subtract the running max"
    assert_close(got.double(), _wkv_loop64(w, u, k, v), name=f"wkv with keys of size ~{scale} vs float64", **TOL32)
# strong decay (w large) and almost none (w very negative)
for w_val in (3.0, -12.0):
    w = torch.full((3,), w_val)
    u = torch.zeros(3)
    k = torch.randn(1, 6, 3, generator=g)
    v = torch.randn(1, 6, 3, generator=g)
    assert_close(wkv_recurrent(w, u, k, v).double(), _wkv_loop64(w, u, k, v), name=f"wkv with w = {w_val}", **TOL32)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Exercise: the same thing as attention over all $T$
#
# For training, RWKV computes all outputs at once. Write the weights of token $i$ in the output
# of token $t$ as a $T \times T$ matrix of exponents, per channel:
#
# $$
# s_{t,i} = \begin{cases} -(t-1-i)\,e^{w} + k_i & i < t \\ u + k_t & i = t \\ -\infty & i > t \end{cases}
# \qquad wkv_t = \sum_i \operatorname{softmax}_i(s_{t,\cdot})\, v_i .
# $$
#
# A softmax over $i$ **is** the fraction in the formula, and `torch.softmax` subtracts the row
# maximum for you, so this form is stable too. Compare with notebook 01: the scores come from
# positions and keys, not from a query, and each channel has its own matrix.
#
# Write `wkv_parallel(w, u, k, v)` with the shapes of `wkv_recurrent` (no state), without a
# Python loop over `T`. It builds a `(B, C, T, T)` tensor, so it is for training-length
# sequences, not for decoding.

# %% nbgrader={"grade": false, "grade_id": "wkv_parallel", "locked": false, "schema_version": 3, "solution": true, "task": false}
def wkv_parallel(w, u, k, v):
    """RWKV-4's WKV as a causal, query-free attention over all T at once.

    w, u (C,); k, v (B, T, C) -> wkv (B, T, C)
    """
    check_wkv_inputs(w, u, k, v)
    ### BEGIN SOLUTION
    B, T, C = k.shape
    dt = torch.promote_types(k.dtype, torch.float32)
    w, u, k_, v_ = w.to(dt), u.to(dt), k.to(dt), v.to(dt)
    t = torch.arange(T, device=k.device)
    lag = (t[:, None] - 1 - t[None, :]).to(dt)                            # (T, T): t-1-i
    # 1. past tokens: decayed keys; the scores of token i do not depend on t except via the lag
    s = -lag[None, :, :] * torch.exp(w)[:, None, None] \
        + k_.transpose(1, 2)[:, :, None, :]                              # (B, C, T, T)
    # 2. the current token: bonus u instead of decay
    diag = (u[None, :] + k_).transpose(1, 2)                              # (B, C, T)
    s = s.masked_fill(t[:, None] == t[None, :], 0.0) + torch.diag_embed(diag)
    # 3. future tokens: -inf, then softmax over i and average the values
    s = s.masked_fill(t[None, :] > t[:, None], float("-inf"))             # (B, C, T, T)
    weights = torch.softmax(s, dim=-1)                                    # (B, C, T, T)
    out = torch.einsum("bcti, bic -> btc", weights, v_)                  # (B, T, C)
    return out.to(v.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_wkv_parallel", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""wkv_parallel: shape and the worked example; hidden: equals Hugging Face's wkv and a float64 loop over random shapes, large keys stay finite, no Python loop over T."""
got1 = wkv_parallel(w1, u1, k1, v1)
assert_shape(got1, (1, 3, 1), "wkv")
assert_close(got1, want1, name="wkv_parallel of the worked example", rtol=1e-5, atol=1e-5)
### BEGIN HIDDEN TESTS
from transformers.models.rwkv.modeling_rwkv import rwkv_linear_attention_cpu

TOL32 = dict(rtol=2e-4, atol=2e-5)
g = torch.Generator().manual_seed(404)
for trial in range(8):
    B_ = int(torch.randint(1, 4, (1,), generator=g))
    T_ = int(torch.randint(1, 24, (1,), generator=g))
    C_ = int(torch.randint(1, 10, (1,), generator=g))
    w = torch.randn(C_, generator=g) * 1.5 - 1.0
    u = torch.randn(C_, generator=g)
    k = torch.randn(B_, T_, C_, generator=g) * 2
    v = torch.randn(B_, T_, C_, generator=g)
    got = wkv_parallel(w, u, k, v)
    assert_shape(got, (B_, T_, C_), f"wkv_parallel for shape {(B_, T_, C_)}")
    ref, _ = rwkv_linear_attention_cpu(w, u, k, v)
    assert_close(got, ref, name=f"wkv_parallel vs Hugging Face, shape {(B_, T_, C_)}", **TOL32)
    assert_close(got, wkv_recurrent(w, u, k, v), name=f"wkv_parallel vs your wkv_recurrent, shape {(B_, T_, C_)}", **TOL32)
# large keys (and a float64 reference by log-sum-exp)
for scale in (60.0, 500.0):
    w = torch.randn(4, generator=g) - 1
    u = torch.randn(4, generator=g)
    k = torch.randn(2, 9, 4, generator=g) * scale
    v = torch.randn(2, 9, 4, generator=g)
    got = wkv_parallel(w, u, k, v)
    assert bool(torch.isfinite(got).all()), f"wkv_parallel is not finite for keys of size ~{scale}: let softmax (or a max) normalise"
    ref64, _ = rwkv_linear_attention_cpu(w.double(), u.double(), k.double(), v.double())
    assert_close(got.double(), ref64, name=f"wkv_parallel with keys of size ~{scale} vs float64", **TOL32)
# no Python loop over T: the number of torch calls must not grow with T
from torch.overrides import TorchFunctionMode


class _Count(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


calls = []
for T_ in (4, 32):
    wq, uq = torch.randn(3), torch.randn(3)
    kq, vq = torch.randn(1, T_, 3), torch.randn(1, T_, 3)
    with _Count() as counter:
        wkv_parallel(wq, uq, kq, vq)
    calls.append(counter.n)
assert calls[1] < calls[0] + 10, f"wkv_parallel makes {calls[0]} torch calls at T=4 and {calls[1]} at T=32: no loop over T"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Exercise: the time-mix and channel-mix blocks
#
# An RWKV-4 block is `x = x + TimeMix(LN(x))`, then `x = x + ChannelMix(LN(x))` (paper §3.1,
# Fig. 2). With $x'_t$ the token before ($x'_1 = 0$, or the last token of the previous call):
#
# **TimeMix** (mixes over time, plays the role of attention)
# 1. $x^{k}_t = \mu_k x_t + (1-\mu_k) x'_t$, likewise $x^{v}_t$ with $\mu_v$ and $x^{r}_t$ with $\mu_r$;
# 2. $k_t = W_k x^{k}_t$, $v_t = W_v x^{v}_t$, $r_t = \sigma(W_r x^{r}_t)$;
# 3. $wkv_t$ from your WKV with `time_decay` and `time_first`;
# 4. output $W_o (r_t \odot wkv_t)$: the receptance gates how much of the mixed past gets through.
#
# **ChannelMix** (mixes over channels, plays the role of the MLP)
# 1. $x^{k}_t = \mu_k x_t + (1-\mu_k) x'_t$, $x^{r}_t = \mu_r x_t + (1-\mu_r) x'_t$;
# 2. $k_t = \max(W_k x^{k}_t, 0)^2$ (squared ReLU), $r_t = \sigma(W_r x^{r}_t)$;
# 3. output $r_t \odot W_v k_t$.
#
# The parameters are created for you in `__init__`, with the Hugging Face names (so
# `load_state_dict` of a real RWKV layer works). Write
#
# * `forward(x)`: parallel mode over `x (B, T, C)` with an empty past, using `token_shift` and
#   `wkv_parallel`; returns `(B, T, C)`;
# * `step(x_t, state=None)`: recurrent mode for **one** token `x_t (B, 1, C)`, using
#   `wkv_recurrent`. The state is Hugging Face's per-layer layout: for `TimeMix` the tuple
#   `(x_prev, num, den, max)` of four `(B, C)` tensors (`x_prev` is the previous token's input
#   to this block), for `ChannelMix` the single `(B, C)` tensor `x_prev`; `None` means empty
#   (use zeros for `x_prev` and `empty_wkv_state` for the rest). Return `(y_t (B, 1, C), state)`.
#
# Stepping through a sequence must give the same outputs as `forward`.

# %% nbgrader={"grade": false, "grade_id": "TimeMix", "locked": false, "schema_version": 3, "solution": true, "task": false}
class TimeMix(nn.Module):
    """RWKV-4 time mixing (paper §3.1.1); parameter names as in Hugging Face's RwkvSelfAttention."""

    def __init__(self, d_model):
        super().__init__()
        C = self.d_model = d_model
        ramp = torch.arange(C) / max(C - 1, 1)                               # (C,) 0 .. 1
        # decay from fast (w = 1: factor 0.07 a step) to slow (w = -6: 0.998 a step)
        self.time_decay = nn.Parameter(1.0 - 7.0 * ramp)                     # (C,)  w
        self.time_first = nn.Parameter(torch.full((C,), math.log(0.5)))      # (C,)  u
        self.time_mix_key = nn.Parameter((0.9 - 0.6 * ramp).view(1, 1, C))  # (1, 1, C)  mu_k
        self.time_mix_value = nn.Parameter((0.8 - 0.4 * ramp).view(1, 1, C))
        self.time_mix_receptance = nn.Parameter((0.7 - 0.5 * ramp).view(1, 1, C))
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.receptance = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)

    def forward(self, x):
        check_shape(x, ("B", "T", self.d_model), "x")
        ### BEGIN SOLUTION
        r, k, v = self._rkv(x, token_shift(x))                                 # each (B, T, C)
        wkv = wkv_parallel(self.time_decay, self.time_first, k, v)            # (B, T, C)
        return self.output(r * wkv)                                           # (B, T, C)
        ### END SOLUTION

    def step(self, x_t, state=None):
        check_shape(x_t, ("B", 1, self.d_model), "x_t")
        ### BEGIN SOLUTION
        B, _, C = x_t.shape
        if state is None:
            state = (torch.zeros(B, C, device=x_t.device, dtype=x_t.dtype),
                     *empty_wkv_state(B, C, device=x_t.device))
        x_prev, wkv_state = state[0], tuple(state[1:])
        r, k, v = self._rkv(x_t, x_prev[:, None, :])                          # each (B, 1, C)
        wkv, wkv_state = wkv_recurrent(self.time_decay, self.time_first, k, v,
                                       state=wkv_state, return_state=True)    # (B, 1, C)
        return self.output(r * wkv), (x_t[:, 0], *wkv_state)                  # (B, 1, C), state

    def _rkv(self, x, x_prev):
        """1.-2.: token-shift interpolation, then the three projections."""
        mix = lambda mu: x * mu + x_prev * (1 - mu)                            # (B, T, C)
        k = self.key(mix(self.time_mix_key))                                   # (B, T, C)
        v = self.value(mix(self.time_mix_value))                               # (B, T, C)
        r = torch.sigmoid(self.receptance(mix(self.time_mix_receptance)))     # (B, T, C)
        return r, k, v
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_TimeMix", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""TimeMix: parameter names and shapes, forward and step shapes; hidden: Hugging Face's RwkvSelfAttention with copied weights in parallel mode and step by step with its state, step = forward."""
torch.manual_seed(0)
tm = TimeMix(8)
names = {n for n, _ in tm.named_parameters()}
want_names = {"time_decay", "time_first", "time_mix_key", "time_mix_value", "time_mix_receptance",
              "key.weight", "value.weight", "receptance.weight", "output.weight"}
assert names == want_names, f"TimeMix parameters must be exactly {sorted(want_names)}; got {sorted(names)}"
xv = torch.randn(2, 5, 8)
assert_shape(tm(xv), (2, 5, 8), "TimeMix forward")
y0, s0 = tm.step(xv[:, :1])
assert_shape(y0, (2, 1, 8), "TimeMix step output")
assert isinstance(s0, tuple) and len(s0) == 4, "TimeMix.step returns (y_t, (x_prev, num, den, max))"
for _s in s0:
    assert_shape(_s, (2, 8), "each TimeMix state tensor")
### BEGIN HIDDEN TESTS
from transformers import RwkvConfig
from transformers.models.rwkv.modeling_rwkv import RwkvSelfAttention

TOL32 = dict(rtol=2e-4, atol=2e-5)


def _randomise(module, g):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("time_mix"):
                p.copy_(torch.rand(p.shape, generator=g))                    # mu in [0, 1]
            elif name == "time_decay":
                p.copy_(torch.randn(p.shape, generator=g) - 1)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.dim() == 1 else 0.4))


g = torch.Generator().manual_seed(505)
for B_, T_, C_ in [(1, 1, 4), (2, 6, 8), (3, 11, 16)]:
    mine = TimeMix(C_)
    _randomise(mine, g)
    cfg = RwkvConfig(hidden_size=C_, attention_hidden_size=C_, intermediate_size=4 * C_,
                     num_hidden_layers=1, rescale_every=0, context_length=64)
    ref = RwkvSelfAttention(cfg, layer_id=0)
    ref.load_state_dict(mine.state_dict())
    x = torch.randn(B_, T_, C_, generator=g)
    with torch.no_grad():
        y = mine(x)
        y_ref, _ = ref(x)
    assert_shape(y, (B_, T_, C_), "TimeMix forward")
    assert_close(y, y_ref, name=f"TimeMix forward vs RwkvSelfAttention, shape {(B_, T_, C_)}", **TOL32)
    # recurrent mode with Hugging Face's state: list of 5 (B, C, n_layer) tensors, we use [1..4].
    # (HF's one-token path broadcasts (B, C) against (B, 1, C) and is only right for B = 1, so the
    # reference steps through each sequence of the batch on its own.)
    hf_states = []
    for b in range(B_):
        hf_states.append([torch.zeros(1, C_, 1) for _ in range(5)])
        hf_states[b][4] -= 1e30
    state, ys = None, []
    with torch.no_grad():
        for t in range(T_):
            y_t, state = mine.step(x[:, t:t + 1], state)
            assert_shape(y_t, (B_, 1, C_), f"step {t} output")
            assert isinstance(state, tuple) and len(state) == 4, "TimeMix.step returns (y_t, (x_prev, num, den, max))"
            r_t = torch.cat([ref(x[b:b + 1, t:t + 1], state=hf_states[b], use_cache=True)[0] for b in range(B_)])
            hf_state = [torch.cat([hf_states[b][i] for b in range(B_)]) for i in range(5)]
            assert_close(y_t, r_t, name=f"TimeMix step {t} vs RwkvSelfAttention with state", **TOL32)
            assert_close(state[0], hf_state[1][:, :, 0], name=f"x_prev after step {t}", **TOL32)
            scale = torch.exp(state[3].double() - hf_state[4][:, :, 0].double())
            assert_close(state[1].double() * scale, hf_state[2][:, :, 0].double(), name=f"num after step {t}", **TOL32)
            assert_close(state[2].double() * scale, hf_state[3][:, :, 0].double(), name=f"den after step {t}", **TOL32)
            ys.append(y_t)
    assert_close(torch.cat(ys, 1), y, name="TimeMix step by step vs forward", **TOL32)
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "ChannelMix", "locked": false, "schema_version": 3, "solution": true, "task": false}
class ChannelMix(nn.Module):
    """RWKV-4 channel mixing (paper §3.1.2); parameter names as in Hugging Face's RwkvFeedForward."""

    def __init__(self, d_model, hidden):
        super().__init__()
        C = self.d_model = d_model
        ramp = torch.arange(C) / max(C - 1, 1)                               # (C,) 0 .. 1
        self.time_mix_key = nn.Parameter((0.9 - 0.6 * ramp).view(1, 1, C))  # (1, 1, C)
        self.time_mix_receptance = nn.Parameter((0.9 - 0.6 * ramp).view(1, 1, C))
        self.key = nn.Linear(C, hidden, bias=False)                          # C -> hidden
        self.receptance = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(hidden, C, bias=False)                        # hidden -> C

    def forward(self, x):
        check_shape(x, ("B", "T", self.d_model), "x")
        ### BEGIN SOLUTION
        return self._mix(x, token_shift(x))                                    # (B, T, C)
        ### END SOLUTION

    def step(self, x_t, state=None):
        check_shape(x_t, ("B", 1, self.d_model), "x_t")
        ### BEGIN SOLUTION
        x_prev = torch.zeros_like(x_t[:, 0]) if state is None else state     # (B, C)
        return self._mix(x_t, x_prev[:, None, :]), x_t[:, 0]                  # (B, 1, C), (B, C)

    def _mix(self, x, x_prev):
        xk = x * self.time_mix_key + x_prev * (1 - self.time_mix_key)        # (B, T, C)
        xr = x * self.time_mix_receptance + x_prev * (1 - self.time_mix_receptance)
        k = torch.relu(self.key(xk)) ** 2                                     # (B, T, hidden)
        return torch.sigmoid(self.receptance(xr)) * self.value(k)             # (B, T, C)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_ChannelMix", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""ChannelMix: parameter names, forward and step shapes; hidden: Hugging Face's RwkvFeedForward with copied weights, parallel and step by step with its state, step = forward."""
torch.manual_seed(0)
cm = ChannelMix(8, 32)
names = {n for n, _ in cm.named_parameters()}
want_names = {"time_mix_key", "time_mix_receptance", "key.weight", "receptance.weight", "value.weight"}
assert names == want_names, f"ChannelMix parameters must be exactly {sorted(want_names)}; got {sorted(names)}"
xv = torch.randn(2, 5, 8)
assert_shape(cm(xv), (2, 5, 8), "ChannelMix forward")
y0, s0 = cm.step(xv[:, :1])
assert_shape(y0, (2, 1, 8), "ChannelMix step output")
assert_shape(s0, (2, 8), "ChannelMix state (x_prev)")
### BEGIN HIDDEN TESTS
from transformers import RwkvConfig
from transformers.models.rwkv.modeling_rwkv import RwkvFeedForward

TOL32 = dict(rtol=2e-4, atol=2e-5)
g = torch.Generator().manual_seed(606)
for B_, T_, C_, F_ in [(1, 1, 4, 8), (2, 6, 8, 32), (3, 9, 16, 24)]:
    mine = ChannelMix(C_, F_)
    with torch.no_grad():
        for name, p in mine.named_parameters():
            p.copy_(torch.rand(p.shape, generator=g) if name.startswith("time_mix")
                    else torch.randn(p.shape, generator=g) * 0.4)
    cfg = RwkvConfig(hidden_size=C_, attention_hidden_size=C_, intermediate_size=F_,
                     num_hidden_layers=1, rescale_every=0, context_length=64)
    ref = RwkvFeedForward(cfg, layer_id=0)
    ref.load_state_dict(mine.state_dict())
    x = torch.randn(B_, T_, C_, generator=g)
    with torch.no_grad():
        y = mine(x)
        y_ref, _ = ref(x)
    assert_shape(y, (B_, T_, C_), "ChannelMix forward")
    assert_close(y, y_ref, name=f"ChannelMix forward vs RwkvFeedForward, shape {(B_, T_, C_)}", **TOL32)
    hf_states = [[torch.zeros(1, C_, 1) for _ in range(5)] for b in range(B_)]   # one per sequence, as above
    state, ys = None, []
    with torch.no_grad():
        for t in range(T_):
            y_t, state = mine.step(x[:, t:t + 1], state)
            assert_shape(y_t, (B_, 1, C_), f"step {t} output")
            r_t = torch.cat([ref(x[b:b + 1, t:t + 1], state=hf_states[b])[0] for b in range(B_)])
            hf_state = [torch.cat([hf_states[b][i] for b in range(B_)]) for i in range(5)]
            assert_close(y_t, r_t, name=f"ChannelMix step {t} vs RwkvFeedForward with state", **TOL32)
            assert_close(state, hf_state[0][:, :, 0], name=f"x_prev after step {t}", **TOL32)
            ys.append(y_t)
    assert_close(torch.cat(ys, 1), y, name="ChannelMix step by step vs forward", **TOL32)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Your blocks run a real RWKV model
#
# Because the names match, the layers of a Hugging Face RWKV model load straight into your
# blocks. Below, a tiny random-weight RWKV (4 layers of width 64, from `archlab.models`) is
# recomputed with your `TimeMix` and `ChannelMix`, once in parallel and once token by token,
# and compared with the library's own forward. (The model applies one extra LayerNorm,
# `pre_ln`, before the first block, and `ln_out` plus the output head after the last.)

# %%
rwkv = models.build_model("rwkv", "tiny", seed=SEED)
cfg = rwkv.config
blocks_mine = []
for block in rwkv.rwkv.blocks:
    tm_ = TimeMix(cfg.hidden_size)
    tm_.load_state_dict(block.attention.state_dict())
    cm_ = ChannelMix(cfg.hidden_size, cfg.intermediate_size)
    cm_.load_state_dict(block.feed_forward.state_dict())
    blocks_mine.append((block, tm_, cm_))


def my_logits_parallel(ids):
    h = rwkv.rwkv.blocks[0].pre_ln(rwkv.rwkv.embeddings(ids))                 # (B, T, C)
    for block, tm_, cm_ in blocks_mine:
        h = h + tm_(block.ln1(h))                                              # (B, T, C)
        h = h + cm_(block.ln2(h))                                              # (B, T, C)
    return rwkv.head(rwkv.rwkv.ln_out(h))                                      # (B, T, vocab)


def my_logits_step(ids):
    states, outs = [(None, None)] * len(blocks_mine), []
    for t in range(ids.shape[1]):
        h = rwkv.rwkv.blocks[0].pre_ln(rwkv.rwkv.embeddings(ids[:, t:t + 1]))  # (B, 1, C)
        for j, (block, tm_, cm_) in enumerate(blocks_mine):
            a, s_att = tm_.step(block.ln1(h), states[j][0])
            h = h + a
            f, s_ffn = cm_.step(block.ln2(h), states[j][1])
            h = h + f
            states[j] = (s_att, s_ffn)
        outs.append(rwkv.head(rwkv.rwkv.ln_out(h)))                            # (B, 1, vocab)
    return torch.cat(outs, 1), states


ids = torch.randint(3, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(SEED))
with torch.no_grad():
    ref_out = rwkv(ids, use_cache=True)
    par, (step, my_states) = my_logits_parallel(ids), my_logits_step(ids)
print("max |your parallel logits - HF| =", float((par - ref_out.logits).abs().max()))
print("max |your step-by-step logits - HF| =", float((step - ref_out.logits).abs().max()))
print("HF state: 5 tensors of shape", tuple(ref_out.state[0].shape), "= (B, C, n_layer)")

# %% [markdown]
# ## 7. The reading's example, run offline
#
# The reading loads RWKV-4-169M from the Hugging Face Hub and generates 20 tokens. This course
# runs without internet, so asking for the hub id gives a clear error instead (caught and
# printed here), which says how to fetch the weights on a connected machine:

# %%
try:
    models.load("RWKV/rwkv-4-169m-pile")
except models.ModelNotAvailableOffline as err:
    print("ModelNotAvailableOffline:", err)

# %% [markdown]
# The same loading code works on a **local folder**. We save the tiny random RWKV from §6 with
# `archlab.models.save` and load it back with the reading's `AutoModelForCausalLM`. Its
# tokenizer cannot come from the hub either, and the real one (GPT-NeoX's 50,277-token BPE)
# would not fit our 256-token toy vocabulary anyway, so a byte-level tokenizer stands in: one
# id per UTF-8 byte. Ids 0, 1, 2 (pad, begin, end in the tiny config) are control bytes that
# ordinary text never contains. The weights are random, so the continuation is noise; the
# point is that the code path is the real one.

# %%
class ByteTokenizer:
    """Text <-> UTF-8 bytes, with the two calls the reading's example makes."""

    special_ids = (0, 1, 2)

    def __call__(self, text, return_tensors="pt"):
        ids = torch.tensor([list(text.encode("utf-8"))])                      # (1, n_bytes)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def decode(self, ids, skip_special_tokens=True):
        ids = [int(i) for i in ids if not (skip_special_tokens and int(i) in self.special_ids)]
        return bytes(ids).decode("utf-8", errors="replace")


from transformers.utils import logging as hf_logging

hf_logging.disable_progress_bar()                                              # no save/load progress bars
folder = models.save(rwkv, os.path.join(tempfile.mkdtemp(), "rwkv-tiny"))

# %%
from transformers import AutoModelForCausalLM

# 1. Load tokenizer and model (a local folder instead of "RWKV/rwkv-4-169m-pile")
tokenizer = ByteTokenizer()
model = AutoModelForCausalLM.from_pretrained(folder)

# 2. Define input prompt
prompt = "Once upon a time, "
inputs = tokenizer(prompt, return_tensors="pt")

# 3. Generate text
outputs = model.generate(inputs["input_ids"], max_new_tokens=20, do_sample=False)
generated_text = tokenizer.decode(outputs[0], skip_special_tokens=True)
print(repr(generated_text))

# %% [markdown]
# **A trap when comparing weights.** Hugging Face's RWKV divides the output weights of later
# layers by powers of two *in place* the first time the model runs a forward in eval mode (and
# multiplies them back in train mode) when `config.rescale_every > 0`; the released checkpoints
# set it to 6. It guards float16 against overflow, but it silently changes the weights you just
# loaded, saved or compared. `archlab.models` sets `rescale_every=0`; here is what happens
# otherwise:

# %%
trap = models.build_model("rwkv", "tiny", seed=SEED, rescale_every=2)
w_before = trap.rwkv.blocks[2].attention.output.weight.detach().clone()
with torch.no_grad():
    trap(ids[:, :4])                                                           # first eval forward
w_after = trap.rwkv.blocks[2].attention.output.weight.detach()
print("layer 2 output weight after / before the first forward:",
      float((w_after / w_before).median()))

# %% [markdown]
# ## 8. Experiment: generating from the state alone
#
# In recurrent mode the model needs nothing from the past except `out.state`: five
# `(B, C, n_layer)` tensors (the channel-mix shift, the time-mix shift, and the WKV's num, den
# and max). Below, a greedy loop feeds one token at a time together with that state, and we
# record the bytes held for the past after each token with `archlab.measure.tensor_bytes`. A
# GPT-2 of the same width and depth (`archlab.models` "tiny": 4 layers of width 64) does the
# same with its KV cache. First, the loop reproduces `generate`:

# %%
gpt = models.build_model("gpt2", "tiny", seed=SEED, n_positions=4096)
assert (gpt.config.n_embd, gpt.config.n_layer) == (cfg.hidden_size, cfg.num_hidden_layers)


@torch.no_grad()
def greedy_decode(net, prompt_ids, n_new, kind):
    """Prompt in one forward, then one token at a time with only the state / KV cache.

    Returns (token ids (1, P + n_new), bytes of the state/cache after each new token).
    """
    out = net(prompt_ids, use_cache=True)
    past = out.state if kind == "rwkv" else out.past_key_values
    ids_, past_bytes = prompt_ids, []
    for _ in range(n_new):
        nxt = out.logits[:, -1:].argmax(-1)                                    # (1, 1)
        ids_ = torch.cat([ids_, nxt], 1)                                       # (1, t+1)
        if kind == "rwkv":
            out = net(nxt, state=past, use_cache=True)
            past = out.state
        else:
            out = net(nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
        past_bytes.append(measure.tensor_bytes(past))
    return ids_, past_bytes


mine_ids, _ = greedy_decode(model, inputs["input_ids"], 20, "rwkv")
print("state-only loop equals model.generate:", torch.equal(mine_ids, outputs))

# %%
n_gen = 256 if QUICK else 2048
start = torch.tensor([[1]])                                                   # begin-of-text id
_, rwkv_bytes = greedy_decode(rwkv, start, n_gen, "rwkv")
_, gpt_bytes = greedy_decode(gpt, start, n_gen, "gpt2")
T_axis = list(range(2, n_gen + 2))                                            # tokens seen so far
state_formula = 5 * cfg.hidden_size * cfg.num_hidden_layers * 4               # 5 vectors a layer, float32
print(f"RWKV state after {T_axis[0]} and {T_axis[-1]} tokens: {rwkv_bytes[0]} and {rwkv_bytes[-1]} bytes "
      f"(5 x C x layers x 4 bytes = {state_formula})")
print(f"GPT-2 KV cache after {T_axis[0]} and {T_axis[-1]} tokens: {gpt_bytes[0]} and {gpt_bytes[-1]} bytes")
print(f"bytes per token of context: RWKV {rwkv_bytes[-1] / T_axis[-1]:.1f}, GPT-2 {gpt_bytes[-1] / T_axis[-1]:.1f}")

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(T_axis, gpt_bytes, label="GPT-2 tiny: KV cache")
ax.plot(T_axis, rwkv_bytes, label="RWKV tiny: state")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("tokens seen (T)")
ax.set_ylabel("bytes kept for the past")
ax.set_title("Memory for the past during generation (4 layers, width 64, float32)")
ax.legend()
plt.show()

# %% [markdown]
# Now the time of one decode step after a context of $T$ tokens: the RWKV step touches a state of
# fixed size, the GPT-2 step attends to $T$ cached keys. We time the step alone
# (`archlab.measure.time_fn`: warm-up calls, then the median), restoring the state or cropping
# the cache after each call so every call sees the same context. At these tiny widths the fixed
# cost of a forward (Python, kernel launches) dominates, so expect the GPT-2 curve to rise only
# gently; `QUICK = False` goes to longer contexts.

# %%
contexts = [16, 64, 256] if QUICK else [64, 256, 1024, 4096 - 8]
step_time = {"RWKV tiny": [], "GPT-2 tiny": []}
tok = torch.tensor([[5]])
for T_ in contexts:
    prompt_T = torch.randint(3, cfg.vocab_size, (1, T_), generator=torch.Generator().manual_seed(T_))
    with torch.no_grad():
        st_T = rwkv(prompt_T, use_cache=True).state
        kv_T = gpt(prompt_T, use_cache=True).past_key_values

    def rwkv_step():
        with torch.no_grad():
            rwkv(tok, state=[s.clone() for s in st_T], use_cache=True)         # the model updates state in place

    def gpt_step():
        with torch.no_grad():
            gpt(tok, past_key_values=kv_T, use_cache=True)
        kv_T.crop(-1)                                                          # drop the appended token

    for label, fn in (("RWKV tiny", rwkv_step), ("GPT-2 tiny", gpt_step)):
        t = measure.time_fn(fn, warmup=2, repeat=5 if QUICK else 15, device=device, what=f"{label} step, T={T_}")
        step_time[label].append(t.median)
        print(t)

fig, ax = plt.subplots(figsize=(6.5, 4))
plots.scaling_plot({k: (contexts, v) for k, v in step_time.items()}, ax=ax,
                   xlabel="context length T", ylabel="seconds per decoded token",
                   title="One decode step after T tokens")
plt.show()

# %% [markdown]
# **What to look for.** The RWKV state is the same number of bytes after 2 tokens and after
# thousands: $5 \times C \times$ layers floats, whatever $T$. The KV cache grows by
# $2 \times C \times$ layers floats with every token (slope 1 on the log-log plot), so it
# overtakes the state after a handful of tokens. The step time of RWKV is flat; the GPT-2 step
# grows with $T$ once the attention over the cache is no longer negligible against the fixed
# cost (timings on a shared CPU are noisy; the memory figures are exact).
#
# At the reading's size: RWKV-4-169M has 12 layers of width 768, so its state per sequence is
# the number below, at any context length; a GPT-2-small-sized Transformer (12 layers of 768)
# holds the KV cache below after its full 1,024-token context:

# %%
rwkv169m_state = 5 * 768 * 12 * 4
gpt2_small_kv_1024 = 2 * 12 * 768 * 1024 * 4
print(f"RWKV-4-169M state: {rwkv169m_state / 1024:.0f} KiB (float32), at any T")
print(f"GPT-2 small KV cache at T = 1024: {gpt2_small_kv_1024 / 2**20:.0f} MiB (float32)")

# %% [markdown]
# **On model sizes.** The reading says open RWKV models range from "1.4 billion to 14 billion"
# parameters. The RWKV paper (Peng et al. 2023, arXiv:2305.13048, §4, where the model sizes
# are listed) trains RWKV-4 models from **169M** (the reading's own example) through 430M,
# 1.5B, 3B and 7B up to **14B** parameters, all on the Pile: the range starts at 169M, not
# 1.4B.
#
# ## 9. Explore: how far back does each channel look?
#
# Each channel forgets at its own rate: one step back multiplies a past token's weight by
# $e^{-e^{w}}$, so after $n$ steps it is $e^{-n e^{w}}$ and the weight halves every
# $\ln 2 / e^{w}$ tokens. Move the sliders to choose the range of $w$ spread over the channels
# (the tiny model's `time_decay` starts inside such a range) and see which channels are
# short-term and which keep tokens from hundreds of steps ago. The numbers above the plot are
# half-lives in tokens.

# %%
decay_explorer = widgets.rwkv_decay_explorer(n_channels=8)
decay_explorer

# %% [markdown]
# ## 10. Checkpoint questions
#
# Each question has an autograded part (a letter or numbers in a code cell) and a written
# answer your instructor grades. Two or three sentences are enough.
#
# ### Question 1
# - Explain what **limitations of Transformer** RWKV architecture was designed to solve. Also, how did it combine the **advantages of Transformer and RNN** respectively?
#
# Autograded part: which statement is right? Set `q1_choice` to one letter.
#
# * **A.** RWKV keeps softmax attention but stores its KV cache in 8 bits, which removes the
#   Transformer's memory problem.
# * **B.** RWKV trains one token at a time like an RNN but generates all tokens at once like a
#   Transformer.
# * **C.** RWKV targets attention's quadratic cost and the KV cache that grows with the context:
#   it trains over a whole sequence at once (the attention-like WKV form, like a Transformer)
#   and generates with a fixed-size state (the recurrent form, like an RNN).
# * **D.** RWKV makes every token attend to future tokens as well, which lets it train faster
#   than a causal Transformer.

# %% nbgrader={"grade": false, "grade_id": "q1_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q1_choice = "?"   # one of "A", "B", "C", "D"
### BEGIN SOLUTION
q1_choice = "C"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q1_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 1, autograded part: q1_choice is one of A-D (hidden: the right letter)."""
assert q1_choice in {"A", "B", "C", "D"}, f"q1_choice must be one of 'A', 'B', 'C', 'D'; got {q1_choice!r}"
### BEGIN HIDDEN TESTS
assert q1_choice == "C"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q1_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** A Transformer's attention costs $O(T^2)$ over a sequence, and when it
# generates it must keep and re-read a KV cache that grows with every token, so memory and time
# per token rise with the context. Classic RNNs have a fixed state and constant cost per token
# but must be trained step by step, which parallelises badly. RWKV replaces softmax attention by
# a weighted average whose weights depend only on keys and on an exponential decay with
# distance; that sum can be written as a masked matrix over all positions (parallel training
# like a Transformer) or as a running numerator/denominator (an RNN with constant memory and
# time per generated token).
#
# **Rubric (2 points).** 1 point: names the Transformer limitation (quadratic attention and/or
# the growing KV cache at inference). 1 point: parallel (attention-like) form for training and
# recurrent form with a fixed-size state for inference.
# ### END SOLUTION

# %% [markdown]
# ### Question 2
# - How does **RWKV's inference method** differ from Transformer, and what benefits does this provide (hint: KV cache vs hidden state)?
#
# Autograded part, from your measurements in §8: with $p$ the exponent in
# $\text{cost} \propto T^{p}$ for large $T$, set `q2_state_exponent` ($p$ for the bytes RWKV
# keeps for the past after $T$ tokens), `q2_kv_cache_exponent` (the same for the Transformer's
# KV cache) and `q2_floats_per_layer` (how many numbers per channel and per layer the Hugging
# Face RWKV state holds). Integers.

# %% nbgrader={"grade": false, "grade_id": "q2_numbers", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
q2_state_exponent = 0
q2_kv_cache_exponent = 1
q2_floats_per_layer = 5
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q2_numbers", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 2, autograded part: three integers (hidden: the values the measurements give)."""
for _name in ("q2_state_exponent", "q2_kv_cache_exponent", "q2_floats_per_layer"):
    assert isinstance(globals()[_name], int), f"{_name} must be an int"
### BEGIN HIDDEN TESTS
_cfg = models.make_config("rwkv", "tiny")
with torch.no_grad():
    _st = models.build_model(_cfg)(torch.tensor([[5, 6, 7]]), use_cache=True).state
assert q2_floats_per_layer == sum(s.numel() for s in _st) // (_cfg.hidden_size * _cfg.num_hidden_layers)
assert (q2_state_exponent, q2_kv_cache_exponent) == (0, 1)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q2_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** A Transformer generating token $T+1$ keeps the keys and values of all $T$
# earlier tokens and attends over them, so its memory grows linearly with $T$ and so does the
# work per token. RWKV folds each new token into a fixed-size hidden state (per layer: the last
# inputs for the two token shifts and the WKV numerator, denominator and running max) and
# produces the next token from that state alone. Memory and time per token are therefore
# constant in the context length (we measured a flat state against a linearly growing KV
# cache), which allows long generations, bigger batches on the same memory, and small
# devices. The price: the past is compressed, so exact recall of far tokens is weaker.
#
# **Rubric (2 points).** 1 point: KV cache that grows with the context (attention over all
# past tokens) versus a fixed-size recurrent state updated per token. 1 point: a benefit stated
# concretely (constant memory and/or constant time per token, longer context or larger batch).
# ### END SOLUTION

# %% [markdown]
# ### Question 3
# - What does RWKV's name mean, and briefly summarize what Time-mix and Channel-mix do.
#
# Autograded part: one of the four letters of RWKV names a learned per-channel vector that does
# not depend on the input token at all (it is not a projection of the token). Which? Set
# `q3_choice` to `"R"`, `"W"`, `"K"` or `"V"`.

# %% nbgrader={"grade": false, "grade_id": "q3_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q3_choice = "?"   # one of "R", "W", "K", "V"
### BEGIN SOLUTION
q3_choice = "W"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q3_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 3, autograded part: q3_choice is one of R, W, K, V (hidden: the right letter)."""
assert q3_choice in {"R", "W", "K", "V"}, f"q3_choice must be one of 'R', 'W', 'K', 'V'; got {q3_choice!r}"
### BEGIN HIDDEN TESTS
assert q3_choice == "W"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q3_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** The letters are the four quantities of the time-mix: **R**eceptance (a
# sigmoid gate on what the block lets through from the past), **W**eight (the learned
# per-channel decay, how fast the past is forgotten), **K**ey and **V**alue (as in attention:
# how much a token counts, and what it contributes). Time-mix mixes information across
# positions: after the token shift it forms a decayed, key-weighted average of past values
# (WKV) gated by the receptance, the role attention plays. Channel-mix mixes across channels
# within each position: after its own token shift it is a squared-ReLU MLP gated by a
# receptance, the role of the feed-forward layer.
#
# **Rubric (2 points).** 1 point: the four names with a correct role for at least W and R.
# 1 point: time-mix = mixing over time/positions (attention-like, decaying weighted average);
# channel-mix = per-token feed-forward mixing of channels.
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# * RWKV-4's WKV is a key-weighted average of past values with an exponential decay per
#   channel; it has a parallel (attention-like) form for training and a recurrent form for
#   generation, and you showed they agree.
# * Storing the sums relative to a running maximum keeps the recurrence finite at any key size.
# * With the Hugging Face parameter names your blocks reproduce a real model; generating needs
#   only the state, whose size does not depend on the context: constant memory and time per
#   token, where a Transformer's KV cache grows linearly.

# %%
# Parity record (scripts/parity.py compares a CPU run with a CUDA run): under
# `python -m autograder execute` these numbers are written beside the executed notebook; otherwise nothing is.
from archlab.parity import save_record

save_record(globals(), device, exact=["state_formula"], close=["par", "step"])
