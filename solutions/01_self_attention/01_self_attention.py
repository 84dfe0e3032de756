# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Self-attention: what it computes and what it costs
#
# **Mirrors:** §1 of the reading, *Basic Structure of Transformer Architecture*.
# **Estimated time:** 90 minutes.
#
# **How to start.** Run the cells from the top (*Run → Run All Cells* works once you have filled
# in the exercises). Every exercise is a cell that says `YOUR CODE HERE`: replace
# `raise NotImplementedError()` with your code, then run the test cell under it.
#
# **How to check your work.** The test cell under each exercise runs *visible* tests: a shape
# check and a small worked example. Passing them silently means those checks passed. When you
# submit, the grader also runs *hidden* tests (random shapes, an independent reference, edge
# cases) that count towards your grade, so a passing visible test is necessary, not sufficient.
# Free-text answers are graded by your instructor.
#
# By the end you will be able to
# 1. write scaled dot-product attention and a causal mask from the formula, and check them
#    against PyTorch's own implementation;
# 2. build multi-head self-attention with a KV cache for token-by-token decoding;
# 3. measure how attention time and KV-cache memory grow with the sequence length $L$, and fit
#    the exponents;
# 4. compute the KV-cache size of a real model from its configuration.
#
# **Notation.** Tensors are batch first: `B` batch, `L` query length, `S` key length, `D` model
# width, `H` heads, `d = D/H` head width. Shapes are written in the comment of every line that
# changes one.

# %% tags=["parameters"]
DEVICE = "auto"   # "auto" picks CUDA when present, else CPU; or "cpu" / "cuda"
QUICK = True      # small sizes (CI and grading); False for the full-size experiment
SEED = 0

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn

from archlab import measure, models, plots, widgets
from archlab.checks import (assert_close, assert_shape, check_choice, check_shape,
                            mistake, no_fused_attention, no_reference)
from archlab.course import setup

device, QUICK, GRADING = setup(DEVICE, QUICK, SEED)   # QUICK is always True while nbgrader grades (GRADING)

# %% [markdown]
# ## 1. The reading's example, as written
#
# The reading computes attention for one sequence of $L = 5$ tokens with width $d = 64$. It runs
# unchanged:

# %%
import torch, math

L, d = 5, 64  # sequence length L=5, embedding dimension d=64
# example Q, K, V matrices (batch=1, seq_len=L, dim=d)
Q = torch.rand(1, L, d)
K = torch.rand(1, L, d)
V = torch.rand(1, L, d)

# 1. Calculate attention score matrix (Q * K^T / sqrt(d))
scores = torch.matmul(Q, K.transpose(-2, -1)) / math.sqrt(d)  # (1, L, L)
# 2. Get attention weight probability distribution through Softmax
attn_weights = torch.softmax(scores, dim=-1)                 # (1, L, L)
# 3. Calculate output by multiplying weights with V
output = torch.matmul(attn_weights, V)                       # (1, L, d)
print(output.shape)  # torch.Size([1, 5, 64])

# %% [markdown]
# Each row $i$ of `attn_weights` is a probability distribution over the positions $j$ that
# token $i$ reads from; the output for token $i$ is the average of the value vectors $V_j$
# under that distribution:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}}\right) V$$
#
# (Vaswani et al. 2017, eq. 1). Dividing by $\sqrt d$ keeps the scores' variance near 1 when
# the entries of $Q$ and $K$ have unit variance, so the softmax does not saturate as $d$ grows.
#
# ## 2. Exercise: scaled dot-product attention
#
# Write `scaled_dot_product_attention(Q, K, V, mask=None)`:
#
# * `Q` is `(..., L, d)`, `K` is `(..., S, d)`, `V` is `(..., S, dv)`; the leading `...` are any
#   batch dimensions (also none).
# * `mask` is `None` or a boolean tensor broadcastable to `(..., L, S)`, **True where a query
#   may attend** to a key. Masked positions get weight exactly 0.
# * Return `(out, weights)`: `out` is `(..., L, dv)`, `weights` is `(..., L, S)`, and every row
#   of `weights` sums to 1.
# * Write it with `matmul`/`softmax`: calling `torch.nn.functional.scaled_dot_product_attention`
#   is not allowed here (the hidden tests notice).
#
# The first line, `check_attention_inputs`, is given: it rejects inputs whose shapes do not
# fit together, with a message that names the expected shapes.

# %% nbgrader={"grade": false, "grade_id": "given_checks", "locked": true, "schema_version": 3, "solution": false, "task": false}
def check_attention_inputs(Q, K, V, mask=None):
    """Raise a ValueError naming the expected shapes if Q, K, V (and mask) do not fit together."""
    for name, t in (("Q", Q), ("K", K), ("V", V)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., length, width); got {tuple(t.shape)}")
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(f"Q (..., L, d) and K (..., S, d) need the same d; "
                         f"got Q {tuple(Q.shape)} and K {tuple(K.shape)}")
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(f"K (..., S, d) and V (..., S, dv) need the same S; "
                         f"got K {tuple(K.shape)} and V {tuple(V.shape)}")
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = may attend), got {mask.dtype}")
        L, S = Q.shape[-2], K.shape[-2]
        try:
            torch.broadcast_shapes(mask.shape, Q.shape[:-2] + (L, S))
        except RuntimeError:
            raise ValueError(f"mask must broadcast to (..., L, S) = {tuple(Q.shape[:-2]) + (L, S)}; "
                             f"got {tuple(mask.shape)}") from None


