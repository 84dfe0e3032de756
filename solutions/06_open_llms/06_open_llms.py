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
# **Estimated time:** 90 minutes.
#
# **How to start.** Run the cells from the top (*Run → Run All Cells* works once you have filled
# in the exercises). Every exercise is a cell that says `YOUR CODE HERE`: replace
# `raise NotImplementedError()` with your code, then run the test cell under it.
#
# **How to check your work.** The test cell under each exercise runs *visible* tests: a shape
# check and a small worked example whose numbers you can follow by hand; when your result
# matches a well-known mistake, the message names it. Passing them silently means those checks
# passed. When you submit, the grader also runs *hidden* tests (the Hugging Face `transformers`
# blocks with your weights copied in, random shapes, 16-bit inputs) that count towards your
# grade, so a passing visible test is necessary, not sufficient. The hidden tests also notice an
# answer that merely calls the library code it is compared with. Free-text answers are graded
# by your instructor.
#
# The reading describes Llama 3, Mixtral 8×7B and Qwen2-72B mostly by their training data and
# benchmarks. Under the hood all three are decoder-only Transformers that share four changes to
# GPT-2's block and drop most of its biases. Beyond those, Mixtral replaces each MLP with a
# sparse mixture of 8 expert MLPs and a router, and Qwen2 keeps biases on the query, key and
# value projections (Llama 3 and Mixtral have none). By the end you will be able to
# 1. write those four parts, **RMSNorm**, **rotary position embeddings (RoPE)**,
#    **grouped-query attention (GQA)** and the **SwiGLU** MLP, and assemble them into a decoder
#    layer that equals the one in `transformers`;
# 2. read the parameters (total and, for a mixture of experts, active per token) and the
#    KV-cache bytes of the real models off the library, from their published configurations
#    (notebooks 04 and 01 have you compute both by hand);
# 3. build each family small, generate with it, save it and load it back, and run the reading's
#    loading code against the Hugging Face Hub (offline here, so it explains what it would do).
#
# **Notation.** `B` batch, `L` sequence length, `D` model width (`hidden_size`), `H` query heads,
# `H_kv` key/value heads, `d` head width (`head_dim`; $D/H$ unless the config sets it), `I` MLP
# width (`intermediate_size`), `V` vocabulary, `n_L` layers, `E` experts, `k` experts per token.
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
from archlab.checks import (assert_close, assert_shape, check_choice, check_shape,
                            mistake, no_fused_attention, no_reference)
from archlab.course import setup

device, QUICK, GRADING = setup(DEVICE, QUICK, SEED)   # QUICK is always True while nbgrader grades (GRADING)
if GRADING:
    LOAD_HUB_MODELS = False   # the grader never downloads

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
SHOWN = [*llms.FOUR, "Qwen2-0.5B"]   # the registry also holds 04's Jamba-v0.1 and Llama-2-7B
for name in SHOWN:
    cfg = llms.published_config(name)
    for field, (published, default) in llms.differences_from_defaults(name).items():
        rows.append(f"| {name} | {type(cfg).__name__} | `{field}` | {published} | {default} |")
display(Markdown("\n".join(rows)))
for name in SHOWN:
    print(f"{name}: {llms.NOTES[name]}")

# %% [markdown]
# **The reading's tokenizer claim, corrected.** The reading says Llama 3's tokenizer "uses
# SentencePiece BPE and is compatible with Llama2". The configurations say otherwise: the
# vocabulary, the rows of the embedding matrix, has a different size.

# %%
vocab = {name: llms.published_config(name).vocab_size for name in ["Llama-2-7B", *llms.FOUR]}
for name, size in vocab.items():
    print(f"{name:13s} vocabulary {size:7,d} tokens")

# %% [markdown]
# Llama 2 has a 32,000-token SentencePiece BPE tokenizer; Llama 3 has a **new** BPE tokenizer
# of 128,256 tokens (128,000 learned tokens and 256 reserved special tokens) built on OpenAI's
# `tiktoken` library, which encodes the same text in noticeably fewer tokens (Meta, "Introducing
# Meta Llama 3", April 2024, and the Llama 3 model card). A token id means different text in the
# two models, so Llama 2's tokenizer files and pre-tokenised prompts cannot be reused with Llama
# 3. (Mixtral keeps Mistral's 32,000-token SentencePiece vocabulary; Qwen2 pads its 151,646
# tokens to 152,064 rows.)
#
# **The reading's training-scale claims, corrected.** The reading says the 405B model was
# trained on "15.6 trillion tokens, 50x more data than Llama2-70B", "for 54 days using hundreds
# of GPUs". The Llama 3 paper (Grattafiori et al. 2024, *The Llama 3 Herd of Models*,
# arXiv:2407.21783) says otherwise:
#
# * 15.6T tokens is right (§1), but Llama 2 was pretrained on 2T tokens (Touvron et al. 2023,
#   §2.1 and Table 1): about 8× the data. The "almost 50×" of the Llama 3 paper (§1) is the
#   training *compute*, 3.8 × 10²⁵ FLOPs against the largest Llama 2's. The cell below computes
#   both ratios, estimating Llama-2-70B's compute as 6 × parameters × tokens.
# * The 405B model was trained on up to 16K H100 GPUs (§3.3.1), not hundreds. The 54 days are a
#   snapshot period of its pre-training in which the paper counts 466 job interruptions
#   (§3.3.4), not the length of the training.
# * The 405B model came with Llama 3.1 (July 2024); the first Llama 3 release (April 2024) had
#   the 8B and 70B models.

