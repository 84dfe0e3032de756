# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Open LLMs: Llama 3, Mixtral and Qwen2 from their parts
#
# **Mirrors:** §6 of the reading, *Introduction to Latest Open Source LLMs and Characteristics*.
# **Estimated time:** 120 minutes.
#
# **How to start.** Run the cells from the top (*Run → Run All Cells* works once you have filled
# in the exercises). Every exercise is a cell that says `YOUR CODE HERE`: replace
# `raise NotImplementedError()` with your code, then run the test cell under it.
#
# **How to check your work.** The test cell under each exercise runs *visible* tests: a shape
# check and a small worked example. Passing them silently means those checks passed. When you
# submit, the grader also runs *hidden* tests (the Hugging Face `transformers` blocks with your
# weights copied in, models built on the meta device, random shapes) that count towards your
# grade, so a passing visible test is necessary, not sufficient. Free-text answers are graded
# by your instructor.
#
# The reading describes Llama 3, Mixtral 8×7B and Qwen2-72B mostly by their training data and
# benchmarks. Under the hood all three are the same decoder-only Transformer with four changes
# to GPT-2's block. By the end you will be able to
# 1. write those four parts, **RMSNorm**, **rotary position embeddings (RoPE)**,
#    **grouped-query attention (GQA)** and the **SwiGLU** MLP, and assemble them into a decoder
#    layer that equals the one in `transformers`;
# 2. count the parameters (total and, for a mixture of experts, active per token) and the
#    KV-cache bytes per token of the real models from their published configurations, exactly;
# 3. build each family small, generate with it, save it and load it back, and run the reading's
#    loading code against the Hugging Face Hub (offline here, so it explains what it would do).
#
# **Notation.** `B` batch, `L` sequence length, `D` model width (`hidden_size`), `H` query heads,
# `H_kv` key/value heads, `d = D/H` head width (`head_dim`), `I` MLP width
# (`intermediate_size`), `V` vocabulary, `n_L` layers, `E` experts, `k` experts per token.
# Shapes are written in the comment of every line that changes one.

# %% tags=["parameters"]
DEVICE = "auto"   # "auto" picks CUDA when present, else CPU; or "cpu" / "cuda"
QUICK = True      # short generations (CI and grading); False for longer ones
SEED = 0
LOAD_HUB_MODELS = False  # True: really download and load the reading's models (tens of GB each)

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import copy
import math
import os
import tempfile

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from archlab import llms, models, widgets
from archlab.checks import assert_close, assert_shape, check_shape
from archlab.device import pick_device

if os.environ.get("NBGRADER_EXECUTION"):
    QUICK = True  # the grader always runs the small version
    LOAD_HUB_MODELS = False
device = pick_device(DEVICE)
from archlab import fastpaths  # noqa: E402
fastpaths.show(device)  # which implementation each fast path uses here, kept in the output
torch.manual_seed(SEED);

# %% [markdown]
# ## 1. The published configurations
#
# A model's architecture is fully described by a handful of numbers in its `config.json`. The
# module `archlab.llms` holds them for the reading's models (sources in its docstring) as
# `transformers` config objects, so we can build the real architectures on the *meta device*,
# where tensors have shapes but no memory: a 72B model "exists" in a fraction of a second and
# costs nothing. Below, the published numbers against the defaults of each config class: the
# defaults describe other models, so every number has to be passed explicitly.

# %%
rows = ["| model | config class | field | published | class default |", "|---|---|---|---|---|"]
for name in llms.PUBLISHED:
    cfg = llms.published_config(name)
    for field, (published, default) in llms.differences_from_defaults(name).items():
        rows.append(f"| {name} | {type(cfg).__name__} | `{field}` | {published} | {default} |")
display(Markdown("\n".join(rows)))
for name, note in llms.NOTES.items():
    print(f"{name}: {note}")

# %% [markdown]
# ## 2. Exercise: RMSNorm
#
# GPT-2 normalises with LayerNorm: subtract the mean, divide by the standard deviation, scale
# and shift. Llama, Mixtral and Qwen2 use **RMSNorm** (Zhang & Sennrich 2019): no mean is
# subtracted and there is no shift, only a division by the root mean square and a learned
# per-channel gain $g$:
#
# $$\mathrm{RMSNorm}(x) = g \odot \frac{x}{\sqrt{\frac{1}{D}\sum_{j=1}^{D} x_j^2 + \epsilon}}$$
#
# It is cheaper and works as well in practice. Write `rms_norm(x, weight, eps=1e-6)` for `x` of
# shape `(..., D)` and `weight` (= $g$) of shape `(D,)`. Like `transformers`' `LlamaRMSNorm`,
# compute the normalisation in float32 and cast back to `x`'s dtype before multiplying by the
# weight (16-bit squares overflow or lose precision).

# %% nbgrader={"grade": false, "grade_id": "rms_norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rms_norm(x, weight, eps=1e-6):
    """x / sqrt(mean(x^2 over the last dim) + eps) * weight; x (..., D), weight (D,) -> (..., D)."""
    check_shape(weight, (x.shape[-1],), "weight")
    ### BEGIN SOLUTION
    x32 = x.to(torch.float32)
    inv_rms = torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + eps)   # (..., 1)
    return weight * (x32 * inv_rms).to(x.dtype)                           # (..., D)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_rms_norm", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""rms_norm: shape, a worked example; hidden: equals transformers' LlamaRMSNorm over random shapes, eps and dtypes."""
x1 = torch.tensor([[3.0, 4.0]])                       # (1, D=2): rms = sqrt((9 + 16) / 2)
y1 = rms_norm(x1, torch.tensor([1.0, 2.0]), eps=0.0)
assert_shape(y1, (1, 2), "rms_norm output")
r = math.sqrt(12.5)
assert_close(y1, torch.tensor([[3.0 / r, 2 * 4.0 / r]]), name="rms_norm of [3, 4] with weight [1, 2]")
### BEGIN HIDDEN TESTS
from transformers.models.llama.modeling_llama import LlamaRMSNorm