# %% nbgrader={"grade": false, "grade_id": "scaled_dot_product_attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def scaled_dot_product_attention(Q, K, V, mask=None):
    """softmax(Q K^T / sqrt(d)) V with an optional boolean mask (True = may attend).

    Q (..., L, d), K (..., S, d), V (..., S, dv) -> out (..., L, dv), weights (..., L, S)
    """
    check_attention_inputs(Q, K, V, mask)
    ### BEGIN SOLUTION
    d = Q.shape[-1]
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d)            # (..., L, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))      # (..., L, S), -inf where masked
    weights = torch.softmax(scores, dim=-1)                    # (..., L, S), rows sum to 1
    out = weights @ V                                          # (..., L, dv)
    return out, weights
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_scaled_dot_product_attention", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""scaled_dot_product_attention: shapes, each query's weights summing to 1 over the keys, a worked
example with and without a mask and with values wider than the keys (dv != d), batch dimensions;
hidden: torch's attention over random shapes and masks, no fused call."""
sig = lambda z: 1 / (1 + math.exp(-z))             # a softmax over two scores (a, b) is (sig(a - b), sig(b - a))
# 1. Worked example: one query, two keys; the query matches the first key much better.
Q1 = torch.tensor([[1.0, 0.0]])                    # (L=1, d=2)
K1 = torch.tensor([[4.0, 0.0], [0.0, 4.0]])        # (S=2, d=2): scores Q1 K1^T = (4, 0)
V1 = torch.tensor([[1.0, 10.0], [3.0, 30.0]])      # (S=2, dv=2)
out1, w1 = scaled_dot_product_attention(Q1, K1, V1)
assert_shape(out1, (1, 2), "out")
assert_shape(w1, (1, 2), "weights")
p = sig(4 / math.sqrt(2))                          # softmax of the scaled scores (4/sqrt 2, 0)
assert_close(w1, [[p, 1 - p]], name="weights of the worked example", mistakes={
    mistake("softmax-over-query-axis",
        "softmax over the queries (dim=-2): each query's weights must sum to 1 over the keys, softmax(..., dim=-1)"):
        [[1.0, 1.0]],
    mistake("no-scale", "no scaling: divide the scores Q K^T by sqrt(d) before the softmax"): [[sig(4), 1 - sig(4)]],
    mistake("scores-divided-d",
        "scores divided by d: divide by sqrt(d), the square root of the width"): [[sig(2), 1 - sig(2)]],
    mistake("no-softmax", "no softmax: the weights are the scaled scores themselves"): [[4 / math.sqrt(2), 0.0]]})
assert_close(out1, [[p * 1 + (1 - p) * 3, p * 10 + (1 - p) * 30]], name="out of the worked example",
             mistakes={mistake("weights-times-v-wrong",
                 "out multiplies V by the weights' transpose, or sums the values unweighted: out = weights @ V"):
                           [[4.0, 40.0]]})
# 2. Values of another width, dv = 3 (Q and K keep d = 2): the scale is sqrt(d), the width of Q and K.
V3 = torch.tensor([[1.0, 10.0, 100.0], [3.0, 30.0, 300.0]])  # (S=2, dv=3)
out3, w3 = scaled_dot_product_attention(Q1, K1, V3)
assert_shape(out3, (1, 3), "out with dv = 3")
p3 = sig(4 / math.sqrt(3))                          # the weight a scale of sqrt(dv) = sqrt(3) would give
assert_close(w3, [[p, 1 - p]], name="weights with d = 2 and dv = 3", mistakes={
    mistake("scaled-by-sqrt-dv",
        "scores divided by sqrt(dv), the width of V: scale by sqrt(d), the width of the queries and keys "
        "(Q.shape[-1])"):
        [[p3, 1 - p3]]})
assert_close(out3, [[p * 1 + (1 - p) * 3, p * 10 + (1 - p) * 30, p * 100 + (1 - p) * 300]],
             name="out with d = 2 and dv = 3")
# 3. The same query with a mask that lets it read only the second key: all its weight goes there.
out_m, w_m = scaled_dot_product_attention(Q1, K1, V1, torch.tensor([[False, True]]))
assert_close(w_m, [[0.0, 1.0]], name="weights with mask [[False, True]] (True = may attend)", mistakes={
    mistake("mask-inverted",
        "mask inverted: True means the query MAY attend to that key; fill the scores where the mask is "
        "False"): [[1.0, 0.0]],
    mistake("masked-after-softmax",
        "masked after the softmax: zeroing weights leaves the row summing to less than 1; fill the scores "
    "with -inf where the mask is False, then take the softmax"): [[0.0, 1 - p]],
    mistake("mask-ignored", "mask ignored"): [[p, 1 - p]]})
assert_close(out_m, [[3.0, 30.0]], name="out with the mask")
# 4. Batch dimensions in front, several queries: each query's weights sum to 1 over the keys.
Qv, Kv, Vv = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 3)
out_v, w_v = scaled_dot_product_attention(Qv, Kv, Vv)
assert_shape(out_v, (2, 5, 3), "out")
assert_shape(w_v, (2, 5, 7), "weights")
assert_close(w_v.sum(-1), torch.ones(2, 5), name="each query's weights summed over the keys", mistakes={
    mistake("softmax-over-query-axis",
        "softmax over the queries (dim=-2): the weights sum to 1 down each column instead of along each row"):
        (lambda _: bool(torch.allclose(w_v.sum(-2), torch.ones(2, 7), atol=1e-5)))})
### BEGIN HIDDEN TESTS
import torch.nn.functional as F