# %%
llama3_405b_tokens, llama2_tokens = 15.6e12, 2.0e12       # Llama 3 paper §1; Llama 2 paper Table 1
llama3_405b_flops = 3.8e25                                 # Llama 3 paper §1
llama2_70b_flops = 6 * 70e9 * llama2_tokens                # 6 x parameters x tokens
print(f"data: {llama3_405b_tokens / llama2_tokens:.1f}x the 2T tokens of Llama 2")
print(f"compute: {llama3_405b_flops / llama2_70b_flops:.0f}x Llama-2-70B's "
      f"6 x 70e9 x 2e12 = {llama2_70b_flops:.1e} FLOPs")

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
# shape `(..., D)` and `weight` (= $g$) of shape `(D,)`: the mean of the squares is over the
# last dimension, one per vector, and $\epsilon$ goes *inside* the square root. Like
# `transformers`' `LlamaRMSNorm`, compute the normalisation in float32 and cast back to `x`'s
# dtype before multiplying by the weight (16-bit squares overflow or lose precision). Write it
# with tensor operations: torch's `nn.RMSNorm` / `F.rms_norm` and transformers' RMSNorm classes
# are what the hidden tests compare you with.

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
"""rms_norm: shape and a worked example of two vectors with eps = 0.25 (mistakes named: eps
placement, the axis of the mean, LayerNorm, the L2 norm, the weight); hidden: equals transformers'
LlamaRMSNorm over random shapes, eps and dtypes (float16 squares that overflow), without calling an
RMSNorm."""
# Worked example: rows (3, 4) and (0, 2), weight (1, 2), eps = 0.25. Mean squares 12.5 and 2, so
# the rows are divided by sqrt(12.75) and sqrt(2.25) = 1.5.
x1 = torch.tensor([[3.0, 4.0], [0.0, 2.0]])                                  # (2, D=2)
y1 = rms_norm(x1, torch.tensor([1.0, 2.0]), eps=0.25)
assert_shape(y1, (2, 2), "rms_norm output")
r0, r1 = math.sqrt(12.5 + 0.25), math.sqrt(2.0 + 0.25)
assert_close(y1, [[3 / r0, 2 * 4 / r0], [0.0, 2 * 2 / r1]],
             name="rms_norm of rows (3, 4), (0, 2), weight (1, 2), eps 0.25", mistakes={
    mistake("eps-added-outside-square", "eps added outside the square root: divide by sqrt(mean(x^2) + eps)"):
        [[3 / (math.sqrt(12.5) + 0.25), 8 / (math.sqrt(12.5) + 0.25)], [0.0, 4 / (math.sqrt(2.0) + 0.25)]],
    mistake("eps-ignored", "eps ignored: add eps to the mean square, inside the square root"):
        [[3 / math.sqrt(12.5), 8 / math.sqrt(12.5)], [0.0, 4 / math.sqrt(2.0)]],
    mistake("mean-over-wrong-axis",
        "mean over the wrong axis (dim=0): average the squares over the last dimension, one mean per vector"):
        [[3 / math.sqrt(4.5 + 0.25), 8 / math.sqrt(10.0 + 0.25)], [0.0, 4 / math.sqrt(10.0 + 0.25)]],
    mistake("mean-over-every-element",
        "mean over every element: average the squares over the last dimension only, one mean per vector"):
        [[3 / math.sqrt(7.25 + 0.25), 8 / math.sqrt(7.25 + 0.25)], [0.0, 4 / math.sqrt(7.25 + 0.25)]],
    mistake("subtracts-mean", "mean subtracted (that is LayerNorm): RMSNorm divides x itself by its root mean square"):
        [[-0.5 / math.sqrt(0.5), 1.0 / math.sqrt(0.5)], [-1 / math.sqrt(1.25), 2 / math.sqrt(1.25)]],
    mistake("divides-l2-norm-root", "divided by the L2 norm (a sum of squares): use the MEAN of the squares"):
        [[3 / math.sqrt(25.25), 8 / math.sqrt(25.25)], [0.0, 4 / math.sqrt(4.25)]],
    mistake("forgets-weight",
        "weight forgotten: multiply the normalised x by weight"): [[3 / r0, 4 / r0], [0.0, 2 / r1]]})
assert_shape(rms_norm(torch.randn(2, 3, 8), torch.ones(8)), (2, 3, 8), "rms_norm output for x of shape (2, 3, 8)")
### BEGIN HIDDEN TESTS
from torch.overrides import TorchFunctionMode
from transformers.models.llama.modeling_llama import LlamaRMSNorm