g = torch.Generator().manual_seed(6)
# float32: same operations, so tight; bfloat16: one rounding of the output, so about 1e-2
TOLS = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.bfloat16: dict(rtol=1.6e-2, atol=1e-2)}
for trial, (shape, eps) in enumerate([((2, 5, 8), 1e-6), ((7, 16), 1e-5), ((3, 1, 4, 6), 0.5), ((32,), 2.0)]):
    ref = LlamaRMSNorm(shape[-1], eps=eps)
    with torch.no_grad():
        ref.weight.copy_(torch.randn(shape[-1], generator=g))
    x = torch.randn(*shape, generator=g) * 3 + 1.5      # a non-zero mean: LayerNorm would differ
    for dtype in (torch.float32, torch.bfloat16):
        ref_d = copy.deepcopy(ref).to(dtype)
        with torch.no_grad():
            expected = ref_d(x.to(dtype))
            got = rms_norm(x.to(dtype), ref_d.weight.detach(), eps=eps)
        assert_close(got, expected, name=f"rms_norm vs LlamaRMSNorm (shape {shape}, eps {eps}, {dtype})", **TOLS[dtype])
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Exercise: rotary position embeddings (RoPE)
#
# GPT-2 adds a learned position vector to each token. RoPE (Su et al. 2021, arXiv:2104.09864)
# instead **rotates** the query and the key of the token at position $m$. The head width $d$ is
# split into $d/2$ pairs of coordinates; pair $i$ is rotated by the angle $m\,\theta_i$ with
# $\theta_i = \text{base}^{-2i/d}$, so the first pairs turn fast and the last ones slowly.
# Because a rotation by $m\theta$ followed by the transpose of a rotation by $n\theta$ is a
# rotation by $(m-n)\theta$, the score $q_m \cdot k_n$ depends on the positions only through
# $m - n$: attention sees **relative** positions, and nothing is added to the token vectors.
#
# Which coordinates form a pair is a convention. The paper pairs neighbours $(x_0, x_1), (x_2,
# x_3), \ldots$; the Llama code in `transformers` pairs **coordinate $j$ with $j + d/2$**: with
# $x = [x_1, x_2]$ split in halves,
#
# $$\mathrm{rope}(x) = x \odot \cos(m\,\Theta) + [-x_2, x_1] \odot \sin(m\,\Theta),\qquad
# \Theta = [\theta_0, \ldots, \theta_{d/2-1}, \theta_0, \ldots, \theta_{d/2-1}].$$
#
# Both are valid RoPE, but checkpoints trained with one give garbage with the other. Write
# `apply_rope(x, positions, base=10000.0)` with the **Llama (rotate-half) convention**: `x` is
# `(B, H, L, d)` with `d` even, `positions` holds integer positions, `(L,)` (the same for the
# whole batch) or `(B, L)`. Return the rotated tensor, same shape and dtype. (Llama 3 uses
# `base = 500000`, Mixtral and Qwen2 `1e6`: slower rotations for longer contexts.)

# %% nbgrader={"grade": false, "grade_id": "given_rope_checks", "locked": true, "schema_version": 3, "solution": false, "task": false}
def check_rope_inputs(x, positions):
    """Raise a ValueError naming the expected shapes if x and positions do not fit together."""
    sizes = {}
    check_shape(x, ("B", "H", "L", "d"), "x", sizes)
    if sizes["d"] % 2:
        raise ValueError(f"x must have an even head width d to be rotated in pairs; got d = {sizes['d']}")
    if not isinstance(positions, torch.Tensor) or positions.dim() not in (1, 2):
        raise ValueError(f"positions must be a tensor of shape (L,) = ({sizes['L']},) or (B, L) = "
                         f"({sizes['B']}, {sizes['L']}); got {getattr(positions, 'shape', type(positions).__name__)}")
    check_shape(positions, ("L",) if positions.dim() == 1 else ("B", "L"), "positions", sizes)