# float32 tolerances for a comparison against torch's fused kernel
TOL = dict(rtol=1e-4, atol=1e-5)
g = torch.Generator().manual_seed(1234)
for trial in range(12):
    batch = [(), (3,), (2, 3)][trial % 3]
    L_, S_ = [(1, 1), (4, 4), (6, 9), (9, 6)][trial % 4]
    d_, dv = [(4, 4), (8, 3), (16, 16)][trial % 3]
    Qh = torch.randn(*batch, L_, d_, generator=g) * 2
    Kh = torch.randn(*batch, S_, d_, generator=g) * 2
    Vh = torch.randn(*batch, S_, dv, generator=g)
    mask = None
    if trial % 2:
        mask = torch.rand(L_, S_, generator=g) > 0.4
        mask[:, 0] = True                                      # no fully masked row
    with no_fused_attention():
        out_h, w_h = scaled_dot_product_attention(Qh, Kh, Vh, mask)
    assert_shape(out_h, (*batch, L_, dv), "out")
    assert_shape(w_h, (*batch, L_, S_), "weights")
    ref_out = F.scaled_dot_product_attention(Qh, Kh, Vh, attn_mask=mask)
    # the weights themselves: attention applied to the identity matrix as values
    eye = torch.eye(S_).expand(*batch, S_, S_)
    ref_w = F.scaled_dot_product_attention(Qh, Kh, eye, attn_mask=mask)
    assert_close(out_h, ref_out, name=f"out (trial {trial})", **TOL)
    assert_close(w_h, ref_w, name=f"weights (trial {trial})", **TOL)
    if mask is not None:
        assert bool((w_h[..., ~mask] == 0).all()), \
            (f"trial {trial}: masked positions must get weight exactly 0 "
             "(fill their scores with -inf before the softmax)")