class _NoTorchRMSNorm(TorchFunctionMode):
    """Fail if torch's own RMSNorm kernel is called (no_reference sees Python code only)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.rms_norm, torch.nn.functional.rms_norm):
            raise AssertionError(mistake("calls-torch-s-rms",
                "rms_norm must be your own code: it called torch's rms_norm. Write it with "
                                 "pow, mean and rsqrt (the reference is what the tests compare you with)."))
        return func(*args, **(kwargs or {}))


REFERENCES = ("transformers.models.llama", "transformers.models.qwen2", "transformers.models.mistral",
              "transformers.models.mixtral", torch.nn.RMSNorm, torch.nn.functional.rms_norm)
g = torch.Generator().manual_seed(6)
# float32: same operations, so tight; 16-bit: one rounding of the output, so about one unit in the last place
TOLS = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.bfloat16: dict(rtol=1.6e-2, atol=1e-2),
        torch.float16: dict(rtol=2e-3, atol=2e-3)}
for _trial, (shape, eps, scale) in enumerate([((2, 5, 8), 1e-6, 3.0), ((7, 16), 1e-5, 3.0), ((3, 1, 4, 6), 0.5, 1.0),
                                             ((32,), 2.0, 1.0), ((4, 64), 1e-6, 300.0)]):
    ref = LlamaRMSNorm(shape[-1], eps=eps)
    with torch.no_grad():
        ref.weight.copy_(torch.randn(shape[-1], generator=g))
    x = torch.randn(*shape, generator=g) * scale + 1.5      # a non-zero mean: LayerNorm would differ
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        ref_d = copy.deepcopy(ref).to(dtype)
        with torch.no_grad():
            expected = ref_d(x.to(dtype))
            with no_reference(*REFERENCES, who="rms_norm"), _NoTorchRMSNorm():
                got = rms_norm(x.to(dtype), ref_d.weight.detach(), eps=eps)
        hint = (mistake("squares-not-in-float32",
                        " (16-bit squares overflow or round: normalise in float32, then cast back)")
                if dtype != torch.float32 else "")
        assert_close(got, expected,
                     name=f"rms_norm vs LlamaRMSNorm (shape {shape}, eps {eps}, |x| ~ {scale:g}, {dtype}){hint}",
                     **TOLS[dtype])
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Exercise: rotary position embeddings (RoPE)
#
# GPT-2 adds a learned position vector to each token. RoPE (Su et al. 2021, arXiv:2104.09864)
# instead **rotates** the query and the key of the token at position $m$. The head width $d$ is
# split into $d/2$ pairs of coordinates; pair $i$ is rotated by the angle $m\,\theta_i$ with
# $\theta_i = \text{base}^{-2i/d}$ ($i = 0, \ldots, d/2 - 1$), so the first pairs turn fast and
# the last ones slowly. Because a rotation by $m\theta$ followed by the transpose of a rotation
# by $n\theta$ is a rotation by $(m-n)\theta$, the score $q_m \cdot k_n$ depends on the positions
# only through $m - n$: attention sees **relative** positions, and nothing is added to the token
# vectors.
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
# whole batch) or `(B, L)` (each sequence its own). Compute the angles in float32 and return
# the rotated tensor, same shape and dtype. (Llama 3 uses `base = 500000`, Mixtral and Qwen2
# `1e6`: slower rotations for longer contexts.) Write it with tensor operations, not with
# transformers' rotary code (what the hidden tests compare you with).

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
"""apply_rope: shape; a worked example with d = 4 at position 3 (mistakes named: interleaved pairs,
the theta exponent, the direction, positions ignored); position 0 is the identity, lengths kept, q.k
depends only on the offset; hidden: equals transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb
for (L,) and (B, L) positions and bfloat16, without calling them."""
# Worked example: x = (1, 2, 3, 4) at position m = 3, base 100. Two pairs, theta = (100^0, 100^(-2/4))
# = (1, 0.1), so the angles are 3 and 0.3; rotate-half pairs x0 with x2 and x1 with x3.
x4 = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 4)                   # (B=1, H=1, L=1, d=4)
y4 = apply_rope(x4, torch.tensor([3]), base=100.0)
assert_shape(y4, (1, 1, 1, 4), "apply_rope output")
c0, s0, c1, s1 = math.cos(3), math.sin(3), math.cos(0.3), math.sin(0.3)
a_w = 3 * 100 ** -0.25                                                      # the angle with theta = base^(-i/d)
assert_close(y4.reshape(4), [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1], rtol=1e-5, atol=1e-5,
             name=mistake("worked-example-rotation-wrong", "(1, 2, 3, 4) rotated to position 3 with base 100"),
             mistakes={
    mistake("interleaved-pairs",
        "interleaved pairs (x0, x1), (x2, x3): Llama's convention pairs coordinate j with j + d/2 (rotate half)"):
        [1 * c0 - 2 * s0, 2 * c0 + 1 * s0, 3 * c1 - 4 * s1, 4 * c1 + 3 * s1],
    mistake("frequencies-base",
        "theta exponent -i/d: the frequencies are theta_i = base^(-2i/d) for pairs i = 0 .. d/2 - 1"):
        [1 * c0 - 3 * s0, 2 * math.cos(a_w) - 4 * math.sin(a_w),
         3 * c0 + 1 * s0, 4 * math.cos(a_w) + 2 * math.sin(a_w)],
    mistake("theta-exponent-4i-d",
        "theta exponent -4i/d (2i doubled, e.g. 2 * arange(0, d, 2) / d): theta_i = base^(-2i/d)"):
        [1 * c0 - 3 * s0, 2 * math.cos(0.03) - 4 * math.sin(0.03),
         3 * c0 + 1 * s0, 4 * math.cos(0.03) + 2 * math.sin(0.03)],
    mistake("theta-exponent-without-minus",
        "theta exponent without the minus sign: theta_i = base^(-2i/d) gets slower, not faster, for later pairs"):
        [1 * c0 - 3 * s0, 2 * math.cos(30) - 4 * math.sin(30), 3 * c0 + 1 * s0, 4 * math.cos(30) + 2 * math.sin(30)],
    mistake("rotates-other-way",
        "rotation in the wrong direction: rope(x) = x cos + [-x2, x1] sin, the minus on the second half"):
        [1 * c0 + 3 * s0, 2 * c1 + 4 * s1, 3 * c0 - 1 * s0, 4 * c1 - 2 * s1],
    mistake("positions-ignored",
        "positions ignored (0 .. L-1 used instead): rotate by the positions you are given"): [1.0, 2.0, 3.0, 4.0]})
xv = torch.randn(2, 3, 5, 8)
yv = apply_rope(xv, torch.arange(5))
assert_shape(yv, (2, 3, 5, 8), "apply_rope output")
assert_close(yv[:, :, 0], xv[:, :, 0], name="position 0 (no rotation)")
assert_close(yv.norm(dim=-1), xv.norm(dim=-1), rtol=1e-5, atol=1e-5, name="vector lengths (a rotation keeps them)")
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
ROTARY = ("transformers.models.llama", "transformers.models.qwen2", "transformers.models.mistral",
          "transformers.modeling_rope_utils")
g = torch.Generator().manual_seed(66)
for _trial, (B_, H_, L_, d_, base_) in enumerate([(2, 3, 7, 8, 10000.0), (1, 4, 12, 16, 500000.0),
                                                  (3, 2, 5, 64, 1e6), (2, 1, 9, 2, 10000.0)]):
    cfg = LlamaConfig(hidden_size=H_ * d_, num_attention_heads=H_, head_dim=d_,
                      rope_parameters=dict(rope_type="default", rope_theta=base_))
    rot = LlamaRotaryEmbedding(cfg)
    x = torch.randn(B_, H_, L_, d_, generator=g)
    for pos, which in ((torch.arange(L_), "(L,) positions"),
                       (torch.randint(0, 600, (B_, L_), generator=g),
                        mistake("per-sequence-positions-ignored", "(B, L) positions, each sequence its own"))):
        cos, sin = rot(x, pos.expand(B_, L_))                         # (B, L, d)
        expected, _ = apply_rotary_pos_emb(x, x, cos, sin)           # (B, H, L, d)
        with no_reference(*ROTARY, who="apply_rope"):
            got = apply_rope(x, pos, base=base_)
        assert_shape(got, (B_, H_, L_, d_), "apply_rope output")
        assert_close(got, expected, name=f"apply_rope vs transformers' Llama RoPE (d={d_}, base={base_:g}, {which})",
                     **TOL)
# bfloat16: the angles in float32, cos and sin cast to x's dtype (as transformers does)
xb = torch.randn(2, 2, 6, 8, generator=g).to(torch.bfloat16)
pos_b = torch.randint(0, 600, (6,), generator=g)
cfg = LlamaConfig(hidden_size=16, num_attention_heads=2, head_dim=8)
cos, sin = LlamaRotaryEmbedding(cfg)(xb, pos_b.expand(2, 6))
with no_reference(*ROTARY, who="apply_rope"):
    got_b = apply_rope(xb, pos_b)
assert got_b.dtype == torch.bfloat16, f"apply_rope must keep x's dtype (bfloat16 in, bfloat16 out); got {got_b.dtype}"
assert_close(got_b, apply_rotary_pos_emb(xb, xb, cos, sin)[0], rtol=2e-2, atol=2e-2,
             name="apply_rope in bfloat16 vs transformers (compute the angles in float32)")
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
for base_demo, label in [(1e4, "base 10 000 (Llama 2)"), (5e5, "base 500 000 (Llama 3)"),
                         (1e6, "base 1e6 (Mixtral, Qwen2)")]:
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
# $H / H_{kv}$ consecutive query heads. Llama-3-8B, for example, has 32 query heads and 8 KV
# heads: query heads 0-3 read KV head 0, heads 4-7 read KV head 1, and so on.
#
# The simplest implementation copies each KV head $n_{rep} = H/H_{kv}$ times, next to itself,
# and then runs ordinary attention. Write `repeat_kv(k, n_rep)`: `(B, H_kv, L, d)` →
# `(B, H_kv·n_rep, L, d)`, where output head $h$ is input head $\lfloor h / n_{rep} \rfloor$
# (copies of a head side by side, not the whole set of heads tiled). transformers has the same
# function; write your own (the hidden tests compare you with it).

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
"""repeat_kv: the shape and the head order of a small example (mistakes named: heads tiled, the
wrong axis); hidden: equals transformers' repeat_kv over random shapes, without calling it."""
k2 = torch.tensor([10.0, 20.0]).view(1, 2, 1, 1).expand(1, 2, 3, 4)   # (B=1, H_kv=2, L=3, d=4),
                                                                      # head h filled with 10(h+1)