# %% nbgrader={"grade": false, "grade_id": "apply_rope", "locked": false, "schema_version": 3, "solution": true, "task": false}
def apply_rope(x, positions, base=10000.0):
    """Rotate pairs (j, j + d/2) of x (B, H, L, d) by positions * base^(-2i/d); Llama's convention."""
    check_rope_inputs(x, positions)
    ### BEGIN SOLUTION
    d = x.shape[-1]
    # 1. one frequency per pair: theta_i = base^(-2i/d), i = 0 .. d/2 - 1
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d))  # (d/2,)
    # 2. angle m * theta_i for every position, duplicated for the two halves
    angles = positions.to(torch.float32)[..., None] * inv_freq        # (L, d/2) or (B, L, d/2)
    angles = torch.cat([angles, angles], dim=-1)                      # (L, d) or (B, L, d)
    if positions.dim() == 2:
        angles = angles[:, None]                                      # (B, 1, L, d): same for all heads
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    # 3. rotate: coordinate j pairs with j + d/2
    x1, x2 = x[..., : d // 2], x[..., d // 2:]                        # each (B, H, L, d/2)
    rotated_half = torch.cat([-x2, x1], dim=-1)                       # (B, H, L, d)
    return x * cos + rotated_half * sin                               # (B, H, L, d)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_apply_rope", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""apply_rope: shape, position 0 is the identity, lengths kept, q.k depends only on the offset; hidden: equals transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb."""
xv = torch.randn(2, 3, 5, 8)
yv = apply_rope(xv, torch.arange(5))
assert_shape(yv, (2, 3, 5, 8), "apply_rope output")
assert_close(yv[:, :, 0], xv[:, :, 0], name="position 0 (no rotation)")
assert_close(yv.norm(dim=-1), xv.norm(dim=-1), rtol=1e-5, atol=1e-5, name="vector lengths (a rotation keeps them)")
# Worked example, d = 2: one pair rotated by m radians (theta_0 = 1).
e0 = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
assert_close(apply_rope(e0, torch.tensor([1])), torch.tensor([math.cos(1), math.sin(1)]).view(1, 1, 1, 2),
             name="[1, 0] rotated to position 1")
# The property: the score between a query at m and a key at n depends only on m - n.
q_, k_ = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
score = lambda m, n: float((apply_rope(q_, torch.tensor([m])) * apply_rope(k_, torch.tensor([n]))).sum())
for m, n in [(3, 1), (10, 10), (0, 7)]:
    for shift in (1, 5, 40):
        assert abs(score(m + shift, n + shift) - score(m, n)) < 1e-4, \
            f"q.k at positions ({m + shift}, {n + shift}) differs from ({m}, {n}): it must depend only on the offset"
### BEGIN HIDDEN TESTS
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

TOL = dict(rtol=1e-5, atol=1e-5)  # float32; positions < 600 keep float32 angles exact enough
g = torch.Generator().manual_seed(66)
for trial, (B_, H_, L_, d_, base_) in enumerate([(2, 3, 7, 8, 10000.0), (1, 4, 12, 16, 500000.0),
                                                  (3, 2, 5, 64, 1e6), (2, 1, 9, 2, 10000.0)]):
    cfg = LlamaConfig(hidden_size=H_ * d_, num_attention_heads=H_, head_dim=d_,
                      rope_parameters=dict(rope_type="default", rope_theta=base_))
    rot = LlamaRotaryEmbedding(cfg)
    x = torch.randn(B_, H_, L_, d_, generator=g)
    for pos in (torch.arange(L_), torch.randint(0, 600, (B_, L_), generator=g)):
        pos_ids = pos.expand(B_, L_)
        cos, sin = rot(x, pos_ids)                                   # (B, L, d)
        expected, _ = apply_rotary_pos_emb(x, x, cos, sin)          # (B, H, L, d)
        got = apply_rope(x, pos, base=base_)
        assert_shape(got, (B_, H_, L_, d_), "apply_rope output")
        assert_close(got, expected, name=f"apply_rope vs transformers' Llama RoPE (d={d_}, base={base_:g}, "
                                         f"positions {tuple(pos.shape)})", **TOL)
# dtype kept
assert apply_rope(torch.randn(1, 1, 3, 4, dtype=torch.bfloat16), torch.arange(3)).dtype == torch.bfloat16
### END HIDDEN TESTS

# %% [markdown]
# The test above checks the property: shifting both positions by the same amount leaves every
# score unchanged. Two more things to see: the frequencies $\theta_i$ span several orders of
# magnitude, and a larger base (Llama 3's 500 000) slows the slowest pairs so that they do not
# complete a turn even over a 128K context. Wavelength $2\pi/\theta_i$ in tokens, $d = 128$:

# %%
d_demo = 128
i = torch.arange(0, d_demo, 2, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(6, 3.5))
for base_demo, label in [(1e4, "base 10 000 (Llama 2)"), (5e5, "base 500 000 (Llama 3)"), (1e6, "base 1e6 (Mixtral, Qwen2)")]:
    ax.plot(i / 2, 2 * math.pi * base_demo ** (i / d_demo), label=label)
ax.axhline(131072, color="gray", linestyle=":", label="128K tokens")
ax.set_yscale("log")
ax.set_xlabel("pair index i")
ax.set_ylabel("wavelength (tokens)")
ax.set_title("RoPE: one full turn of pair i takes 2π/θ_i tokens")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 4. Exercise: grouped-query attention's `repeat_kv`
#
# In multi-head attention every query head has its own key and value head, so the KV cache
# holds $H$ heads per layer. **Grouped-query attention** (Ainslie et al. 2023,
# arXiv:2305.13245) keeps only $H_{kv} < H$ key/value heads; each serves a group of
# $H / H_{kv}$ consecutive query heads. Llama-3-70B and Qwen2-72B have 64 query heads and 8 KV
# heads: query heads 0-7 read KV head 0, heads 8-15 read KV head 1, and so on.
#
# The simplest implementation copies each KV head $n_{rep} = H/H_{kv}$ times, next to itself,
# and then runs ordinary attention. Write `repeat_kv(k, n_rep)`: `(B, H_kv, L, d)` →
# `(B, H_kv·n_rep, L, d)`, where output head $h$ is input head $\lfloor h / n_{rep} \rfloor$.

# %% nbgrader={"grade": false, "grade_id": "repeat_kv", "locked": false, "schema_version": 3, "solution": true, "task": false}
def repeat_kv(k, n_rep):
    """(B, H_kv, L, d) -> (B, H_kv * n_rep, L, d); output head h is input head h // n_rep."""
    check_shape(k, ("B", "H_kv", "L", "d"), "k")
    if not isinstance(n_rep, int) or n_rep < 1:
        raise ValueError(f"n_rep must be a positive int (query heads per KV head); got {n_rep!r}")
    ### BEGIN SOLUTION
    B, H_kv, L, d = k.shape
    k = k[:, :, None].expand(B, H_kv, n_rep, L, d)       # (B, H_kv, n_rep, L, d), a view: no copy yet
    return k.reshape(B, H_kv * n_rep, L, d)              # (B, H, L, d): copies of a head are adjacent
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_repeat_kv", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""repeat_kv: shape and the head order of a small example; hidden: equals transformers' repeat_kv over random shapes."""
k2 = torch.tensor([10.0, 20.0]).view(1, 2, 1, 1).expand(1, 2, 3, 4)   # (B=1, H_kv=2, L=3, d=4), head h filled with 10(h+1)
r2 = repeat_kv(k2, 3)
assert_shape(r2, (1, 6, 3, 4), "repeat_kv(k, 3) for 2 KV heads")
assert r2[0, :, 0, 0].tolist() == [10.0, 10.0, 10.0, 20.0, 20.0, 20.0], \
    f"query heads 0-2 must read KV head 0 and heads 3-5 KV head 1; got heads {r2[0, :, 0, 0].tolist()}"
assert_shape(repeat_kv(torch.randn(2, 4, 5, 8), 1), (2, 4, 5, 8), "repeat_kv(k, 1)")
### BEGIN HIDDEN TESTS
from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv

g = torch.Generator().manual_seed(7)
for B_, H_kv, L_, d_, n_rep in [(2, 4, 5, 8, 2), (1, 8, 3, 16, 8), (3, 2, 1, 4, 4), (2, 3, 6, 2, 1)]:
    kk = torch.randn(B_, H_kv, L_, d_, generator=g)
    got = repeat_kv(kk, n_rep)
    assert_shape(got, (B_, H_kv * n_rep, L_, d_), f"repeat_kv output (H_kv={H_kv}, n_rep={n_rep})")
    assert torch.equal(got, hf_repeat_kv(kk, n_rep)), f"repeat_kv differs from transformers' (H_kv={H_kv}, n_rep={n_rep})"
    assert torch.equal(got, torch.repeat_interleave(kk, n_rep, dim=1))
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Exercise: the SwiGLU MLP
#
# GPT-2's MLP is $W_2\,\mathrm{GELU}(W_1 x)$. The Llama family uses a gated linear unit with the
# SiLU ("swish") activation (Shazeer 2020, arXiv:2002.05202): two projections of the input, one
# passed through $\mathrm{SiLU}(z) = z\,\sigma(z)$ and used as a gate on the other, then a
# projection back:
#
# $$\mathrm{MLP}(x) = W_{down}\big(\mathrm{SiLU}(W_{gate}\,x) \odot W_{up}\,x\big).$$
#
# Three matrices instead of two, so the width $I$ is chosen about $\tfrac{2}{3}\cdot 4D$ to keep
# the parameter count of a $4D$ GELU MLP (Llama-2-7B: $I = 11008 \approx \tfrac{8}{3}\cdot 4096$).
# Write `swiglu_mlp(x, w_gate, w_up, w_down)` with the weights in `nn.Linear`'s layout (out
# features, in features): `w_gate` and `w_up` `(I, D)`, `w_down` `(D, I)`, no biases; `x` is
# `(..., D)`.

# %% nbgrader={"grade": false, "grade_id": "swiglu_mlp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def swiglu_mlp(x, w_gate, w_up, w_down):
    """w_down (silu(w_gate x) * (w_up x)); x (..., D), w_gate/w_up (I, D), w_down (D, I) -> (..., D)."""
    sizes = {}
    check_shape(w_gate, ("I", "D"), "w_gate", sizes)
    check_shape(w_up, ("I", "D"), "w_up", sizes)
    check_shape(w_down, ("D", "I"), "w_down", sizes)
    check_shape(x, (None,) * (x.dim() - 1) + ("D",), "x", sizes)
    ### BEGIN SOLUTION
    gate = F.silu(x @ w_gate.T)          # (..., I)
    up = x @ w_up.T                      # (..., I)
    return (gate * up) @ w_down.T        # (..., D)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_swiglu_mlp", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""swiglu_mlp: shape, a one-unit worked example; hidden: equals transformers' LlamaMLP with copied weights."""
# D = I = 1: w_gate = 2, w_up = 3, w_down = 0.5 -> 0.5 * silu(2x) * 3x
xs = torch.tensor([[1.0], [-2.0]])
ys = swiglu_mlp(xs, torch.tensor([[2.0]]), torch.tensor([[3.0]]), torch.tensor([[0.5]]))
assert_shape(ys, (2, 1), "swiglu_mlp output")
silu = lambda z: z / (1 + math.exp(-z))
assert_close(ys, torch.tensor([[0.5 * silu(2.0) * 3.0], [0.5 * silu(-4.0) * -6.0]]), name="the one-unit example")
assert_shape(swiglu_mlp(torch.randn(2, 5, 8), torch.randn(12, 8), torch.randn(12, 8), torch.randn(8, 12)), (2, 5, 8), "output")
### BEGIN HIDDEN TESTS
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaMLP

TOL = dict(rtol=1e-4, atol=1e-5)  # float32, different summation order in the matmuls
torch.manual_seed(8)
for D_, I_, shape in [(8, 24, (2, 5)), (16, 40, (7,)), (4, 4, (1, 2, 3))]:
    mlp = LlamaMLP(LlamaConfig(hidden_size=D_, intermediate_size=I_, num_attention_heads=1)).eval()
    x = torch.randn(*shape, D_)
    with torch.no_grad():
        expected = mlp(x)
        got = swiglu_mlp(x, mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight)
    assert_close(got, expected, name=f"swiglu_mlp vs LlamaMLP (D={D_}, I={I_})", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Exercise: a Llama decoder layer from your parts
#
# One layer of Llama 3, Mixtral (with a dense MLP) or Qwen2 is GPT-2's pre-norm block with the
# parts swapped in:
#
# 1. `h = rms_norm(x)` with `input_layernorm.weight`;
# 2. project `h` to queries `(B, H, L, d)`, keys and values `(B, H_kv, L, d)`
#    (`self_attn.q_proj`, `k_proj`, `v_proj`; Qwen2 adds a bias to these three, Llama has none);
# 3. rotate queries and keys with `apply_rope` (positions `0 .. L-1`; values are not rotated);
# 4. `repeat_kv` the keys and values to `H` heads;
# 5. causal attention, scores scaled by $1/\sqrt d$;
# 6. merge the heads, project with `self_attn.o_proj`, add to `x` (first residual);
# 7. `rms_norm` with `post_attention_layernorm.weight`, `swiglu_mlp` with `mlp.gate_proj`,
#    `up_proj`, `down_proj`, add (second residual).
#
# Write `decoder_layer(x, p, n_heads, n_kv_heads, eps=1e-6, base=10000.0)` where `p` is the
# layer's `state_dict()`: a dict from the names above (plus `.weight` / `.bias`) to tensors,
# exactly as `transformers` stores a `LlamaDecoderLayer` (the test copies one in). If `p`
# holds `self_attn.q_proj.bias`, use the biases. Use your `rms_norm`, `apply_rope`, `repeat_kv`
# and `swiglu_mlp`; write the attention itself with `matmul` and `softmax`.

# %% nbgrader={"grade": false, "grade_id": "given_layer_checks", "locked": true, "schema_version": 3, "solution": false, "task": false}
LAYER_WEIGHTS = ["input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                 "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                 "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"]


def check_layer_inputs(x, p, n_heads, n_kv_heads):
    """Raise a ValueError naming what is missing or the expected shape if x, p and the head counts disagree."""
    missing = [name for name in LAYER_WEIGHTS if name not in p]
    if missing:
        raise ValueError(f"p lacks {', '.join(missing)} (pass a LlamaDecoderLayer's state_dict())")
    if n_heads % n_kv_heads:
        raise ValueError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads ({n_kv_heads})")
    D = p["input_layernorm.weight"].shape[0]
    d = p["self_attn.q_proj.weight"].shape[0] // n_heads
    check_shape(x, ("B", "L", D), "x")
    check_shape(p["self_attn.q_proj.weight"], (n_heads * d, D), "self_attn.q_proj.weight")
    check_shape(p["self_attn.k_proj.weight"], (n_kv_heads * d, D), "self_attn.k_proj.weight")
    check_shape(p["self_attn.v_proj.weight"], (n_kv_heads * d, D), "self_attn.v_proj.weight")
    check_shape(p["self_attn.o_proj.weight"], (D, n_heads * d), "self_attn.o_proj.weight")


# %% nbgrader={"grade": false, "grade_id": "decoder_layer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def decoder_layer(x, p, n_heads, n_kv_heads, eps=1e-6, base=10000.0):
    """One pre-norm Llama/Qwen2 decoder layer: x (B, L, D) -> (B, L, D), weights from the state dict p."""
    check_layer_inputs(x, p, n_heads, n_kv_heads)
    ### BEGIN SOLUTION
    B, L, D = x.shape
    d = p["self_attn.q_proj.weight"].shape[0] // n_heads

    def proj(h, name):  # a Linear layer from the state dict; Qwen2's q/k/v carry a bias
        return F.linear(h, p[f"self_attn.{name}.weight"], p.get(f"self_attn.{name}.bias"))

    # 1. pre-norm
    h = rms_norm(x, p["input_layernorm.weight"], eps)                              # (B, L, D)
    # 2. projections, split into heads
    q = proj(h, "q_proj").view(B, L, n_heads, d).transpose(1, 2)                   # (B, H, L, d)
    k = proj(h, "k_proj").view(B, L, n_kv_heads, d).transpose(1, 2)                # (B, H_kv, L, d)
    v = proj(h, "v_proj").view(B, L, n_kv_heads, d).transpose(1, 2)                # (B, H_kv, L, d)
    # 3. positions enter only here, by rotating queries and keys
    positions = torch.arange(L, device=x.device)                                   # (L,)
    q, k = apply_rope(q, positions, base), apply_rope(k, positions, base)
    # 4. each KV head serves n_heads / n_kv_heads query heads
    k = repeat_kv(k, n_heads // n_kv_heads)                                        # (B, H, L, d)
    v = repeat_kv(v, n_heads // n_kv_heads)                                        # (B, H, L, d)
    # 5. causal attention
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)                                # (B, H, L, L)
    future = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)          # (L, L)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)     # (B, H, L, L)
    attn = (weights @ v).transpose(1, 2).reshape(B, L, n_heads * d)                # (B, L, H*d)
    # 6. output projection, first residual
    x = x + proj(attn, "o_proj")                                                   # (B, L, D)
    # 7. MLP on the normalised stream, second residual
    h = rms_norm(x, p["post_attention_layernorm.weight"], eps)                     # (B, L, D)
    return x + swiglu_mlp(h, p["mlp.gate_proj.weight"], p["mlp.up_proj.weight"], p["mlp.down_proj.weight"])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_decoder_layer", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""decoder_layer: shape, the first token ignores later ones; hidden: equals transformers' LlamaDecoderLayer and Qwen2DecoderLayer (QKV bias) with copied weights."""
from transformers import LlamaConfig, Qwen2Config
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

torch.manual_seed(9)
cfg_v = LlamaConfig(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2)
layer_v = LlamaDecoderLayer(cfg_v, layer_idx=0).eval()
p_v = {name: t.detach() for name, t in layer_v.state_dict().items()}
xl = torch.randn(2, 6, 32)
yl = decoder_layer(xl, p_v, 4, 2)
assert_shape(yl, (2, 6, 32), "decoder_layer output")
xl2 = xl.clone()
xl2[:, 1:] = torch.randn(2, 5, 32)                       # change every token but the first
assert_close(decoder_layer(xl2, p_v, 4, 2)[:, 0], yl[:, 0], rtol=1e-5, atol=1e-5,
             name="output at position 0 (causal: it must not see later tokens)")
### BEGIN HIDDEN TESTS
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer, Qwen2RotaryEmbedding

TOL = dict(rtol=1e-4, atol=1e-4)  # float32, about 10 matmuls in a different order
for trial, (cls, Layer, Rotary, D_, H_, H_kv, d_, L_, theta) in enumerate([
        (LlamaConfig, LlamaDecoderLayer, LlamaRotaryEmbedding, 32, 4, 2, 8, 7, 10000.0),
        (LlamaConfig, LlamaDecoderLayer, LlamaRotaryEmbedding, 48, 6, 6, 8, 5, 500000.0),
        (LlamaConfig, LlamaDecoderLayer, LlamaRotaryEmbedding, 32, 8, 2, 16, 6, 10000.0),   # head_dim != D/H
        (Qwen2Config, Qwen2DecoderLayer, Qwen2RotaryEmbedding, 32, 4, 1, 8, 6, 1e6)]):
    torch.manual_seed(100 + trial)
    cfg = cls(hidden_size=D_, intermediate_size=2 * D_, num_attention_heads=H_, num_key_value_heads=H_kv,
              head_dim=d_, rms_norm_eps=1e-5, rope_parameters=dict(rope_type="default", rope_theta=theta))
    cfg._attn_implementation = "eager"
    layer = Layer(cfg, layer_idx=0).eval()
    with torch.no_grad():
        for name, t in layer.named_parameters():
            if "layernorm" in name or name.endswith("bias"):
                t.copy_(torch.randn_like(t) * 0.5 + (1.0 if "layernorm" in name else 0.0))
    x = torch.randn(2, L_, D_)
    pos_ids = torch.arange(L_).expand(2, L_)
    cos_sin = Rotary(cfg)(x, pos_ids)
    mask = torch.full((L_, L_), float("-inf")).triu(1)[None, None]             # (1, 1, L, L) additive
    p = {name: t.detach() for name, t in layer.state_dict().items()}
    with torch.no_grad():
        expected = layer(x, attention_mask=mask, position_ids=pos_ids, position_embeddings=cos_sin)
        expected = expected[0] if isinstance(expected, tuple) else expected
        got = decoder_layer(x, p, H_, H_kv, eps=1e-5, base=theta)
    assert_close(got, expected, name=f"decoder_layer vs {Layer.__name__} (H={H_}, H_kv={H_kv}, d={d_})", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Exercise: counting parameters from a configuration
#
# With the parts known, the parameter count follows from the configuration (no biases unless
# stated; `d = head_dim` when the config sets it, else `D / H`):
#
# | part | parameters per layer |
# |---|---|
# | attention | $D \cdot Hd$ (q) $+\ 2 \cdot D \cdot H_{kv} d$ (k, v) $+\ Hd \cdot D$ (o); Qwen2 adds biases on q, k, v; a Llama config with `attention_bias=True` on q, k, v and o |
# | MLP | $3 \cdot D \cdot I$ (gate, up, down); `mlp_bias=True` adds $2I + D$ |
# | MoE MLP (Mixtral) | $E$ such MLPs and a router $D \cdot E$ |
# | norms | $2D$ |
#
# plus the embedding $V D$, the final norm $D$ and the output layer $V D$, **unless the
# embeddings are tied** (`tie_word_embeddings`): then the output layer reuses the embedding
# matrix and adds nothing. Qwen2-0.5B ties them (its 151,936 × 896 embedding is a quarter of
# the model); Qwen2-72B and Llama 3 do not.
#
# A token in a mixture-of-experts layer only runs through its top-$k$ experts, so the
# **active** parameters per token are the total minus the $E - k$ experts it skips in every
# layer. (By convention the whole embedding and output matrices count as active, though a
# token reads one row of the embedding.)
#
# Write `count_params(config)` returning `(total, active)` as Python ints, for
# `LlamaConfig`, `MixtralConfig` and `Qwen2Config` objects (`config.model_type` is `"llama"`,
# `"mixtral"` or `"qwen2"`). For a dense model `active == total`. The tests compare with the
# model built on the meta device, over the published configs and random small ones.

# %% nbgrader={"grade": false, "grade_id": "count_params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_params(config):
    """(total, active) parameters of a Llama / Mixtral / Qwen2 causal LM described by config."""
    if config.model_type not in ("llama", "mixtral", "qwen2"):
        raise ValueError(f"count_params handles llama, mixtral and qwen2 configs; got {config.model_type!r}")
    ### BEGIN SOLUTION
    V, D, I, n_L = config.vocab_size, config.hidden_size, config.intermediate_size, config.num_hidden_layers
    H, H_kv = config.num_attention_heads, config.num_key_value_heads
    d = getattr(config, "head_dim", None) or D // H
    # attention: q (D -> H d), k and v (D -> H_kv d), o (H d -> D)
    attn = D * H * d + 2 * D * H_kv * d + H * d * D
    if config.model_type == "qwen2":
        attn += H * d + 2 * H_kv * d                      # Qwen2: biases on q, k, v only
    elif getattr(config, "attention_bias", False):
        attn += H * d + 2 * H_kv * d + D                  # Llama option: biases on q, k, v and o
    # one SwiGLU MLP: gate and up (D -> I), down (I -> D)
    mlp = 3 * D * I + (2 * I + D if getattr(config, "mlp_bias", False) else 0)
    E = getattr(config, "num_local_experts", None)
    if E:
        k = config.num_experts_per_tok
        ffn_total, ffn_active = E * mlp + D * E, k * mlp + D * E   # experts + router
    else:
        ffn_total = ffn_active = mlp
    norms = 2 * D
    embed = V * D
    head = 0 if config.tie_word_embeddings else V * D
    total = embed + head + D + n_L * (attn + ffn_total + norms)
    active = embed + head + D + n_L * (attn + ffn_active + norms)
    return int(total), int(active)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_count_params", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""count_params: ints, Llama-3-8B equals its meta-device model; hidden: the other published configs (tied and untied, QKV bias, MoE active) and random small configs."""
cfg8 = llms.published_config("Llama-3-8B")
total8, active8 = count_params(cfg8)
assert isinstance(total8, int) and isinstance(active8, int), "return two Python ints"
meta8 = models.count_params(models.meta_model(cfg8))
assert total8 == meta8, f"Llama-3-8B: you counted {total8:,}, the model built on the meta device has {meta8:,}"
assert active8 == total8, "a dense model uses all its parameters for every token"
### BEGIN HIDDEN TESTS
from transformers import LlamaConfig, MixtralConfig, Qwen2Config


def meta_counts(cfg):
    """(total, active) of the meta-device model: active = total minus the experts a token skips."""
    net = models.meta_model(cfg)
    total = models.count_params(net)
    E = getattr(cfg, "num_local_experts", None)
    if not E:
        return total, total
    experts = sum(p.numel() for name, p in net.named_parameters() if ".experts." in name)
    return total, total - experts * (E - cfg.num_experts_per_tok) // E


cases = [(name, llms.published_config(name)) for name in llms.PUBLISHED]
small = dict(vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
             num_attention_heads=4, num_key_value_heads=2)
cases += [
    ("llama tied", LlamaConfig(**small, tie_word_embeddings=True)),
    ("llama biases", LlamaConfig(**small, attention_bias=True, mlp_bias=True)),
    ("llama head_dim 16", LlamaConfig(**small, head_dim=16)),
    ("qwen2 tied", Qwen2Config(**small, tie_word_embeddings=True)),
    ("qwen2 untied MHA", Qwen2Config(**{**small, "num_key_value_heads": 4})),
    ("mixtral 4 experts top-1", MixtralConfig(**small, num_local_experts=4, num_experts_per_tok=1)),
    ("mixtral tied 6 top-3", MixtralConfig(**small, num_local_experts=6, num_experts_per_tok=3, tie_word_embeddings=True)),
]
for name, cfg in cases:
    got = count_params(cfg)
    expected = meta_counts(cfg)
    assert tuple(got) == expected, f"{name}: you counted (total, active) = {tuple(got)}, the meta-device model has {expected}"
# the reading's Mixtral claim, checked: about 12.9B active, not 39B
assert 12.8e9 < count_params(llms.published_config("Mixtral-8x7B"))[1] < 13.0e9
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Exercise: KV-cache bytes per token
#
# Generating with a Transformer keeps every past token's key and value in every layer. With
# GQA only the $H_{kv}$ key/value heads are stored (the repeated copies of `repeat_kv` are
# never cached), so one token costs
#
# $$2 \cdot n_L \cdot H_{kv} \cdot d \cdot \text{bytes per value}$$
#
# bytes (2: a key and a value). Write `kv_bytes_per_token(config, bytes_per_value=2)` (2 bytes
# = bfloat16/float16, the usual serving precision; 4 = float32) returning an int. Use
# `config.head_dim` when the config sets it.

# %% nbgrader={"grade": false, "grade_id": "kv_bytes_per_token", "locked": false, "schema_version": 3, "solution": true, "task": false}
def kv_bytes_per_token(config, bytes_per_value=2):
    """Bytes of keys and values one token adds to the cache: 2 * layers * kv_heads * head_dim * bytes."""
    ### BEGIN SOLUTION
    d = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    H_kv = config.num_key_value_heads or config.num_attention_heads
    return int(2 * config.num_hidden_layers * H_kv * d * bytes_per_value)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_kv_bytes_per_token", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""kv_bytes_per_token: an int, a one-layer example; hidden: equals the cache tiny Llama/Qwen2/Mixtral models allocate (GQA, head_dim, float32 and bfloat16)."""
from transformers import LlamaConfig

one = LlamaConfig(hidden_size=8, num_attention_heads=4, num_key_value_heads=1, num_hidden_layers=1)
kv_one = kv_bytes_per_token(one, bytes_per_value=1)
assert isinstance(kv_one, int), f"return an int, got {type(kv_one).__name__}"
assert kv_one == 4, f"one layer, one KV head of width 8/4 = 2, 1 byte: a key and a value = 4 bytes; got {kv_one}"
### BEGIN HIDDEN TESTS
from archlab import measure

for family, overrides in [("llama", dict(num_key_value_heads=2)), ("llama", dict(head_dim=8)),
                          ("qwen2", {}), ("mixtral", dict(num_key_value_heads=1))]:
    for dtype, nbytes in [(torch.float32, 4), (torch.bfloat16, 2)]:
        net = models.build_model(family, "tiny", dtype=dtype, **overrides)
        B_, L_ = 2, 9
        with torch.no_grad():
            out = net(torch.randint(3, 200, (B_, L_)), use_cache=True)
        measured = measure.tensor_bytes(out.past_key_values) // (B_ * L_)
        got = kv_bytes_per_token(net.config, bytes_per_value=nbytes)
        assert got == measured, f"{family} {overrides} {dtype}: you computed {got} bytes per token, the model stores {measured}"
# the published configs against the formula written out
for name in llms.FOUR:
    c = llms.published_config(name)
    d_c = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads   # MixtralConfig leaves head_dim None
    assert kv_bytes_per_token(c) == 2 * c.num_hidden_layers * c.num_key_value_heads * d_c * 2, name
### END HIDDEN TESTS

# %% [markdown]
# ## 9. The four models in numbers: parameters, active parameters, and what GQA buys
#
# Your two functions on the published configurations, each total also recounted from the model
# built on the meta device. The KV cache is for **one** sequence in 16-bit; "MHA" is the same
# model with as many KV heads as query heads, which is what GQA saves. (Llama 3 was released
# with an 8K context; Llama 3.1, same shapes, reaches 128K.)

# %%
table = {}
for name in llms.FOUR:
    cfg = llms.published_config(name)
    total, active = count_params(cfg)
    assert total == models.count_params(models.meta_model(cfg)), f"{name}: count_params disagrees with the meta model"
    mha_cfg = llms.published_config(name, num_key_value_heads=cfg.num_attention_heads)
    table[name] = dict(total=total, active=active, heads=(cfg.num_attention_heads, cfg.num_key_value_heads),
                       kv=kv_bytes_per_token(cfg), kv_mha=kv_bytes_per_token(mha_cfg))

GiB = 2**30
rows = ["| model | parameters | active per token | H / H_kv | KV bytes per token | KV cache 8K | KV cache 128K | 128K without GQA (MHA) |",
        "|---|---|---|---|---|---|---|---|"]
for name, t in table.items():
    rows.append(f"| {name} | {t['total'] / 1e9:.2f}B | {t['active'] / 1e9:.2f}B | {t['heads'][0]} / {t['heads'][1]} "
                f"| {t['kv']:,} | {t['kv'] * 8192 / GiB:.2f} GiB | {t['kv'] * 131072 / GiB:.1f} GiB "
                f"| {t['kv_mha'] * 131072 / GiB:.0f} GiB |")
display(Markdown("\n".join(rows)))

mix_total, mix_active = table["Mixtral-8x7B"]["total"], table["Mixtral-8x7B"]["active"]
qwen_total = table["Qwen2-72B"]["total"]
print(f"Mixtral-8x7B: {mix_total:,} parameters, {mix_active:,} active per token "
      f"({mix_active / 1e9:.1f}B; the reading's 'about 39B activated' is wrong).")
print(f"Qwen2-72B: {qwen_total:,} parameters = {qwen_total:.3e} "
      f"(about 72.7 billion = 7.27 x 10^10; the reading's '72 billion x 10^8' is garbled).")
print(f"Mixtral at 256K tokens: {table['Mixtral-8x7B']['kv'] * 262144 / GiB:.0f} GiB of KV cache "
      f"(Jamba paper, Table 1: 32GB).")
q_small_tied, _ = count_params(llms.published_config("Qwen2-0.5B"))
q_small_untied, _ = count_params(llms.published_config("Qwen2-0.5B", tie_word_embeddings=False))
print(f"Qwen2-0.5B ties its output layer to the embedding: {q_small_tied:,} parameters; untied it would have "
      f"{q_small_untied:,} (+{q_small_untied / q_small_tied - 1:.0%}). Qwen2-72B has "
      f"tie_word_embeddings={llms.published_config('Qwen2-72B').tie_word_embeddings}: the reading's "
      f"'Embedding Tying' is true of the small Qwen2 models only (Qwen2 paper, Table 1).")

# %%
names = list(table)
fig, (ax_p, ax_kv) = plt.subplots(1, 2, figsize=(12, 4))
xpos = torch.arange(len(names)).float()
ax_p.bar(xpos - 0.2, [table[n]["total"] / 1e9 for n in names], width=0.4, label="total")
ax_p.bar(xpos + 0.2, [table[n]["active"] / 1e9 for n in names], width=0.4, label="active per token")
ax_p.set_xticks(xpos, names)
ax_p.set_ylabel("parameters (billions)")
ax_p.set_title("Parameters: only Mixtral's differ (top-2 of 8 experts)")
ax_p.legend()
for offset, (ctx, key, label, hatch) in zip([-0.3, -0.1, 0.1, 0.3], [
        (8192, "kv", "8K, GQA", ""), (8192, "kv_mha", "8K, MHA", "//"),
        (131072, "kv", "128K, GQA", ""), (131072, "kv_mha", "128K, MHA", "//")]):
    ax_kv.bar(xpos + offset, [table[n][key] * ctx / GiB for n in names], width=0.2, label=label, hatch=hatch,
              color="tab:blue" if key == "kv" else "tab:red", alpha=0.5 if ctx == 8192 else 0.9)
ax_kv.set_yscale("log")
ax_kv.set_xticks(xpos, names)
ax_kv.set_ylabel("KV cache of one sequence (GiB, 16-bit)")
ax_kv.set_title("What GQA buys: the cache divided by H / H_kv")
ax_kv.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.** The dense models use all their parameters for each token; Mixtral
# stores 46.7B but computes with 12.9B, because only the MLPs are replicated (attention,
# embeddings and norms are shared by all experts) and a token visits 2 of 8. The KV cache does
# not depend on the MLP at all: Mixtral's is Llama-3-8B's (same layers, heads and widths).
# GQA divides the cache by $H/H_{kv}$: 4 for the 8B models, 8 for the 70B ones. At 128K
# tokens Llama-3-70B needs 40 GiB of cache per sequence with GQA and would need 320 GiB
# without: more than the weights themselves, and that for one user. Tying, finally, is a
# small-model device: in Qwen2-0.5B the shared embedding saves over a fifth of the model, in a
# 72B model the output layer is about 2% of it and is kept separate.
#
# ## 10. The three families, small: generate, save, load
#
# The reading loads the real models from the Hub. That code is below; in this course it runs
# offline. Unless you set `LOAD_HUB_MODELS = True` (and have the disk, memory and network for
# tens of gigabytes), each call is made with `local_files_only=True` and an empty cache folder,
# so it cannot download anything and fails at once with `archlab`'s explanation. The reading's
# snippet for Mixtral, as written:
#
# ```python
# from transformers import AutoModelForCausalLM, AutoTokenizer
# tokenizer = AutoTokenizer.from_pretrained("mistralai/Mixtral-8x7B-v0.1")
# model = AutoModelForCausalLM.from_pretrained("mistralai/Mixtral-8x7B-v0.1", device_map="auto")
# ```
#
# (The reading's note that `transformers` "does not fully support" Mixtral is out of date: the
# library has a native Mixtral class, with the experts stored as fused 3-D tensors, and this
# notebook builds it below.)

# %%
def load_from_hub(hub_id):
    """The reading's from_pretrained(hub_id), through archlab.models.load; never downloads unless LOAD_HUB_MODELS."""
    if LOAD_HUB_MODELS:
        return models.load(hub_id, device_map="auto")
    with tempfile.TemporaryDirectory() as empty_cache:
        return models.load(hub_id, cache_dir=empty_cache, local_files_only=True)


for name in llms.FOUR:
    try:
        hub_model = load_from_hub(llms.hub_id(name))
        print(f"{name}: loaded {models.count_params(hub_model):,} parameters")
    except models.ModelNotAvailableOffline as err:
        print(f"--- {name} ---\n{err}\n")

# %% [markdown]
# Random weights of the same architectures, small, run the same code paths. Each family is
# built tiny with grouped-query attention (4 query heads, 2 KV heads), generates greedily from
# a random prompt, is saved to a local folder (safetensors + `config.json`, the same layout as
# a Hub checkpoint) and loaded back with `from_pretrained` on that folder; the loaded model must
# produce identical logits and the same continuation. Your `count_params` and
# `kv_bytes_per_token` are checked against the real objects on the way.

# %%
new_tokens = 8 if QUICK else 48
gen = torch.Generator().manual_seed(SEED)
with tempfile.TemporaryDirectory() as folder:
    for family in ("llama", "mixtral", "qwen2"):
        net = models.build_model(family, "tiny", seed=SEED, device=device, num_key_value_heads=2)
        prompt = torch.randint(3, net.config.vocab_size, (1, 6), generator=gen).to(device)   # (1, 6)
        with torch.no_grad():
            out_ids = net.generate(prompt, max_new_tokens=new_tokens, do_sample=False,
                                   pad_token_id=net.config.pad_token_id)                   # (1, 6 + new)
            cache = net(out_ids, use_cache=True).past_key_values
        path = models.save(net, os.path.join(folder, family))
        loaded = models.load(path, device=device)
        with torch.no_grad():
            same_logits = torch.equal(net(out_ids).logits, loaded(out_ids).logits)
            same_text = torch.equal(out_ids, loaded.generate(prompt, max_new_tokens=new_tokens, do_sample=False,
                                                            pad_token_id=net.config.pad_token_id))
        total, active = count_params(net.config)
        kv_measured = sum(t.numel() * t.element_size() for layer in cache.layers
                          for t in (layer.keys, layer.values)) // out_ids.shape[1]   # bytes per token
        assert total == models.count_params(net) and kv_bytes_per_token(net.config, 4) == kv_measured
        assert same_logits and same_text, f"{family}: the loaded model differs from the saved one"
        print(f"{family:8s} {type(net).__name__:20s} {total:,} parameters ({active:,} active), "
              f"{kv_measured} KV bytes/token (float32); generated {out_ids[0, 6:].tolist()}; "
              f"saved to {os.path.basename(str(path))}/ and loaded: identical logits")

# %% [markdown]
# ## 11. Explore: KV heads against cache size
#
# Pick one of the reading's models, a number of KV heads and a context length. The bars
# compare the cache of one sequence with your choice against multi-head attention (every query
# head keeps its own keys and values) and multi-query attention (one KV head for all, Shazeer
# 2019). The explorer calls *your* `kv_bytes_per_token`. Try Llama-3-70B at 128K: which choice
# brings one sequence's cache under the 16 GiB that a single consumer GPU might spare? What
# does that do to the number of parameters? (Hint: look at what `count_params` charges for
# $H_{kv}$.)

# %%
explorer = widgets.kv_cache_explorer({name: llms.published_config(name) for name in llms.FOUR}, kv_bytes_per_token)
explorer

# %% [markdown]
# ## 12. Checkpoint questions
#
# The reading has no questions for §6; these three are in its style. Each has an autograded
# part (a letter or a number in a code cell) and a written answer your instructor grades. Two
# or three sentences are enough.
#
# ### Checkpoint Questions
#
# - Why does **Mixtral 8×7B** hold about 47B parameters but use only about 13B for each token, and which parts of the model are **shared** by all experts?
# - What is **Grouped Query Attention (GQA)**, and how much does it shrink the **KV cache** of Llama-3-70B compared with ordinary multi-head attention?
# - How does **RoPE** encode a token's position, and why does the attention score between two tokens depend only on their **relative distance**?
#
# ### Question 1
# - Why does **Mixtral 8×7B** hold about 47B parameters but use only about 13B for each token, and which parts of the model are **shared** by all experts?
#
# Autograded part: set `q1_choice` to one letter.
#
# * **A.** It is eight 7B models side by side (8 × 7B = 56B); two of them run per token, 14B.
# * **B.** Only the MLP of each layer is replicated into 8 experts; attention, embeddings and
#   norms are shared. A token runs through the shared parts and 2 of the 8 experts.
# * **C.** All experts run for every token, but 6 of 8 outputs are discarded, so about 39B
#   parameters are active.
# * **D.** The weights are stored in 4-bit, which makes 47B parameters cost as much as 13B.

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
# **Model answer.** Mixtral is Mistral-7B's decoder with every MLP replaced by 8 expert MLPs
# and a router; the attention layers, the embedding and output matrices and the norms exist
# once and are used by every token. The router sends each token to its top 2 experts, so a
# token touches the shared parts (about 1.6B) plus 2 × 32 expert MLPs (about 11.3B): 12.9B,
# while all 46.7B must sit in memory. The name is misleading: it is not 8 × 7B = 56B,
# because only the MLPs are replicated, and not 39B active as the reading says.
#
# **Rubric (2 points).** 1 point: only the MLP (feed-forward) layers are experts; attention,
# embeddings and norms are shared. 1 point: top-2 routing means each token uses 2 of 8 experts,
# so active ≈ 13B while memory holds ≈ 47B (or a correct computation of either).
# ### END SOLUTION

# %% [markdown]
# ### Question 2
# - What is **Grouped Query Attention (GQA)**, and how much does it shrink the **KV cache** of Llama-3-70B compared with ordinary multi-head attention?
#
# Autograded part: set `q2_kv_shrink_factor` to the integer by which Llama-3-70B's KV cache
# (any context length) is smaller than that of the same model with one KV head per query head.

# %% nbgrader={"grade": false, "grade_id": "q2_kv_shrink_factor", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
q2_kv_shrink_factor = 8
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q2_kv_shrink_factor", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 2, autograded part: an int (hidden: H / H_kv of the published Llama-3-70B config)."""
assert isinstance(q2_kv_shrink_factor, int), f"q2_kv_shrink_factor must be an int; got {q2_kv_shrink_factor!r}"
### BEGIN HIDDEN TESTS
_c70 = llms.published_config("Llama-3-70B")
assert q2_kv_shrink_factor == _c70.num_attention_heads // _c70.num_key_value_heads
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q2_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** In GQA the query heads are split into groups that share one key/value
# head: Llama-3-70B has 64 query heads but only 8 KV heads, each serving 8 consecutive query
# heads. Only the 8 KV heads are cached, so the cache per token is
# 2 · 80 layers · 8 · 128 · 2 bytes = 320 KiB instead of 2.5 MiB: 8 times smaller (40 GiB
# instead of 320 GiB for one 128K-token sequence). Decoding reads the whole cache for every
# token, so this also speeds up memory-bound generation and allows bigger batches. The cost
# is fewer distinct keys/values (a small quality loss, Ainslie et al. 2023 find it close to
# MHA) and slightly fewer parameters in k_proj and v_proj.
#
# **Rubric (2 points).** 1 point: several query heads share one key/value head (groups), the
# queries stay separate. 1 point: the cache shrinks by H / H_kv = 64 / 8 = 8 for Llama-3-70B
# (or a correct bytes-per-token computation), with a reason it matters (memory per sequence,
# batch size or decode bandwidth).
# ### END SOLUTION

# %% [markdown]
# ### Question 3
# - How does **RoPE** encode a token's position, and why does the attention score between two tokens depend only on their **relative distance**?
#
# Autograded part: set `q3_choice` to one letter.
#
# * **A.** It adds a learned vector for each position to the token embedding before the first
#   layer.
# * **B.** It rotates each pair of coordinates of the query and the key by an angle
#   proportional to the position; the dot product of two rotated vectors depends only on the
#   difference of their angles.
# * **C.** It multiplies the query by the position and divides the key by it, so the product
#   cancels.
# * **D.** It adds a bias proportional to the distance to the attention score, as ALiBi does.

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
# **Model answer.** RoPE leaves the token vectors alone and, inside every attention layer,
# rotates the query and the key of the token at position $m$: each pair of coordinates turns
# by $m\theta_i$, with frequencies $\theta_i = \text{base}^{-2i/d}$ from fast to slow. A dot
# product of two vectors rotated by $m\theta$ and $n\theta$ equals the dot product of the
# originals with one of them rotated by $(m-n)\theta$, so the score depends on the positions
# only through $m - n$ (the test of `apply_rope` checks this). Values are not rotated. A larger
# base (Llama 3: 500 000) slows the rotations, which helps at long contexts.
#
# **Rubric (2 points).** 1 point: queries and keys (not the embeddings, not the values) are
# rotated by a position-dependent angle, per pair of dimensions with different frequencies.
# 1 point: the relative property is explained by rotations composing (angle difference) or
# shown with the formula.
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# * Llama 3, Mixtral and Qwen2 share one block: RMSNorm (no mean, no shift), RoPE on queries
#   and keys, grouped-query attention, a SwiGLU MLP. Qwen2 adds biases to q, k, v; Mixtral
#   replaces each MLP with 8 experts and a top-2 router.
# * A config alone gives the exact parameter count (your table in §9): Mixtral's active
#   parameters are a little over a quarter of its total, not the reading's 39B, and Qwen2-72B
#   has about 7.27 × 10^10 parameters.
# * The KV cache is $2 n_L H_{kv} d$ values per token; GQA divides it by $H/H_{kv}$, the
#   difference between tens and hundreds of gigabytes at 128K tokens.

# %%
# Parity record (scripts/parity.py compares a CPU run with a CUDA run): under
# `python -m autograder execute` these numbers are written beside the executed notebook; otherwise nothing is.
from archlab.parity import save_record

save_record(globals(), device, exact=["total8", "active8", "meta8", "table", "q_small_tied", "q_small_untied"], close=["yl"])