# a mask with its own batch dimension broadcasts over heads
Qb, Kb, Vb = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
mb = torch.rand(2, 1, 5, 5) > 0.5
mb[..., 0] = True
assert_close(scaled_dot_product_attention(Qb, Kb, Vb, mb)[0],
             F.scaled_dot_product_attention(Qb, Kb, Vb, attn_mask=mb), name="out with a batched mask", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Exercise: the causal mask
#
# A decoder-only model (GPT, Llama) predicts token $t+1$ from tokens $1..t$, so query $i$ may
# only read keys $j \le i$. Write `causal_mask(L, device=None)` returning a **bool** `(L, L)`
# tensor that is True on and below the diagonal.

# %% nbgrader={"grade": false, "grade_id": "causal_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_mask(L, device=None):
    """bool (L, L): True where query i may attend key j, i.e. j <= i."""
    ### BEGIN SOLUTION
    return torch.ones(L, L, dtype=torch.bool, device=device).tril()   # (L, L)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_causal_mask", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""causal_mask: dtype bool, shape (L, L), the 3x3 example (named mistakes); hidden: every L up to 64
against an index comparison, and the device argument."""
m3 = causal_mask(3)
assert isinstance(m3, torch.Tensor), f"causal_mask must return a torch.Tensor; got {type(m3).__name__}"
assert m3.dtype == torch.bool, (mistake("float-0-1-mask",
    f"causal_mask must return a bool tensor (True = may attend); got {m3.dtype}: "
                                f"create it with dtype=torch.bool or compare indices"))
assert_shape(m3, (3, 3), "causal_mask(3)")
T, F_ = True, False
assert_close(m3, [[T, F_, F_], [T, T, F_], [T, T, T]], name="causal_mask(3)", mistakes={
    mistake("upper-triangle",
        "upper triangle: query i would read the later keys j > i; keep j <= i (on and BELOW the diagonal)"):
        [[T, T, T], [F_, T, T], [F_, F_, T]],
    mistake("diagonal-excluded",
        "diagonal excluded: a token must be allowed to attend to itself (j = "
        "i)"): [[F_, F_, F_], [T, F_, F_], [T, T, F_]],
    mistake("mask-inverted",
        "mask inverted: True must mean 'may attend' (j <= i), not 'blocked'"): [[F_, T, T], [F_, F_, T], [F_, F_, F_]]})
### BEGIN HIDDEN TESTS
for L_ in range(1, 65):
    m = causal_mask(L_)
    assert m.dtype == torch.bool, mistake("float-0-1-mask", f"causal_mask({L_}) must be bool")
    assert_shape(m, (L_, L_), f"causal_mask({L_})")
    i = torch.arange(L_)
    assert torch.equal(m, i[None, :] <= i[:, None]), f"causal_mask({L_}) is not True exactly where j <= i"
# the device argument: the mask is created there (the meta device exists on every machine)
for dev in ("meta", torch.device("meta"), "cpu"):
    got = causal_mask(4, device=dev).device.type
    assert got == torch.device(dev).type, mistake("device-argument-ignored",
        f"causal_mask(4, device={dev!r}) is on {got}: create the tensor on `device`")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Exercise: multi-head self-attention with a KV cache
#
# Multi-head attention runs $H$ attentions side by side on $D/H$-wide slices and mixes their
# outputs with one linear map. Use the names below exactly (the tests copy weights into them
# from `torch.nn.MultiheadAttention`):
#
# * `self.qkv = nn.Linear(d_model, 3 * d_model)`: one matmul gives $Q, K, V$, in that order
#   along the last dimension;
# * `self.out = nn.Linear(d_model, d_model)`.
#
# `forward(x, causal=True)` takes `x (B, L, D)` and returns `(B, L, D)`. Split the width into
# heads as `(B, L, D) -> (B, L, H, d) -> (B, H, L, d)`, attend with your
# `scaled_dot_product_attention`, then merge back.
#
# `step(x_t, cache=None)` decodes **one** token: `x_t` is `(B, 1, D)`, `cache` is `None` or the
# pair `(K, V)` of everything seen so far, each `(B, H, t, d)`. It appends the new key and value
# to the cache, lets the new query attend to all of them (no mask needed: the cache holds only
# the past), and returns `(y_t (B, 1, D), (K, V))` with the grown cache. Stepping through a
# sequence must give the same outputs as the causal `forward`.
#
# The given first line of each method rejects inputs of the wrong shape.

# %% nbgrader={"grade": false, "grade_id": "MultiHeadSelfAttention", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017, §3.2.2) with a KV cache for decoding."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        ### BEGIN SOLUTION
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        ### END SOLUTION

    def forward(self, x, causal=True):
        check_shape(x, ("B", "L", self.d_model), "x")
        ### BEGIN SOLUTION
        B, L, D = x.shape
        q, k, v = self._heads(x)                                   # each (B, H, L, d)
        mask = causal_mask(L, device=x.device) if causal else None  # (L, L)
        y, _ = scaled_dot_product_attention(q, k, v, mask)         # (B, H, L, d)
        return self.out(self._merge(y))                            # (B, L, D)
        ### END SOLUTION

    def step(self, x_t, cache=None):
        check_shape(x_t, ("B", 1, self.d_model), "x_t")
        ### BEGIN SOLUTION
        q, k, v = self._heads(x_t)                                 # each (B, H, 1, d)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)                    # (B, H, t+1, d)
            v = torch.cat([cache[1], v], dim=2)                    # (B, H, t+1, d)
        y, _ = scaled_dot_product_attention(q, k, v)               # (B, H, 1, d)
        return self.out(self._merge(y)), (k, v)                    # (B, 1, D), cache

    def _heads(self, x):
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)                     # each (B, L, D)
        split = lambda t: t.view(B, L, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, L, d)
        return split(q), split(k), split(v)

    def _merge(self, y):
        B, H, L, d = y.shape
        return y.transpose(1, 2).reshape(B, L, H * d)              # (B, L, D)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_MultiHeadSelfAttention", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
"""MultiHeadSelfAttention: layer names and shapes, a worked example (two heads, identity weights)
for forward and for step with its cache (named mistakes); hidden: equals nn.MultiheadAttention with
copied weights (causal and not), step-by-step equals forward, no fused call."""
torch.manual_seed(0)
mha = MultiHeadSelfAttention(16, 4)
assert isinstance(mha.qkv, nn.Linear) and tuple(mha.qkv.weight.shape) == (48, 16), \
    "self.qkv must be nn.Linear(d_model, 3*d_model)"
assert isinstance(mha.out, nn.Linear) and tuple(mha.out.weight.shape) == (16, 16), \
    "self.out must be nn.Linear(d_model, d_model)"
xv = torch.randn(2, 5, 16)
assert_shape(mha(xv), (2, 5, 16), "forward output")
y0, cache0 = mha.step(xv[:, :1])
assert_shape(y0, (2, 1, 16), "step output")
assert_shape(cache0[0], (2, 4, 1, 4), "cached K after one step (B, H, t, d)")
y1, cache1 = mha.step(xv[:, 1:2], cache0)
assert_shape(cache1[1], (2, 4, 2, 4), mistake("step-ignores-cache",
    "cached V after two steps (B, H, t, d): append the new token to the cache"))
sig = lambda z: 1 / (1 + math.exp(-z))
a, b = sig(-1 / math.sqrt(2)), sig(1 / math.sqrt(2))   # a query's softmax over the scores (0, 1/sqrt 2)
# The layer is built on your scaled_dot_product_attention and causal_mask: they must be right first.
q_ = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
_, w_ = scaled_dot_product_attention(q_, q_, q_, causal_mask(2))
assert torch.allclose(w_, torch.tensor([[[1.0, 0.0], [a, b]]]), atol=1e-5), mistake("parts-wrong-first", (
    "MultiHeadSelfAttention is built on your scaled_dot_product_attention and causal_mask, and they do not "
    "pass their own worked examples yet: fix them first (their tests above name the mistake)"))
# Worked example: D = 4, H = 2 heads of width 2, Q = K = V = x (identity weights, no bias), out = identity.
mha2 = MultiHeadSelfAttention(4, 2)
with torch.no_grad():
    mha2.qkv.weight.copy_(torch.eye(4).repeat(3, 1)), mha2.qkv.bias.zero_()
    mha2.out.weight.copy_(torch.eye(4)), mha2.out.bias.zero_()
x2 = torch.tensor([[[1.0, 0.0, 0.0, 0.0],     # token 0: head 0 sees (1, 0), head 1 sees (0, 0)
                    [0.0, 1.0, 1.0, 0.0]]])   # token 1: head 0 sees (0, 1), head 1 sees (1, 0)
with torch.no_grad():
    y2 = mha2(x2)
assert_close(y2, [[[1, 0, 0, 0], [a, b, b, 0]]], rtol=1e-4, atol=1e-5, name="forward of the worked example", mistakes={
    mistake("causal-flag-ignored",
        "causal ignored: token 0 read token 1; with causal=True mask the scores with causal_mask(L)"):
        [[[b, a, 0.5, 0], [a, b, b, 0]]],
    mistake("heads-split-without-transpose",
        "heads split without the transpose: view (B, L, D) as (B, L, H, d), then transpose(1, 2) to (B, H, L, d)"):
        [[[1, 0, 0, 1], [0.5, 0, b, a]]],
    mistake("heads-merged-without-transpose",
        "heads merged without the transpose: transpose (B, H, L, d) back to (B, L, H, d) before reshaping to (B, L, "
        "D)"):
        [[[1, 0, a, b], [0, 0, b, 0]]]})
with torch.no_grad():
    s0, c0 = mha2.step(x2[:, :1])
    s1, c1 = mha2.step(x2[:, 1:], c0)
assert_close(torch.cat([s0, s1], 1), y2, rtol=1e-4, atol=1e-5, name="step, step vs the causal forward", mistakes={
    mistake("step-ignores-cache",
        "step ignored the cache: the new query must attend to the cached keys and values AND its own"):
        [[[1, 0, 0, 0], [0, 1, 1, 0]]]})
### BEGIN HIDDEN TESTS
TOL = dict(rtol=1e-4, atol=1e-5)  # float32
for D_, H_, B_, L_ in [(16, 4, 2, 7), (12, 3, 1, 1), (32, 8, 3, 10), (8, 1, 2, 5)]:
    torch.manual_seed(D_ + L_)
    mine = MultiHeadSelfAttention(D_, H_)
    ref = nn.MultiheadAttention(D_, H_, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(mine.qkv.weight)
        ref.in_proj_bias.copy_(mine.qkv.bias)
        ref.out_proj.weight.copy_(mine.out.weight)
        ref.out_proj.bias.copy_(mine.out.bias)
    x = torch.randn(B_, L_, D_)
    with torch.no_grad(), no_fused_attention("MultiHeadSelfAttention"), \
            no_reference(nn.MultiheadAttention, "transformers", who="MultiHeadSelfAttention"):
        y_causal, y_full = mine(x), mine(x, causal=False)
    with torch.no_grad():
        r_full = ref(x, x, x, need_weights=False)[0]
        r_causal = ref(x, x, x, attn_mask=~causal_mask(L_), need_weights=False)[0]
    assert_shape(y_causal, (B_, L_, D_), "forward output")
    assert_close(y_full, r_full, name=mistake("causal-false-ignored",
        f"forward(causal=False) vs nn.MultiheadAttention (D={D_}, H={H_})"), **TOL)
    assert_close(y_causal, r_causal, name=f"forward(causal=True) vs nn.MultiheadAttention (D={D_}, H={H_})", **TOL)
    cache, ys = None, []
    with torch.no_grad(), no_fused_attention("MultiHeadSelfAttention.step"):
        for t in range(L_):
            y_t, cache = mine.step(x[:, t:t + 1], cache)
            assert_shape(y_t, (B_, 1, D_), f"step {t} output")
            assert_shape(cache[0], (B_, H_, t + 1, D_ // H_), f"cached K after step {t}")
            assert_shape(cache[1], (B_, H_, t + 1, D_ // H_), f"cached V after step {t}")
            ys.append(y_t)
    assert_close(torch.cat(ys, dim=1), y_causal, name="step-by-step outputs vs causal forward", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Exercise: fitting a scaling exponent
#
# If a cost grows like $c \cdot L^{p}$, then $\log(\mathrm{cost}) = \log c + p \log L$: on a
# log-log plot it is a straight line of slope $p$. Write `fit_scaling_exponent(lengths, costs)`
# returning the least-squares slope of $\log(\mathrm{cost})$ against $\log(L)$ as a Python
# `float`. Inputs are sequences of positive numbers (lists, NumPy arrays or tensors) of equal
# length, at least two.

# %% nbgrader={"grade": false, "grade_id": "fit_scaling_exponent", "locked": false, "schema_version": 3, "solution": true, "task": false}
def fit_scaling_exponent(lengths, costs):
    """Least-squares slope p of log(cost) = log(c) + p * log(length)."""
    ### BEGIN SOLUTION
    x = torch.log(torch.as_tensor(lengths, dtype=torch.float64))   # (n,)
    y = torch.log(torch.as_tensor(costs, dtype=torch.float64))     # (n,)
    xc, yc = x - x.mean(), y - y.mean()
    return float((xc * yc).sum() / (xc * xc).sum())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_fit_scaling_exponent", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""fit_scaling_exponent: a Python float, an exact power law gives its exponent (named mistakes);
hidden: noisy data against numpy's least squares."""
p2 = fit_scaling_exponent([1, 2, 4, 8], [3, 12, 48, 192])     # cost = 3 L^2
assert isinstance(p2, float), \
    mistake("tensor-not-float", f"return a Python float (float(...)), got {type(p2).__name__}")
assert_close(p2, 2.0, rtol=0, atol=1e-9, name="exponent of cost = 3 L^2", mistakes={
    mistake("axes-swapped", "axes swapped: fit log(cost) against log(length), not log(length) against log(cost)"): 0.5,
    mistake("slope-without-logs",
        "no logarithms: the slope of cost against length is not the exponent; fit log(cost) against log(length)"):
        27.782608695652186})
### BEGIN HIDDEN TESTS
import numpy as np
rng = np.random.default_rng(7)
for p_true in [0.0, 0.5, 1.0, 1.7, 3.0]:
    Ls = np.array([16, 32, 64, 128, 256, 512], dtype=float)
    assert abs(fit_scaling_exponent(Ls, 0.1 * Ls ** p_true) - p_true) < 1e-9
    noisy = 0.1 * Ls ** p_true * np.exp(rng.normal(0, 0.3, size=Ls.size))
    ref_slope = np.polyfit(np.log(Ls), np.log(noisy), 1)[0]
    with no_reference("archlab.fits", who="fit_scaling_exponent"):   # archlab's fit: the later notebooks' copy
        got = fit_scaling_exponent(list(Ls), list(noisy))
    assert abs(got - ref_slope) < 1e-9, (mistake("endpoints-only",
        f"noisy data: your slope {got:.6f} is not the least-squares slope through all "
                                         f"the points (a line through the first and last point is not a fit)"))
assert abs(fit_scaling_exponent(torch.tensor([10.0, 100.0]), torch.tensor([5.0, 50.0])) - 1.0) < 1e-9
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Exercise: the size of a KV cache
#
# To generate token $t+1$, a decoder scores the new query against the keys of tokens $1..t$ and
# averages their values. Recomputing those keys and values at every step would redo the whole
# prefix, so the model keeps them: that is the KV cache (your `MultiHeadSelfAttention.step`
# returns one layer's). What it holds:
#
# * every layer keeps its own cache, and so does every sequence in the batch;
# * for every position seen so far and for every key/value head, it holds one key vector and one
#   value vector, each of `head_dim` numbers;
# * each number takes `bytes_per_value` bytes: 2 for the 16-bit floats (float16, bfloat16) that
#   models are usually served in, 4 for float32.
#
# Only keys and values are kept: a past token's query is never used again. With grouped-query
# attention (GQA, used by Llama 3, Mixtral, Qwen2) several query heads share one key/value
# head, so `n_kv_heads` can be smaller than the number of query heads, and the cache is counted
# in key/value heads. From this description, write
# `kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1)` returning
# the size of the cache in bytes, as an `int`.

# %% nbgrader={"grade": false, "grade_id": "kv_cache_bytes", "locked": false, "schema_version": 3, "solution": true, "task": false}
def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    """Bytes of the KV cache a decoder holds after `seq_len` tokens.

    n_layers: decoder layers; n_kv_heads: key/value heads per layer (not query heads);
    head_dim: numbers in one key or value vector; seq_len: tokens cached per sequence;
    bytes_per_value: bytes of one number (2 = 16-bit); batch: sequences decoded together.
    Returns an int, the number of bytes.
    """
    ### BEGIN SOLUTION
    values_per_token = 2 * n_kv_heads * head_dim          # a key and a value vector per KV head
    return int(n_layers * batch * seq_len * values_per_token * bytes_per_value)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_kv_cache_bytes", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""kv_cache_bytes: an int, three worked examples with literal numbers (mistakes named: keys only,
queries cached too, the batch, the layers, bytes_per_value ignored or taken as 4, bits for bytes);
hidden: equals the cache a Hugging Face GPT-2 and a GQA Llama actually allocate, the default
16-bit values, no library call."""
EXACT = dict(rtol=0, atol=0)                       # byte counts are integers: no tolerance
# 1. The smallest cache: one layer, one KV head of width 1, one token, one sequence, 1 byte a number.
kv1 = kv_cache_bytes(n_layers=1, n_kv_heads=1, head_dim=1, seq_len=1, bytes_per_value=1, batch=1)
assert isinstance(kv1, int), mistake("float-in-gib", f"return an int number of bytes, got {type(kv1).__name__}")
assert_close(kv1, 2, name="one layer, one KV head of width 1, one token, 1 byte a number", **EXACT, mistakes={
    mistake("keys-only", "keys only: the cache holds a key AND a value vector for every token"): 1,
    mistake("queries-cached-too",
        "queries cached too: only keys and values are kept, a past token's query is never used again"): 3,
    mistake("bits-not-bytes", "bits, not bytes: bytes_per_value is already in bytes (8 bits each)"): 16,
    mistake("float32-bytes-hard-coded",
        "4 bytes a value, float32's, whatever bytes_per_value says: multiply by bytes_per_value (2 for 16-bit)"): 8})
# 2. Every argument different: 3 layers, 5 KV heads of width 4, 7 tokens, float32 (4 bytes), a batch of 6.
kv2 = kv_cache_bytes(n_layers=3, n_kv_heads=5, head_dim=4, seq_len=7, bytes_per_value=4, batch=6)
assert_close(kv2, 20160, name="kv_cache_bytes(3, 5, 4, 7, bytes_per_value=4, batch=6)", **EXACT, mistakes={
    mistake("batch-ignored", "batch ignored: every sequence in the batch has its own cache"): 3360,
    mistake("layers-ignored", "layers ignored: every layer keeps its own keys and values"): 6720,
    mistake("bytes-per-value-ignored",
        "bytes_per_value ignored: count the numbers, then multiply by the bytes each takes"): 5040,
    mistake("keys-only", "keys only: the cache holds a key AND a value vector for every token"): 10080,
    mistake("queries-cached-too",
        "queries cached too: only keys and values are kept, a past token's query is never used again"): 30240,
    mistake("bits-not-bytes", "bits, not bytes: bytes_per_value is already in bytes (8 bits each)"): 161280})
# 3. A published GQA model: Llama-3-8B, 32 layers, whose 32 query heads share 8 KV heads of width 128.
kv3 = kv_cache_bytes(n_layers=32, n_kv_heads=8, head_dim=128, seq_len=8192, bytes_per_value=2, batch=1)
assert_close(kv3, 1073741824, name="Llama-3-8B (n_kv_heads=8, head_dim=128), 8192 tokens in 16-bit: 1 GiB",
             **EXACT, mistakes={
    mistake("float32-bytes-hard-coded",
        "4 bytes a value, float32's, whatever bytes_per_value says: multiply by bytes_per_value (2 for 16-bit)"):
        2147483648,
    mistake("bits-not-bytes", "bits, not bytes: bytes_per_value is already in bytes (8 bits each)"): 8589934592,
    mistake("keys-only", "keys only: the cache holds a key AND a value vector for every token"): 536870912})
### BEGIN HIDDEN TESTS
for family, overrides in [("gpt2", {}), ("llama", dict(num_attention_heads=4, num_key_value_heads=2))]:
    cfg = models.make_config(family, "tiny", **overrides)
    net = models.build_model(cfg)
    n_layers = cfg.num_hidden_layers
    n_heads = cfg.num_attention_heads
    n_kv = getattr(cfg, "num_key_value_heads", None) or n_heads
    head_dim = cfg.hidden_size // n_heads
    for B_, L_ in [(1, 7), (3, 12)]:
        with torch.no_grad():
            out = net(torch.randint(0, cfg.vocab_size, (B_, L_)), use_cache=True)
        measured = measure.tensor_bytes(out.past_key_values)
        with no_reference(models.cache_bytes, "transformers", who="kv_cache_bytes"):
            got = kv_cache_bytes(n_layers, n_kv, head_dim, L_, bytes_per_value=4, batch=B_)
        assert got == measured, (f"{family} (B={B_}, L={L_}, {n_kv} key/value heads): you computed {got} bytes, "
                                 f"the model's cache holds {measured}")
# the default is 16-bit values (2 bytes), as served models keep their caches
assert kv_cache_bytes(32, 8, 128, 1000) == kv_cache_bytes(32, 8, 128, 1000, bytes_per_value=2, batch=1), \
    mistake("float32-default", "the defaults must be bytes_per_value=2 and batch=1")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Experiment: how attention time and KV-cache memory grow with $L$
#
# Computing the full score matrix $QK^\top$ touches $L \times L$ pairs, so one attention over a
# whole sequence should cost about $L^2$. The KV cache holds one key and one value per token, so
# it should grow like $L^1$. We measure both: time with `archlab.measure.time_fn` (warm-up
# runs first, then the median of several), memory by adding up the tensors in the cache a
# Hugging Face GPT-2 actually returns.

# %%
lengths = [128, 256, 512, 1024] if QUICK else [256, 512, 1024, 2048, 4096]
B_exp, H_exp, d_exp = 1, 4, 64
attn_seconds = []
for L_ in lengths:
    q = torch.randn(B_exp, H_exp, L_, d_exp, device=device)
    mask = causal_mask(L_, device=device)
    t = measure.time_fn(lambda: scaled_dot_product_attention(q, q, q, mask), warmup=2,
                        repeat=3 if QUICK else 7, device=device, what=f"attention, L={L_}")
    attn_seconds.append(t.median)
    print(t)

gpt = models.build_model("gpt2", "tiny", device=device, n_positions=max(lengths))
cfg = gpt.config
kv_measured = []
for L_ in lengths:
    with torch.no_grad():
        out = gpt(torch.randint(0, cfg.vocab_size, (1, L_), device=device), use_cache=True)
    kv_measured.append(measure.tensor_bytes(out.past_key_values))
kv_formula = [kv_cache_bytes(cfg.n_layer, cfg.n_head, cfg.n_embd // cfg.n_head, L_, bytes_per_value=4)
              for L_ in lengths]
print("KV cache bytes measured:", kv_measured)
print("KV cache bytes formula: ", kv_formula)

p_time = fit_scaling_exponent(lengths, attn_seconds)
p_kv = fit_scaling_exponent(lengths, kv_measured)
print(f"fitted exponents: attention time ~ L^{p_time:.2f}, KV cache ~ L^{p_kv:.2f}")

# %%
if len(attn_seconds) < len(lengths):   # the cell above stopped at an exercise not written yet
    print("no measurements yet: write scaled_dot_product_attention and causal_mask, then run the cell above")
else:
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(11, 4))
    plots.scaling_plot({"attention time (s)": (lengths, attn_seconds)}, ax=ax_time,
                       xlabel="sequence length L", ylabel="seconds", title="One attention over L tokens")
    plots.scaling_plot({"KV cache, GPT-2 tiny (bytes)": (lengths, kv_measured)}, ax=ax_mem,
                       xlabel="sequence length L", ylabel="bytes", title="KV-cache memory after L tokens")
    plt.show()

# %% [markdown]
# **What to look for.** The KV-cache slope is 1 exactly: the formula and the measured bytes
# agree for every length. The time slope is near 2 but rarely exactly 2 on a CPU. Each call
# pays costs that do not grow with $L$ at all (Python, dispatching each operation), which pull
# the fitted slope below 2 where $L$ is small. Everything else grows with $L^2$: the two
# matmuls, and also the mask and the softmax, which read and write the whole `(B, H, L, L)`
# score tensor, $O(L^2)$ memory traffic. Once that tensor outgrows the CPU's caches (here
# $1 \cdot 4 \cdot L^2$ float32 values, 16 MiB at $L = 1024$), those passes go to main memory,
# each pair costs more, and the fitted slope can rise above 2; a machine shared with other work
# adds noise. For large $L$, when every pass streams from main memory, the cost per pair
# settles and the slope is 2. `QUICK = False` measures up to $L = 4096$.
#
# The same formula gives the numbers behind the Jamba paper's Table 1 (Lieber et al. 2024):
# a Llama-2-7B-shaped model (32 layers, 32 key/value heads of width 128, no GQA) at 256K tokens
# in 16-bit:

# %%
llama2_7b_256k = kv_cache_bytes(n_layers=32, n_kv_heads=32, head_dim=128, seq_len=256 * 1024)
print(f"Llama-2-7B KV cache at 256K tokens: {llama2_7b_256k / 2**30:.0f} GiB (Jamba paper, Table 1: 128GB)")

# %% [markdown]
# ## 8. Explore: attention weights under temperature
#
# Below, a toy sentence gets random (but fixed) queries and keys in four heads. Move the head
# slider to see different patterns; the temperature divides the scores before the softmax
# (temperature 1 is ordinary attention), so low temperatures sharpen each row towards its
# largest score and high ones flatten it towards uniform. Toggle the causal mask to see the
# upper triangle vanish. The explorer calls *your* `scaled_dot_product_attention` and `causal_mask`.

# %%
explorer = widgets.attention_explorer(
    "the cat sat on the mat because it was warm".split(), scaled_dot_product_attention, causal_mask, seed=SEED)
explorer

# %% [markdown]
# ## 9. Checkpoint questions
#
# Each question has an autograded part (a letter or a number in a code cell) and a written
# answer your instructor grades. Two or three sentences are enough.
#
# ### Question 1
# - What are the main advantages of **Self-Attention** in Transformer? Also, where does the
#   **inference bottleneck** occur?
#
# Autograded part: where is the bottleneck when a trained decoder generates text? Set `q1_choice`
# to one letter.
#
# * **A.** In training: every token attends to every other, so a training step is quadratic in
#   the context and cannot be spread over the positions of a sequence.
# * **B.** In the feed-forward layers: they hold most of the weights, so their cost for each new
#   token grows with the number of tokens already in the context.
# * **C.** In decoding: each new token is scored against what every earlier token left behind, so
#   the work of a step and the memory held both rise with the context.
# * **D.** In the softmax: it needs the whole row of scores before it can normalise, so a
#   decoder must wait for the complete output sequence before emitting any token.

# %% nbgrader={"grade": false, "grade_id": "q1_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q1_choice = "?"   # one of "A", "B", "C", "D"
### BEGIN SOLUTION
q1_choice = "C"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q1_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 1, autograded part: q1_choice is one capital letter A-D (hidden: the right letter)."""
check_choice(q1_choice, "q1_choice")
### BEGIN HIDDEN TESTS
assert q1_choice == "C", \
    mistake("wrong-letter",
        "q1_choice is not the right letter: which of the four costs grows as a conversation gets longer?")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q1_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** Every token looks at every other token directly, so long-range dependencies