r2 = repeat_kv(k2, 3)
assert isinstance(r2, torch.Tensor), f"repeat_kv must return a tensor, got {type(r2).__name__}"
assert_close(torch.tensor(r2.shape), [1, 6, 3, 4], rtol=0, atol=0,
             name="shape of repeat_kv(k, 3) for k of shape (1, 2, 3, 4)", mistakes={
    mistake("repeats-along-sequence-axis",
        "repeated along the sequence axis (dim 2): repeat the heads, dim 1"): [1, 2, 9, 4],
    mistake("repeated-along-head-width",
        "repeated along the head width (last dim): repeat the heads, dim 1"): [1, 2, 3, 12],
    mistake("repeated-along-batch-axis",
        "repeated along the batch axis (dim 0): repeat the heads, dim 1"): [3, 2, 3, 4]})
assert_close(r2[0, :, 0, 0], [10.0, 10.0, 10.0, 20.0, 20.0, 20.0],
             name="which KV head each of the 6 query heads reads", mistakes={
    mistake("tiles-heads",
        "heads tiled (k.repeat or torch.cat of copies): query heads 0-2 must read KV head 0 and heads 3-5 KV head 1; "
    "put the copies of a head side by side (repeat_interleave, or expand a new axis after the head axis)"):
        [10.0, 20.0, 10.0, 20.0, 10.0, 20.0]})
assert_shape(repeat_kv(torch.randn(2, 4, 5, 8), 1), (2, 4, 5, 8), "repeat_kv(k, 1)")
### BEGIN HIDDEN TESTS
from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv

g = torch.Generator().manual_seed(7)
for B_, H_kv, L_, d_, n_rep in [(2, 4, 5, 8, 2), (1, 8, 3, 16, 8), (3, 2, 1, 4, 4), (2, 3, 6, 2, 1)]:
    kk = torch.randn(B_, H_kv, L_, d_, generator=g)
    with no_reference("transformers.models.llama", "transformers.models.qwen2", "transformers.models.mistral",
                      "transformers.models.mixtral", who="repeat_kv"):
        got = repeat_kv(kk, n_rep)
    assert_shape(got, (B_, H_kv * n_rep, L_, d_), f"repeat_kv output (H_kv={H_kv}, n_rep={n_rep})")
    assert torch.equal(got, hf_repeat_kv(kk, n_rep)), \
        (f"repeat_kv differs from transformers' (B={B_}, H_kv={H_kv}, n_rep={n_rep}): "
         "output head h must be input head h // n_rep")
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
# `(..., D)`. The SiLU goes on the **gate** projection only. Write it with matrix products, not
# with transformers' MLP module (the hidden tests compare you with it).

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
"""swiglu_mlp: shape and a one-unit worked example (mistakes named: gate and up swapped, GELU,
sigmoid, no gate, no down projection); hidden: equals transformers' LlamaMLP with copied weights,
without calling it."""
# D = I = 1: w_gate = 2, w_up = 3, w_down = 0.5, so MLP(x) = 0.5 * silu(2x) * 3x.
xs = torch.tensor([[1.0], [-2.0]])
ys = swiglu_mlp(xs, torch.tensor([[2.0]]), torch.tensor([[3.0]]), torch.tensor([[0.5]]))
assert_shape(ys, (2, 1), "swiglu_mlp output")
sigmoid = lambda z: 1 / (1 + math.exp(-z))
silu = lambda z: z * sigmoid(z)
gelu = lambda z: z * 0.5 * (1 + math.erf(z / math.sqrt(2)))
assert_close(ys, [[0.5 * silu(2.0) * 3.0], [0.5 * silu(-4.0) * -6.0]],
             name="the one-unit example 0.5 * silu(2x) * 3x at x = 1, -2", mistakes={
    mistake("silu-up-projection-gate",
        "gate and up swapped (SiLU on the up projection): the SiLU goes on W_gate x, which multiplies W_up x"):
        [[0.5 * silu(3.0) * 2.0], [0.5 * silu(-6.0) * -4.0]],
    mistake("gelu-silu", "GELU instead of SiLU: Llama's gate is SiLU(z) = z * sigmoid(z)"):
        [[0.5 * gelu(2.0) * 3.0], [0.5 * gelu(-4.0) * -6.0]],
    mistake("sigmoid-gate", "sigmoid instead of SiLU (that is GLU): SiLU(z) = z * sigmoid(z)"):
        [[0.5 * sigmoid(2.0) * 3.0], [0.5 * sigmoid(-4.0) * -6.0]],
    mistake("no-gate", "no gate: SiLU(W_gate x) multiplies W_up x"): [[0.5 * silu(3.0)], [0.5 * silu(-6.0)]],
    mistake("no-down-projection", "no down projection: multiply the gated product by w_down (transposed) at the end"):
        [[silu(2.0) * 3.0], [silu(-4.0) * -6.0]]})
assert_shape(swiglu_mlp(torch.randn(2, 5, 8), torch.randn(12, 8), torch.randn(12, 8), torch.randn(8, 12)),
             (2, 5, 8), "output")
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
        with no_reference("transformers.models.llama", "transformers.models.qwen2", "transformers.models.mistral",
                          "transformers.models.mixtral", who="swiglu_mlp"):
            got = swiglu_mlp(x, mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight)
    assert_close(got, expected, name=f"swiglu_mlp vs LlamaMLP (D={D_}, I={I_}, x of shape {tuple(x.shape)})", **TOL)
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
# **The head width $d$ is not always $D/H$.** A config may set `head_dim` on its own (Gemma,
# Qwen3 and some Llama-architecture checkpoints do), so take $d$ from the weights: $d$ = the
# rows of `q_proj` divided by `n_heads` (the given check does the same), and scale the scores
# by $1/\sqrt d$ with that $d$. The visible test below uses such a layer.
#
# Write `decoder_layer(x, p, n_heads, n_kv_heads, eps=1e-6, base=10000.0)` where `p` is the
# layer's `state_dict()`: a dict from the names above (plus `.weight` / `.bias`) to tensors,
# exactly as `transformers` stores a `LlamaDecoderLayer` (the hidden tests copy one in). If `p`
# holds `self_attn.q_proj.bias`, use the biases. Use your `rms_norm`, `apply_rope`, `repeat_kv`
# and `swiglu_mlp`; write the attention itself with `matmul` and `softmax` (not torch's fused
# attention, not transformers' layers: the hidden tests compare you with them). The hidden tests
# run your layer with reference versions of the four parts in place of yours, so that a slip in
# one of them is not charged here a second time.

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
    d = p["self_attn.q_proj.weight"].shape[0] // n_heads                          # may differ from D / H

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


# %% nbgrader={"grade": true, "grade_id": "test_decoder_layer", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
"""decoder_layer: shape, and the first token ignores later ones; positions beyond 0 (the order of
earlier tokens matters, the same token gives the same output everywhere: RoPE missing on q or k, RoPE
on v named); a hand-sized layer of one token whose head width d = 2 is not D/H = 1 (mistakes named:
residuals, which norm goes where, post-norm, the head width); hidden: equals transformers'
LlamaDecoderLayer and Qwen2DecoderLayer (QKV bias, GQA, head_dim != D/H) with copied weights, with
reference parts in place of yours, without calling transformers' layers or torch's fused attention."""
# 1. Shape and causality on a random layer (D = 32, 4 query heads, 2 KV heads, d = 8, I = 64).
g_v = torch.Generator().manual_seed(9)
shapes_v = {"input_layernorm.weight": (32,), "self_attn.q_proj.weight": (32, 32), "self_attn.k_proj.weight": (16, 32),
            "self_attn.v_proj.weight": (16, 32), "self_attn.o_proj.weight": (32, 32),
            "post_attention_layernorm.weight": (32,),
            "mlp.gate_proj.weight": (64, 32), "mlp.up_proj.weight": (64, 32), "mlp.down_proj.weight": (32, 64)}
p_v = {name: torch.randn(*shape, generator=g_v) * 0.3 for name, shape in shapes_v.items()}
xl = torch.randn(2, 6, 32, generator=g_v)
yl = decoder_layer(xl, p_v, 4, 2)
assert_shape(yl, (2, 6, 32), "decoder_layer output")
xl2 = xl.clone()
xl2[:, 1:] = torch.randn(2, 5, 32, generator=g_v)                           # change every token but the first
assert_close(decoder_layer(xl2, p_v, 4, 2)[:, 0], yl[:, 0], rtol=1e-5, atol=1e-5,
             name=mistake("no-causal-mask",
                 "output at position 0 after changing tokens 1-5 (causal: it must not see later tokens; "
                  "mask the scores where key j > query i with -inf before the softmax)"))
# 2. Positions beyond 0. Without positions, attention is blind to order: a query at position 2 or
#    later reads the same (key, value) pairs whichever of tokens 0 and 1 comes first. RoPE tells them apart.
yl_swapped = decoder_layer(xl[:, [1, 0, 2, 3, 4, 5]], p_v, 4, 2)             # tokens 0 and 1 swapped
order_change = float((yl_swapped[:, 2:] - yl[:, 2:]).abs().max())
assert order_change > 1e-3, (
    mistake("no-rope",
        f"swapping tokens 0 and 1 changed the outputs at positions 2-5 by only {order_change:.1e}: the layer does not "
    f"see where a token is. RoPE not applied to q and k: rotate both the queries and the keys with "
    f"apply_rope(..., positions 0 .. L-1, base) before the scores"))
#    The same token at every position: every value is the same vector, so attention returns it, and
#    every position must give the same output (RoPE rotates queries and keys, never values).
y_same = decoder_layer(xl[:, :1].repeat(1, 6, 1), p_v, 4, 2)                   # token 0 at positions 0-5
assert_close(y_same, y_same[:, :1].expand(2, 6, 32), rtol=1e-4, atol=1e-4,
             name=mistake("rope-applied-v-well",
                 "outputs at positions 1-5 against position 0, the same token everywhere (identical tokens "
                  "have identical values, so the outputs must be equal; RoPE applied to v as well? "
                  "rotate only the queries and the keys)"))
# 3. Hand-sized layer: D = 2, H = 2 query heads of width d = 2 (so d is NOT D / H = 1), one KV head,
#    I = 1, one token x = (3, 4), eps = 0. With one token, each query reads only itself, so attention
#    returns its value; v_proj = identity and o_proj picks (head 0, coordinate 0) and (head 1,
#    coordinate 1), so the attention sub-layer returns its input, the normalised x.
p_hand = {"input_layernorm.weight": torch.tensor([1.0, 2.0]),
          "self_attn.q_proj.weight": torch.zeros(4, 2), "self_attn.k_proj.weight": torch.zeros(2, 2),
          "self_attn.v_proj.weight": torch.eye(2),
          "self_attn.o_proj.weight": torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]),
          "post_attention_layernorm.weight": torch.tensor([2.0, 1.0]),
          "mlp.gate_proj.weight": torch.tensor([[1.0, 0.0]]), "mlp.up_proj.weight": torch.tensor([[0.0, 1.0]]),
          "mlp.down_proj.weight": torch.tensor([[1.0], [1.0]])}
x_hand = torch.tensor([[[3.0, 4.0]]])                                       # (B=1, L=1, D=2)
r1 = math.sqrt((3 ** 2 + 4 ** 2) / 2)                                       # rms of x
h1 = [3 + 1 * 3 / r1, 4 + 2 * 4 / r1]                                       # x + attention = x + rms_norm(x) * (1, 2)
r2 = math.sqrt((h1[0] ** 2 + h1[1] ** 2) / 2)                               # rms of h1
n2 = [2 * h1[0] / r2, 1 * h1[1] / r2]                                       # post_attention_layernorm, weight (2, 1)
m = n2[0] / (1 + math.exp(-n2[0])) * n2[1]                                  # silu(gate) * up;
                                                                            # down_proj copies it to both
# decoder_layer uses your parts: first check the two this example needs (each has its own test above)
assert_close(rms_norm(x_hand, p_hand["input_layernorm.weight"], 0.0), [[[3 / r1, 2 * 4 / r1]]],
             rtol=1e-5, atol=1e-6,
             name="your rms_norm on the hand-sized layer's input "
                  "(decoder_layer uses it: make test_rms_norm pass first)")