# are one step away and all positions of a training sequence are processed in parallel (no
# recurrence), which trains much faster than an RNN; several heads learn different relations.
# The bottleneck is autoregressive inference: each generated token attends to all cached keys
# and values, so per-token work and KV-cache memory grow linearly with the context, and the
# whole sequence costs $O(L^2)$.
#
# **Rubric (2 points).** 1 point: names at least one advantage (parallel training / direct
# access to any earlier token / multiple heads). 1 point: places the bottleneck in inference
# (decoding) and ties it to attending over all previous tokens or the growing KV cache.
# ### END SOLUTION

# %% [markdown]
# ### Question 2
# - Explain the difference between Transformer **encoder-decoder structure** and **decoder-only structure** like GPT.
#
# Autograded part: which sub-layer does a decoder block of the original encoder-decoder
# Transformer have that a GPT-style decoder-only block does not? Set `q2_choice`.
#
# * **A.** Masked (causal) self-attention over the tokens generated so far.
# * **B.** A position-wise feed-forward network after the attention sub-layers.
# * **C.** Residual connections around each sub-layer, followed by layer normalisation.
# * **D.** Cross-attention from the decoder's tokens to the encoder's output states.

# %% nbgrader={"grade": false, "grade_id": "q2_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q2_choice = "?"   # one of "A", "B", "C", "D"
### BEGIN SOLUTION
q2_choice = "D"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q2_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 2, autograded part: q2_choice is one capital letter A-D (hidden: the right letter)."""
check_choice(q2_choice, "q2_choice")
### BEGIN HIDDEN TESTS
assert q2_choice == "D", mistake("wrong-letter",
    "q2_choice is not the right letter: which sub-layer needs a second input sequence?")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q2_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** An encoder-decoder Transformer reads the whole input with a bidirectional
# encoder (every token sees every other) and generates the output with a decoder that uses
# masked self-attention over what it has produced plus cross-attention to the encoder's
# states; it suits input-to-output tasks such as translation. A decoder-only model like GPT
# has a single stack of masked self-attention blocks over one sequence (prompt and continuation
# together), trained to predict the next token; there is no separate encoder and no
# cross-attention.
#
# **Rubric (2 points).** 1 point: encoder-decoder = bidirectional encoder plus a decoder with
# cross-attention. 1 point: decoder-only = one causal stack predicting the next token, no
# cross-attention.
# ### END SOLUTION

# %% [markdown]
# ### Question 3
# - How do Transformer's **time complexity** and **space complexity** scale with sequence length _L_?
#
# Autograded part: a decoder generates $L$ tokens one at a time. Give the exponents $p$ in
# $\text{cost} \propto L^p$ (integers, in the limit of large $L$) of the attention work (scoring
# queries against keys and summing values) for
# `q3_decode_step_exponent`: generating **one** more token with a KV cache when $L$ tokens came
# before;
# `q3_generate_cached_exponent`: generating all $L$ tokens, from an empty context, with a KV
# cache;
# `q3_generate_uncached_exponent`: generating all $L$ tokens without a cache, where every step
# runs attention over the whole sequence so far again.

# %% nbgrader={"grade": false, "grade_id": "q3_exponents", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
q3_decode_step_exponent = 1
q3_generate_cached_exponent = 2
q3_generate_uncached_exponent = 3
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q3_exponents", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 3, autograded part: three integer exponents (hidden: the right ones)."""
for _name in ("q3_decode_step_exponent", "q3_generate_cached_exponent", "q3_generate_uncached_exponent"):
    assert _name in globals(), mistake("not-answered", f"{_name} is not defined: write it in the answer cell, run it")
    assert isinstance(globals()[_name], int), \
        mistake("floats", f"{_name} must be an int (a whole number such as 3), got {globals()[_name]!r}")