assert_close(swiglu_mlp(torch.tensor([n2]), p_hand["mlp.gate_proj.weight"], p_hand["mlp.up_proj.weight"],
                        p_hand["mlp.down_proj.weight"]), [[m, m]], rtol=1e-5, atol=1e-6,
             name="your swiglu_mlp on the hand-sized layer (decoder_layer uses it: make test_swiglu_mlp pass first)")
try:
    y_hand = decoder_layer(x_hand, p_hand, 2, 1, eps=0.0)
except RuntimeError as err:
    raise AssertionError(mistake("head-width-always-d",
        f"decoder_layer raised on a layer whose head width d = 2 is not D / H = 1 ({err}). "
                         f"The head width may differ from D / H: take it from the weights, "
                         f"d = rows of self_attn.q_proj.weight // n_heads")) from None
assert_shape(y_hand, (1, 1, 2), "decoder_layer output of the hand-sized layer")
assert_close(y_hand, [[[h1[0] + m, h1[1] + m]]], rtol=1e-5, atol=1e-5,
             name="the hand-sized layer (one token x = (3, 4))", mistakes={
    mistake("no-residual-connections",
        "no residual connections: add the attention output to x, then the MLP output to that"):
        [[[0.9596122308059941, 0.9596122308059941]]],
    mistake("no-first-residual",
        "no first residual: the MLP's input is x + attention output, not the attention output alone"):
        [[[1.8081403682298511, 3.2223539306029463]]],
    mistake("no-second-residual", "no second residual: return h + swiglu_mlp(...), not the MLP output alone"):
        [[[1.4536407654248251, 1.4536407654248251]]],
    mistake("norms-swapped",
        "norms swapped: input_layernorm goes before attention, post_attention_layernorm before the MLP"):
        [[[6.135617513478595, 6.569932088529356]]],
    mistake("input-layernorm-used-twice",
        "input_layernorm used twice: the MLP's input is normalised with post_attention_layernorm.weight"):
        [[[5.056632765576852, 7.470846327949947]]],
    mistake("post-norm-normalises-after",
        "post-norm (normalised after each residual): Llama normalises each sub-layer's input (pre-norm) "
    "and adds the raw output"):
        [[[1.4693188351069104, 1.208418611326397]]],
    mistake("no-norm-before-mlp",
        "no norm before the MLP: apply rms_norm with post_attention_layernorm.weight, then swiglu_mlp"):
        [[[27.447936890424387, 29.86215045279748]]],
    mistake("no-norm-before-attention", "no norm before attention: apply rms_norm with input_layernorm.weight first"):
        [[[7.622687762514234, 9.622687762514234]]]})
### BEGIN HIDDEN TESTS
from transformers import LlamaConfig, Qwen2Config
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer, Qwen2RotaryEmbedding


# Reference parts, so that decoder_layer is graded on its own (each of your parts has its own test).
def _ref_rms_norm(x, weight, eps=1e-6):
    x32 = x.float()
    return weight * (x32 / torch.sqrt(x32.square().mean(-1, keepdim=True) + eps)).to(x.dtype)


def _ref_apply_rope(x, positions, base=10000.0):
    d = x.shape[-1]
    theta = base ** (-torch.arange(d // 2, dtype=torch.float32) * 2 / d)           # (d/2,)
    ang = positions.float()[..., None] * theta                                     # (..., L, d/2)
    ang = ang[:, None] if positions.dim() == 2 else ang
    cos, sin = ang.cos(), ang.sin()                                                # (..., L, d/2)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).to(x.dtype)


def _ref_repeat_kv(k, n_rep):
    return torch.repeat_interleave(k, n_rep, dim=1)


def _ref_swiglu_mlp(x, w_gate, w_up, w_down):
    return F.linear(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


LAYERS = ("transformers.models.llama", "transformers.models.qwen2", "transformers.models.mistral",
          "transformers.models.mixtral", "transformers.integrations.sdpa_attention")
TOL = dict(rtol=1e-4, atol=1e-4)  # float32, about 10 matmuls in a different order
_students_parts = dict(rms_norm=rms_norm, apply_rope=apply_rope, repeat_kv=repeat_kv, swiglu_mlp=swiglu_mlp)
globals().update(rms_norm=_ref_rms_norm, apply_rope=_ref_apply_rope,
                 repeat_kv=_ref_repeat_kv, swiglu_mlp=_ref_swiglu_mlp)
try:
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
            with no_reference(*LAYERS, who="decoder_layer"), no_fused_attention(who="decoder_layer"):
                got = decoder_layer(x, p, H_, H_kv, eps=1e-5, base=theta)
        what = f"{Layer.__name__}: H={H_}, H_kv={H_kv}, d={d_}{' (not D/H)' if d_ != D_ // H_ else ''}, base {theta:g}"
        assert_close(got, expected, name=mistake("scores-scaled-sqrt", f"decoder_layer vs {what}"), **TOL)
finally:
    globals().update(_students_parts)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. The four models in numbers, through the library
#
# Notebook 04 has you count parameters from a configuration piece by piece, and notebook 01
# compute a KV cache; here the library does both for the reading's four models, so that the
# numbers come from the real architectures. `models.meta_model(config)` builds the model
# transformers defines for the configuration on the meta device (shapes, no memory: a 72B model
# costs nothing) and `models.n_parameters` adds up its parameters; Mixtral's *active*
# parameters are the total minus the expert weights a token skips, $E - k$ of every $E$.
# `models.cache_bytes(config, seq_len)` runs transformers' model on the meta device and adds up
# the cache it returns.

# %% nbgrader={"grade": false, "grade_id": "given_library_counts", "locked": true, "schema_version": 3, "solution": false, "task": false}
def parameters_of(config):
    """(total, active) parameters of the model transformers builds for config, counted on the meta device."""
    net = models.meta_model(config)                                     # shapes only, no memory
    total = models.n_parameters(net)
    n_exp = getattr(config, "num_local_experts", None)
    if not n_exp:
        return total, total                                             # dense: every weight works on every token
    expert_weights = sum(p.numel() for name, p in net.named_parameters() if ".experts." in name)
    return total, total - expert_weights * (n_exp - config.num_experts_per_tok) // n_exp


_cache_measured = {}


def cache_bytes_per_token(config, whole_model=not QUICK):
    """Bytes of cache one token adds (16-bit values), measured: transformers' own cache of the model
    on the meta device after one token (a Transformer's cache has no fixed part, so one token's cache
    is what every token costs). Measuring all 80 layers of a 70B model takes seconds, so with
    whole_model=False (QUICK) one layer of the model is measured and multiplied by the number of
    layers: every layer of these decoders keeps the same keys and values (checked below)."""
    key = (config.to_json_string(), whole_model)
    if key not in _cache_measured:
        if whole_model:
            _cache_measured[key] = models.cache_bytes(config, 1)
        else:
            one_layer = copy.deepcopy(config)
            one_layer.num_hidden_layers = 1
            _cache_measured[key] = models.cache_bytes(one_layer, 1) * config.num_hidden_layers
    return _cache_measured[key]


# the shortcut, checked on a small model of each family: one layer times the layers = the whole model
for family in ("llama", "mixtral", "qwen2"):
    small = models.make_config(family, "tiny", num_key_value_heads=2)
    assert cache_bytes_per_token(small, whole_model=False) == cache_bytes_per_token(small, whole_model=True), family


# %% [markdown]
# The table: parameters, active parameters and the KV cache of **one** sequence in 16-bit;
# "MHA" is the same model with as many KV heads as query heads, which is what GQA saves.
# (Llama 3 was released with an 8K context; Llama 3.1, same shapes, reaches 128K.) The cache
# is measured layer by layer with QUICK (whole models with `QUICK = False`), and the table is
# skipped while grading: no graded test reads it.

# %%
table = {}
if GRADING:
    print("skipped while grading: no graded test reads this table")
for name in ([] if GRADING else llms.FOUR):
    cfg = llms.published_config(name)
    total, active = parameters_of(cfg)
    mha_cfg = llms.published_config(name, num_key_value_heads=cfg.num_attention_heads)
    table[name] = dict(total=total, active=active, kv=cache_bytes_per_token(cfg), kv_mha=cache_bytes_per_token(mha_cfg))

GiB = 2**30
if table:
    rows = ["| model | parameters | active per token | KV bytes per token | KV cache 8K | KV cache 128K "
            "| 128K without GQA (MHA) |",
            "|---|---|---|---|---|---|---|"]
    for name, t in table.items():
        rows.append(f"| {name} | {t['total'] / 1e9:.2f}B | {t['active'] / 1e9:.2f}B "
                    f"| {t['kv']:,} | {t['kv'] * 8192 / GiB:.2f} GiB | {t['kv'] * 131072 / GiB:.1f} GiB "
                    f"| {t['kv_mha'] * 131072 / GiB:.0f} GiB |")
    display(Markdown("\n".join(rows)))

    mix_total, mix_active = table["Mixtral-8x7B"]["total"], table["Mixtral-8x7B"]["active"]
    qwen_total = table["Qwen2-72B"]["total"]
    print(f"Mixtral-8x7B: {mix_total:,} parameters, {mix_active:,} active per token "
          f"({mix_active / 1e9:.1f}B; the reading's 'about 39B activated' is wrong).")
    print(f"Qwen2-72B: {qwen_total:,} parameters = {qwen_total:.3e} "
          f"(about 72.7 billion = 7.27 x 10^10; the reading's '72 billion x 10^8' is garbled).")
    print(f"Mixtral at 256K tokens: {table['Mixtral-8x7B']['kv'] * 256 * 1024 / GiB:.0f} GiB of KV cache "
          f"(Jamba paper, Table 1: 32GB).")
    q_small_tied, _ = parameters_of(llms.published_config("Qwen2-0.5B"))
    q_small_untied, _ = parameters_of(llms.published_config("Qwen2-0.5B", tie_word_embeddings=False))
    print(f"Qwen2-0.5B ties its output layer to the embedding: {q_small_tied:,} parameters; untied it would have "
          f"{q_small_untied:,} (+{q_small_untied / q_small_tied - 1:.0%}). Qwen2-72B has "
          f"tie_word_embeddings={llms.published_config('Qwen2-72B').tie_word_embeddings}: the reading's "
          f"'Embedding Tying' is true of the small Qwen2 models only (Qwen2 paper, Table 1).")

# %%
if table:
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
    ax_kv.set_title("What GQA buys: the cache with H_kv against H key/value heads")
    ax_kv.legend(fontsize=8)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# **What to look for.** The dense models use all their parameters for each token; Mixtral
# stores 46.7B but computes with 12.9B, because only the MLPs are replicated (attention,
# embeddings and norms are shared by all experts) and a token visits 2 of 8. The KV cache does
# not depend on the MLP at all: Mixtral's is Llama-3-8B's (same layers, heads and widths).
# Compare the two 128K columns: Llama-3-8B holds 16 GiB of cache per sequence with GQA against
# 64 GiB without, more than the 16 GB its weights take in 16-bit, and that for one user. Tying,
# finally, is a small-model device: in Qwen2-0.5B the shared embedding saves over a fifth of the
# model, in a 72B model the output layer is about 2% of it and is kept separate.
#
# ## 8. The three families, small: generate, save, load
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
        print(f"{name}: loaded {models.n_parameters(hub_model):,} parameters")
    except models.ModelNotAvailableOffline as err:
        print(f"--- {name} ---\n{err}\n")

# %% [markdown]
# Random weights of the same architectures, small, run the same code paths. Each family is
# built tiny with grouped-query attention (4 query heads, 2 KV heads), generates greedily from
# a random prompt, is saved to a local folder (safetensors + `config.json`, the same layout as
# a Hub checkpoint) and loaded back with `from_pretrained` on that folder; the loaded model must
# produce identical logits and the same continuation. On the way, the real model's parameters
# and cache must be what the meta-device helpers above report for its configuration. (Skipped
# while grading: no graded test reads it.)

# %%
new_tokens = 8 if QUICK else 48
gen = torch.Generator().manual_seed(SEED)
if GRADING:
    print("skipped while grading: no graded test reads it")
with tempfile.TemporaryDirectory() as folder:
    for family in ([] if GRADING else ["llama", "mixtral", "qwen2"]):
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
        total, active = parameters_of(net.config)
        L_out = out_ids.shape[1]
        kv_real = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
        assert total == models.n_parameters(net), f"{family}: the meta-device count differs from the real model"
        assert kv_real == models.cache_bytes(net.config, L_out, dtype=torch.float32), \
            f"{family}: the meta-device cache differs from the real model's"
        assert same_logits and same_text, f"{family}: the loaded model differs from the saved one"
        print(f"{family:8s} {type(net).__name__:20s} {total:,} parameters ({active:,} active), "
              f"{kv_real // L_out} KV bytes/token (float32); generated {out_ids[0, 6:].tolist()}; "
              f"saved to {os.path.basename(str(path))}/ and loaded: identical logits")

# %% [markdown]
# ## 9. Explore: KV heads against cache size
#
# Pick one of the reading's models, a number of KV heads and a context length. The bars
# compare the cache of one sequence with your choice against multi-head attention (every query
# head keeps its own keys and values) and multi-query attention (one KV head for all, Shazeer
# 2019). Each bar is measured: transformers' cache of the model with that many KV heads, on the
# meta device (`cache_bytes_per_token` above). Try Llama-3-70B at 128K: which choice brings one
# sequence's cache under the 16 GiB that
# a single consumer GPU might spare? What does that do to the number of parameters? (Hint: which
# projections have $H_{kv}$ heads?)

# %%
explorer = widgets.kv_cache_explorer({name: llms.published_config(name) for name in llms.FOUR}, cache_bytes_per_token)
explorer

# %% [markdown]
# ## 10. Checkpoint questions
#
# The reading has no questions for §6; these three are in its style. Each has an autograded
# part (a letter or a number in a code cell) and a written answer your instructor grades. Two
# or three sentences are enough.
#
# ### Checkpoint Questions
#
# - Why does **Mixtral 8×7B** hold about 47B parameters but use only about 13B for each token, and
#   which parts of the model are **shared** by all experts?
# - What is **Grouped Query Attention (GQA)**, and how much does it shrink the **KV cache** of
#   Llama-3-70B compared with ordinary multi-head attention?
# - How does **RoPE** encode a token's position, and why does the attention score between two tokens
#   depend only on their **relative distance**?
#
# ### Question 1
# - Why does **Mixtral 8×7B** hold about 47B parameters but use only about 13B for each token, and
#   which parts of the model are **shared** by all experts?
#
# Autograded part: suppose Mixtral sent every token to 4 of its 8 experts instead of 2, with
# nothing else changed. Which statement is right? Set `q1_choice` to one letter.
#
# * **A.** The total stays 46.7B; the active count grows by the MLP weights of two more experts in
#   every layer, to about 24B; the KV cache per token is unchanged.
# * **B.** Total and active both double, to about 93B and 26B, since every layer then needs its own
#   copy of the attention weights for each extra expert it uses.
# * **C.** Nothing changes: all 8 experts already run on every token, and the router's choice of 2
#   or 4 only decides which of their outputs get the larger weights.
# * **D.** The total stays 46.7B and the active count grows to about 24B, but the KV cache per
#   token doubles, since each of the 4 experts keeps keys and values.

# %% nbgrader={"grade": false, "grade_id": "q1_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q1_choice = "?"   # one of "A", "B", "C", "D"
### BEGIN SOLUTION
q1_choice = "A"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q1_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 1, autograded part: q1_choice is one capital letter A-D (hidden: the right letter)."""
check_choice(q1_choice, "q1_choice")
### BEGIN HIDDEN TESTS
assert q1_choice == "A", (mistake("wrong-letter",
    "q1_choice is not the right letter: which parts of Mixtral exist once, which eight times, "
                          "and which of them does a token use more of with 4 experts? (parameters_of and the model's "
                          "named parameters can tell you)"))
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
# - What is **Grouped Query Attention (GQA)**, and how much does it shrink the **KV cache** of
#   Llama-3-70B compared with ordinary multi-head attention?
#
# Autograded part: set `q2_kv_shrink_factor` to the integer by which Llama-3-70B's KV cache
# (any context length) is smaller than that of the same model with one KV head per query head.

# %% nbgrader={"grade": false, "grade_id": "q2_kv_shrink_factor", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q2_kv_shrink_factor = ?   # an int
### BEGIN SOLUTION
q2_kv_shrink_factor = 8
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q2_kv_shrink_factor", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 2, autograded part: an int (hidden: the factor for the published Llama-3-70B config)."""
assert isinstance(q2_kv_shrink_factor, int) and not isinstance(q2_kv_shrink_factor, bool), \
    mistake("float", f"q2_kv_shrink_factor must be an int (a whole number such as 3), got {q2_kv_shrink_factor!r}")
### BEGIN HIDDEN TESTS
_c70 = llms.published_config("Llama-3-70B")
assert q2_kv_shrink_factor == _c70.num_attention_heads // _c70.num_key_value_heads, \
    (mistake("64-query-heads",
        "q2_kv_shrink_factor is not Llama-3-70B's factor: how many query heads share one KV head in its configuration "
     "(llms.published_config('Llama-3-70B'))?"))
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
# *After question 2.* The §7 table's two 128K columns show GQA's saving for each model: the cache
# shrinks by $H / H_{kv}$, the number of query heads that share one key/value head.

# %% [markdown]
# ### Question 3
# - How does **RoPE** encode a token's position, and why does the attention score between two tokens
#   depend only on their **relative distance**?
#
# Autograded part: which statement answers it? Set `q3_choice` to one letter.
#
# * **A.** It adds a learned vector for each position to the token embeddings before the first
#   layer, and the model learns from data to compare two positions' vectors by their distance.
# * **B.** It turns each coordinate pair of a query and of a key through an angle proportional to
#   its position; a dot product of two turned vectors depends only on the angle difference.
# * **C.** It adds fixed sine and cosine waves of the position to the token embeddings, as the
#   original Transformer does; their products make every score a function of the distance alone.
# * **D.** It adds to every attention score a bias proportional to the distance between query and
#   key, as ALiBi does, so that nearby tokens get larger scores than distant ones in every layer.

# %% nbgrader={"grade": false, "grade_id": "q3_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q3_choice = "?"   # one of "A", "B", "C", "D"
### BEGIN SOLUTION
q3_choice = "B"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q3_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 3, autograded part: q3_choice is one capital letter A-D (hidden: the right letter)."""
check_choice(q3_choice, "q3_choice")
### BEGIN HIDDEN TESTS
assert q3_choice == "B", (mistake("wrong-letter", "q3_choice is not the right letter: where does apply_rope act "
                          "(embeddings, scores, or queries and keys), and what does it do there?"))
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
# * A configuration alone fixes the parameter count and the cache: the library builds the real
#   architecture on the meta device and counts it. Mixtral's active parameters are a little over
#   a quarter of its total, not the reading's 39B.
# * The KV cache holds only the $H_{kv}$ key/value heads; GQA divides it by $H/H_{kv}$, the
#   difference between tens and hundreds of gigabytes at 128K tokens.
# * Llama 3's tokenizer is not Llama 2's: 128,256 tokens against 32,000.

# %%
# Parity record (scripts/parity.py compares a CPU run with a CUDA run): under
# `python -m autograder execute` these numbers are written beside the executed notebook; otherwise nothing is.
from archlab.parity import save_record

save_record(globals(), device, exact=["table", "q_small_tied", "q_small_untied"], close=["yl"])