### BEGIN HIDDEN TESTS
assert q3_decode_step_exponent == 1, mistake("decode-step-quadratic",
    "q3_decode_step_exponent: how many cached keys does ONE new query read?")
assert q3_generate_cached_exponent == 2, (mistake("cached-generation-linear",
    "q3_generate_cached_exponent: step t reads t cached keys; "
                                          "add up the work of steps 1, 2, ..., L"))
assert q3_generate_uncached_exponent == 3, (mistake("uncached-as-cheap-as-cached",
    "q3_generate_uncached_exponent: without a cache, step t scores all "
                                            "t x t (query, key) pairs again; add those up over t = 1 .. L"))
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q3_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** Self-attention over $L$ tokens computes an $L \times L$ score matrix: time
# $O(L^2 d)$ per layer, and $O(L^2)$ memory for the scores if they are materialised (fused
# kernels such as FlashAttention avoid storing them, but not the compute). When generating,
# the KV cache grows linearly, $O(L)$ memory, and each new token costs $O(L)$ because it
# attends to all previous keys, so generating $L$ tokens costs $O(L^2)$ in total ($O(L^3)$
# without a cache, when every step recomputes the attention over all tokens so far). Our
# measurement shows the KV-cache exponent 1 exactly and a time exponent near 2.
#
# **Rubric (2 points).** 1 point: time quadratic in $L$ for the full sequence (linear per
# generated token). 1 point: memory: KV cache linear in $L$ (score matrix quadratic if
# materialised).
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# * Attention is `softmax(QK^T/sqrt(d)) V`; a boolean mask decides which keys each query may read.
# * A decoder keeps a key and a value vector for every past token, in every layer and key/value
#   head: a cache that grows linearly with $L$.
# * You measured the costs: one attention pass grows roughly like $L^2$, the cache exactly like $L$.
#   The next notebooks replace the growing cache with a state of fixed size (Mamba, RWKV).

# %%
# Parity record (scripts/parity.py compares a CPU run with a CUDA run): under
# `python -m autograder execute` these numbers are written beside the executed notebook; otherwise nothing is.
from archlab.parity import save_record

save_record(globals(), device, exact=["kv_measured", "kv_formula", "llama2_7b_256k"], close=["p_kv"])
