# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Jamba: a hybrid of attention and Mamba, with a mixture of experts
#
# **Mirrors:** §4 of the reading, *Jamba Architecture – MoE-based Transformer+Mamba Hybrid*.
# **Estimated time:** 2 hours.
#
# **How to start.** Run the cells from the top (*Run → Run All Cells* works once you have filled
# in the exercises). Every exercise is a cell that says `YOUR CODE HERE`: replace
# `raise NotImplementedError()` with your code, then run the test cell under it.
#
# **How to check your work.** The test cell under each exercise runs *visible* tests: shapes
# and a small worked example. Passing them silently means those checks passed. When you submit,
# the grader also runs *hidden* tests (random sizes, the Hugging Face implementation with the
# same weights, models built on the meta device) that count towards your grade, so a passing
# visible test is necessary, not sufficient. Free-text answers are graded by your instructor.
#
# By the end you will be able to
# 1. write down Jamba's layer schedule (which layers use attention, which Mamba, which an MoE)
#    from its four period/offset numbers, exactly as the Hugging Face config does;
# 2. route tokens to their top-$k$ experts and build a sparse mixture-of-experts MLP that
#    equals Mixtral's, and the auxiliary loss that keeps experts evenly used;
# 3. count total and *active* parameters of Jamba-v0.1 and Mixtral-8x7B from their configs
#    (and find the reading's "39B active" for Mixtral to be wrong);
# 4. compute the KV cache at 256K tokens of Jamba, Mixtral and Llama-2-7B and measure it on a
#    tiny model.
#
# **Notation.** `B` batch, `L` sequence length, `T = B·L` tokens, `D` model width, `F` MLP
# width (per expert), `E` experts per MoE layer, `k` experts per token, `H` query heads, `H_kv`
# key/value heads, `d` head width, `N` Mamba state size. Shapes are in the comment of every line
# that changes one.

# %% tags=["parameters"]
DEVICE = "auto"   # "auto" picks CUDA when present, else CPU; or "cpu" / "cuda"
QUICK = True      # small sizes (CI and grading); False for longer runs and lengths
SEED = 0

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math
import os
import random
import tempfile

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from archlab import measure, models, widgets
from archlab import moe as moelib
from archlab.checks import assert_close, assert_shape, check_shape
from archlab.device import pick_device

if os.environ.get("NBGRADER_EXECUTION"):
    QUICK = True  # the grader always runs the small version
device = pick_device(DEVICE)
from archlab import fastpaths  # noqa: E402
fastpaths.show(device)  # which implementation each fast path uses here, kept in the output
torch.manual_seed(SEED);

# %% [markdown]
# ## 1. The reading's model, and its block
#
# Jamba (Lieber et al. 2024, arXiv:2403.19887) stacks 32 layers. Each layer is a *mixer*
# (attention or Mamba) followed by an MLP, both with a pre-norm residual connection. One layer
# in eight mixes with attention; the other seven use Mamba. Every second layer's MLP is a
# mixture of 16 experts of which each token uses 2. The figure is drawn by
# `figs/src/jamba_layers.py` from the Hugging Face config of Jamba-v0.1:
#
# ![The 32 layers of Jamba-v0.1: one attention layer in eight, an MoE MLP in every second layer](../../figs/jamba_layers.png)
#
# The reading loads the real model with
# `AutoModelForCausalLM.from_pretrained("ai21labs/Jamba-v0.1", trust_remote_code=True)`. Its
# weights are about 100 GB in 16-bit and this course runs offline, so we run the same call on a
# local folder holding a tiny Jamba with random weights (transformers 5 ships Jamba itself, so
# `trust_remote_code` is no longer needed). The text it generates is noise; the point is that
# the code path is the real one.

# %%
from transformers import AutoModelForCausalLM

with tempfile.TemporaryDirectory() as folder:
    models.save(models.build_model("jamba", "tiny", seed=SEED), folder)
    model = AutoModelForCausalLM.from_pretrained(folder)          # the reading's call, local folder
    prompt = torch.tensor([[1, 17, 42, 99]])                      # (B=1, L=4) token ids
    with torch.no_grad():
        generated = model.generate(prompt, max_new_tokens=8, do_sample=False)
print("generated ids:", generated[0].tolist())
print("max_position_embeddings (tiny):", model.config.max_position_embeddings,
      "| Jamba-v0.1:", moelib.jamba_v01_config().max_position_embeddings)

# %% [markdown]
# ## 2. Exercise: the layer schedule
#
# Four numbers place every layer type. Counting layers from 0, layer $i$
#
# * mixes with **attention** when `i % attn_period == attn_offset`, and with **Mamba** otherwise;
# * has an **MoE** MLP when `i % expert_period == expert_offset`, and a plain (dense) **MLP**
#   otherwise.
#
# Jamba-v0.1 uses `attn_period=8, attn_offset=4, expert_period=2, expert_offset=1`: layers 4,
# 12, 20 and 28 are attention layers, the odd layers carry the experts. Write
# `jamba_layer_schedule(n_layers=32, attn_period=8, attn_offset=4, expert_period=2,
# expert_offset=1)` returning a list of `n_layers` pairs `(mixer, ffn)`, `mixer` one of
# `"attention"`, `"mamba"` and `ffn` one of `"moe"`, `"mlp"`. The given first lines reject an
# offset that is not smaller than its period (such a layer type would never occur).

# %% nbgrader={"grade": false, "grade_id": "jamba_layer_schedule", "locked": false, "schema_version": 3, "solution": true, "task": false}
def jamba_layer_schedule(n_layers=32, attn_period=8, attn_offset=4, expert_period=2, expert_offset=1):
    """[(mixer, ffn)] for layers 0..n_layers-1: attention when i % attn_period == attn_offset, MoE
    when i % expert_period == expert_offset (Lieber et al. 2024, §2; the HF JambaConfig rules)."""
    for name, offset, period in (("attn", attn_offset, attn_period), ("expert", expert_offset, expert_period)):
        if not 0 <= offset < period:
            raise ValueError(f"{name}_offset must satisfy 0 <= {name}_offset < {name}_period; "
                             f"got offset {offset}, period {period}")
    ### BEGIN SOLUTION
    schedule = []
    for i in range(n_layers):
        mixer = "attention" if i % attn_period == attn_offset else "mamba"
        ffn = "moe" if i % expert_period == expert_offset else "mlp"
        schedule.append((mixer, ffn))
    return schedule
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_jamba_layer_schedule", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""jamba_layer_schedule: Jamba-v0.1's 32 layers (4 attention, 16 MoE); hidden: equals the Hugging Face JambaConfig's layers_block_type and expert layers for random periods and offsets."""
s = jamba_layer_schedule()
assert isinstance(s, list) and len(s) == 32, f"expected a list of 32 pairs, got {type(s).__name__} of length {len(s)}"
assert all(isinstance(p, tuple) and len(p) == 2 for p in s), "every entry must be a (mixer, ffn) tuple"
attn_layers = [i for i, (mixer, _) in enumerate(s) if mixer == "attention"]
moe_layers = [i for i, (_, ffn) in enumerate(s) if ffn == "moe"]
assert attn_layers == [4, 12, 20, 28], f"Jamba-v0.1's attention layers are 4, 12, 20, 28; you have {attn_layers}"
assert moe_layers == list(range(1, 32, 2)), f"Jamba-v0.1's MoE layers are the odd ones; you have {moe_layers}"
assert {m for m, _ in s} == {"attention", "mamba"} and {f for _, f in s} == {"moe", "mlp"}
### BEGIN HIDDEN TESTS
from transformers import JambaConfig


def hf_schedule(n, ap, ao, ep, eo):
    cfg = JambaConfig(num_hidden_layers=n, attn_layer_period=ap, attn_layer_offset=ao,
                      expert_layer_period=ep, expert_layer_offset=eo, num_experts=4)
    return [(mixer, "moe" if n_exp > 1 else "mlp")
            for mixer, n_exp in zip(cfg.layers_block_type, cfg.layers_num_experts)]


assert jamba_layer_schedule() == hf_schedule(32, 8, 4, 2, 1), "differs from JambaConfig for Jamba-v0.1"
rng = random.Random(4)
for trial in range(60):
    n = rng.randint(1, 40)
    ap, ep = rng.randint(1, 10), rng.randint(1, 6)
    ao, eo = rng.randrange(ap), rng.randrange(ep)
    mine = jamba_layer_schedule(n, ap, ao, ep, eo)
    ref = hf_schedule(n, ap, ao, ep, eo)
    assert mine == ref, (f"n_layers={n}, attn period/offset {ap}/{ao}, expert period/offset {ep}/{eo}:\n"
                         f"  yours {mine}\n  HF    {ref}")
for bad in [dict(attn_period=4, attn_offset=4), dict(expert_period=2, expert_offset=2)]:
    try:
        jamba_layer_schedule(8, **bad)
    except ValueError:
        pass
    else:
        raise AssertionError(f"an offset >= its period must raise ValueError: {bad}")
### END HIDDEN TESTS

# %% [markdown]
# **Explore.** Move the sliders: the diagram is drawn from *your* `jamba_layer_schedule`, and
# the text under it gives the KV cache of one sequence at the chosen context, with Jamba-v0.1's
# attention widths (8 KV heads of width 128, 16-bit), against the same stack with attention in
# every layer. Only attention layers keep keys and values; a Mamba layer's state does not grow
# with the context.

# %%
explorer = widgets.jamba_explorer(jamba_layer_schedule)
explorer

# %% [markdown]
# ## 3. Exercise: top-$k$ routing
#
# An MoE layer has $E$ experts and a *router*, a linear map $W_r$ $(E, D)$ that gives each token
# a row of $E$ logits $s = x W_r^\top$. Mixtral (Jiang et al. 2024, eq. 1–2) and Jamba turn them
# into routing weights in three steps:
#
# 1. softmax over the $E$ experts (each token's row sums to 1);
# 2. keep the $k$ largest probabilities and their expert indices, largest first;
# 3. Mixtral renormalises the kept $k$ to sum to 1; Jamba keeps them as they are.
#
# Write `top_k_routing(router_logits, k, normalize=True)`: `router_logits` is `(T, E)`; return
# `(weights (T, k), experts (T, k) long)`, step 3 applied only when `normalize` is True. (With
# `normalize=True` this equals a softmax over the $k$ largest logits only; that is how the
# Mixtral paper writes it.)

# %% nbgrader={"grade": false, "grade_id": "top_k_routing", "locked": false, "schema_version": 3, "solution": true, "task": false}
def top_k_routing(router_logits, k, normalize=True):
    """(T, E) logits -> (weights (T, k), experts (T, k) long): softmax over experts, top k, renormalise."""
    check_shape(router_logits, ("T", "E"), "router_logits")
    if not 1 <= k <= router_logits.shape[-1]:
        raise ValueError(f"k must be between 1 and E = {router_logits.shape[-1]}; got {k}")
    ### BEGIN SOLUTION
    probs = torch.softmax(router_logits.float(), dim=-1)             # (T, E), rows sum to 1
    weights, experts = torch.topk(probs, k, dim=-1)                  # (T, k), (T, k), largest first
    if normalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)        # (T, k), rows sum to 1
    return weights, experts
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_top_k_routing", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""top_k_routing: shapes and dtypes, a worked example with and without renormalising; hidden: equals the Mixtral (normalised) and Jamba (not normalised) routers of transformers with the same weights."""
logits1 = torch.tensor([[math.log(1.0), math.log(2.0), math.log(5.0), math.log(2.0)]])  # probs 0.1 0.2 0.5 0.2
w1, e1 = top_k_routing(logits1, 2, normalize=False)
assert_shape(w1, (1, 2), "weights")
assert_shape(e1, (1, 2), "experts")
assert e1.dtype == torch.long, f"experts must be a long tensor, got {e1.dtype}"
assert e1[0, 0].item() == 2 and e1[0, 1].item() in (1, 3), f"expert 2 first, then 1 or 3 (a tie); got {e1.tolist()}"
assert_close(w1, torch.tensor([[0.5, 0.2]]), name="weights without renormalising (softmax probabilities)")
w1n, _ = top_k_routing(logits1, 2)
assert_close(w1n, torch.tensor([[0.5 / 0.7, 0.2 / 0.7]]), name="weights renormalised over the kept k")
wv, ev = top_k_routing(torch.randn(6, 5), 3)
assert_shape(wv, (6, 3), "weights")
assert_shape(ev, (6, 3), "experts")
assert_close(wv.sum(-1), torch.ones(6), name="row sums of renormalised weights")
### BEGIN HIDDEN TESTS
from transformers import JambaConfig, MixtralConfig
from transformers.models.jamba.modeling_jamba import JambaTopKRouter
from transformers.models.mixtral.modeling_mixtral import MixtralTopKRouter

TOL = dict(rtol=1e-5, atol=1e-6)  # float32, same operations as the reference
g = torch.Generator().manual_seed(7)
for trial in range(12):
    T_, E_, D_ = [(1, 2, 4), (9, 4, 8), (33, 8, 16), (20, 16, 8)][trial % 4]
    k_ = [1, 2, E_][trial % 3] if E_ > 2 else 1 + trial % 2
    x = torch.randn(T_, D_, generator=g)
    Wr = torch.randn(E_, D_, generator=g)
    mix = MixtralTopKRouter(MixtralConfig(hidden_size=D_, num_local_experts=E_, num_experts_per_tok=k_))
    jam = JambaTopKRouter(JambaConfig(hidden_size=D_, num_experts=E_, num_experts_per_tok=k_))
    with torch.no_grad():
        mix.weight.copy_(Wr)
        jam.weight.copy_(Wr)
        logits_ref, w_mix, e_mix = mix(x)
        _, w_jam, e_jam = jam(x)
    w, e = top_k_routing(logits_ref, k_)
    assert_shape(w, (T_, k_), "weights")
    assert torch.equal(e, e_mix), f"experts differ from Mixtral's router (T={T_}, E={E_}, k={k_})"
    assert_close(w, w_mix, name=f"weights vs Mixtral's router (T={T_}, E={E_}, k={k_})", **TOL)
    w, e = top_k_routing(logits_ref, k_, normalize=False)
    assert torch.equal(e, e_jam), f"experts differ from Jamba's router (T={T_}, E={E_}, k={k_})"
    assert_close(w, w_jam, name=f"weights vs Jamba's router, not renormalised (T={T_}, E={E_}, k={k_})", **TOL)
# a token's weights must not depend on the other tokens in the batch
xl = torch.randn(5, 6, generator=g)
assert_close(top_k_routing(xl[:1], 2)[0], top_k_routing(xl, 2)[0][:1], name="weights of token 0 alone vs in a batch")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Exercise: a sparse mixture-of-experts MLP
#
# Each expert is the SwiGLU MLP of Llama and Mixtral, given below:
# $\text{expert}(x) = W_\text{down}\,(\mathrm{silu}(W_\text{gate} x) \odot W_\text{up} x)$. An MoE
# layer sends each token only to its $k$ routed experts and adds their outputs, weighted:
#
# $$y_t = \sum_{j=1}^{k} w_{t,j}\; \text{expert}_{e_{t,j}}(x_t).$$
#
# Write `MoE(d_model, d_ff, n_experts, k)` with these attributes, exactly (the tests copy
# weights in and out through them with `archlab.moe.copy_moe_to_hf` / `copy_hf_to_moe`):
#
# * `self.router = nn.Linear(d_model, n_experts, bias=False)`;
# * `self.experts = nn.ModuleList` of `n_experts` `SwiGLU(d_model, d_ff)`.
#
# `forward(x)` takes `x (B, L, D)` and returns `(y (B, L, D), router_logits (B·L, E))`, the
# logits *before* the softmax (the balancing loss needs them). Route with your
# `top_k_routing(..., normalize=True)` (Mixtral's choice). Compute each expert **only on the
# tokens routed to it**: for expert $e$ find the (token, slot) pairs that chose it
# (`torch.where(experts == e)`), run the expert on those tokens, scale by their weights and
# add the result into the output rows (`index_add_`). This is what makes the layer sparse: the
# work per token is that of $k$ experts, not $E$.
#
# The Hugging Face `MixtralSparseMoeBlock` stores the same weights differently: all experts'
# gate and up projections fused into one `(E, 2F, D)` tensor `gate_up_proj`, the down
# projections into `down_proj` `(E, D, F)`. `archlab.moe` converts between the two layouts.

# %% nbgrader={"grade": false, "grade_id": "given_swiglu", "locked": true, "schema_version": 3, "solution": false, "task": false}
class SwiGLU(nn.Module):
    """One expert (and the dense MLP): down(silu(gate(x)) * up(x)), no biases, as in Llama/Mixtral."""

    def __init__(self, d_model, d_ff):
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):                                               # (..., D)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))  # (..., D)


# %% nbgrader={"grade": false, "grade_id": "MoE", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MoE(nn.Module):
    """Sparse mixture of SwiGLU experts with top-k routing (Jiang et al. 2024, §2.1)."""

    def __init__(self, d_model, d_ff, n_experts, k):
        super().__init__()
        if not 1 <= k <= n_experts:
            raise ValueError(f"k must be between 1 and n_experts = {n_experts}; got {k}")
        self.d_model, self.d_ff, self.n_experts, self.k = d_model, d_ff, n_experts, k
        ### BEGIN SOLUTION
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(d_model, d_ff) for _ in range(n_experts))
        ### END SOLUTION

    def forward(self, x):
        check_shape(x, ("B", "L", self.d_model), "x")
        ### BEGIN SOLUTION
        B, L, D = x.shape
        tokens = x.reshape(B * L, D)                                    # (T, D)
        router_logits = self.router(tokens)                             # (T, E)
        weights, experts = top_k_routing(router_logits, self.k)         # (T, k), (T, k)
        y = torch.zeros_like(tokens)                                    # (T, D)
        for e, expert in enumerate(self.experts):
            token_idx, slot = torch.where(experts == e)                 # (n_e,), (n_e,)
            if token_idx.numel() == 0:
                continue                                                # nobody chose expert e
            out = expert(tokens[token_idx])                             # (n_e, D)
            out = out * weights[token_idx, slot, None].to(out.dtype)    # (n_e, D)
            y.index_add_(0, token_idx, out)                             # (T, D)
        return y.reshape(B, L, D), router_logits                        # (B, L, D), (T, E)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_MoE", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""MoE: attribute names and shapes, router_logits are the router's raw output, one expert when k=1 and a sure router; hidden: equals transformers' MixtralSparseMoeBlock given the same weights (both copy directions), a per-token loop, gradients."""
torch.manual_seed(0)
moe_v = MoE(8, 16, 4, 2)
assert isinstance(moe_v.router, nn.Linear) and tuple(moe_v.router.weight.shape) == (4, 8) and moe_v.router.bias is None, \
    "self.router must be nn.Linear(d_model, n_experts, bias=False)"
assert isinstance(moe_v.experts, nn.ModuleList) and len(moe_v.experts) == 4, "self.experts must be an nn.ModuleList of n_experts SwiGLU"
assert all(isinstance(ex, SwiGLU) for ex in moe_v.experts), "each expert must be a SwiGLU(d_model, d_ff)"
xv = torch.randn(2, 5, 8)
yv, lv = moe_v(xv)
assert_shape(yv, (2, 5, 8), "y")
assert_shape(lv, (10, 4), "router_logits")
assert_close(lv, xv.reshape(10, 8) @ moe_v.router.weight.T, name="router_logits (raw logits x W_r^T, before the softmax)")
# k = 1 with a router that is sure of expert 3 for every token: the output is expert 3's output
moe1 = MoE(8, 16, 4, 1)
with torch.no_grad():
    moe1.router.weight.zero_()
    moe1.router.weight[3] = 100.0
xp = torch.rand(1, 4, 8) + 0.1                                       # positive inputs: logits 100*sum(x) for expert 3
assert_close(moe1(xp)[0], moe1.experts[3](xp), name="output when every token goes to expert 3 with weight 1")
### BEGIN HIDDEN TESTS
TOL = dict(rtol=1e-4, atol=1e-5)  # float32; experts summed in a different order than the reference
for D_, F_, E_, k_, B_, L_ in [(8, 16, 4, 2, 2, 5), (16, 8, 8, 2, 3, 7), (8, 12, 6, 3, 1, 9), (4, 8, 3, 1, 2, 4), (8, 8, 5, 5, 1, 6)]:
    torch.manual_seed(D_ * 100 + E_)
    mine = MoE(D_, F_, E_, k_)
    with torch.no_grad():
        for p in mine.parameters():
            p.mul_(3.0)                                              # larger weights: routing differences show
    ref = moelib.copy_moe_to_hf(mine, moelib.mixtral_moe_block(D_, F_, E_, k_, seed=1))
    x = torch.randn(B_, L_, D_)
    with torch.no_grad():
        y, logits = mine(x)
        y_ref = ref(x)
        logits_ref = ref.gate(x.reshape(-1, D_))[0]
    assert_shape(y, (B_, L_, D_), "y")
    assert_close(logits, logits_ref, name=f"router_logits vs Mixtral (D={D_}, E={E_}, k={k_})", **TOL)
    assert_close(y, y_ref, name=f"y vs MixtralSparseMoeBlock with the same weights (D={D_}, E={E_}, k={k_})", **TOL)
    # the other direction: weights from a Mixtral block into yours
    block = moelib.mixtral_moe_block(D_, F_, E_, k_, seed=2, std=2.0)
    other = moelib.copy_hf_to_moe(block, MoE(D_, F_, E_, k_))
    with torch.no_grad():
        assert_close(other(x)[0], block(x), name=f"y vs MixtralSparseMoeBlock, weights copied from it (E={E_}, k={k_})", **TOL)
    # an independent per-token loop
    flat = x.reshape(-1, D_)
    with torch.no_grad():
        loop = []
        for t in range(flat.shape[0]):
            p = torch.softmax(flat[t] @ mine.router.weight.T, -1)
            top = torch.topk(p, k_)
            ws = top.values / top.values.sum()
            loop.append(sum(w * mine.experts[int(e)](flat[t]) for w, e in zip(ws, top.indices)))
    assert_close(y.reshape(-1, D_), torch.stack(loop), name=f"y vs a per-token loop (E={E_}, k={k_})", **TOL)
# gradients reach the router through the weights, and the experts
mine = MoE(8, 8, 4, 2)
y, _ = mine(torch.randn(2, 3, 8))
y.square().sum().backward()
assert mine.router.weight.grad is not None and mine.router.weight.grad.abs().sum() > 0, "no gradient reaches the router"
### END HIDDEN TESTS

# %% [markdown]
# **The naive twin.** The same layer written as the formula reads, one token at a time, pins
# your dispatch down; counting expert evaluations shows what sparsity buys: $T k$ instead of
# the $T E$ of running every expert on every token.

# %%
def moe_naive(layer, x):
    """y_t = sum_j w_tj expert_{e_tj}(x_t), token by token (the specification of MoE.forward)."""
    tokens = x.reshape(-1, x.shape[-1])                                  # (T, D)
    weights, experts = top_k_routing(layer.router(tokens), layer.k)      # (T, k), (T, k)
    rows = [sum(w * layer.experts[int(e)](tokens[t]) for w, e in zip(weights[t], experts[t]))
            for t in range(tokens.shape[0])]                             # T rows of (D,)
    return torch.stack(rows).reshape(x.shape)                            # (B, L, D)


torch.manual_seed(SEED)
layer = MoE(16, 32, 8, 2)
x_demo = torch.randn(2, 6, 16)                                           # (B, L, D)
with torch.no_grad():
    assert_close(layer(x_demo)[0], moe_naive(layer, x_demo), rtol=1e-4, atol=1e-5, name="MoE vs its naive twin")
T_demo = x_demo.shape[0] * x_demo.shape[1]
print(f"{T_demo} tokens, E={layer.n_experts}, k={layer.k}: {T_demo * layer.k} expert evaluations "
      f"(sparse) instead of {T_demo * layer.n_experts} (every expert on every token)")


# %% [markdown]
# ## 5. Exercise: the load-balancing loss
#
# Trained on the task loss alone, a router tends to send most tokens to a few experts: they
# get the gradient, improve, and are chosen even more. The Switch Transformer (Fedus et al.
# 2022, eq. 4–6) adds an auxiliary loss, which Mixtral and Jamba use with top-$k$:
#
# $$\mathcal{L}_\text{aux} = E \sum_{e=1}^{E} f_e\, P_e,\qquad
#   f_e = \frac{\#\{(t, j): e_{t,j} = e\}}{T},\qquad P_e = \frac{1}{T}\sum_t \mathrm{softmax}(s_t)_e,$$
#
# $f_e$ the share of tokens routed to expert $e$ (counting every one of the $k$ slots, so the
# $f_e$ sum to $k$), $P_e$ the mean router probability of $e$. Only $P$ carries a gradient
# (the counts come from a top-$k$). With perfectly even routing $\mathcal{L}_\text{aux} = k$.
#
# Write `load_balancing_loss(router_logits, k, n_experts)`: `router_logits` is one `(T, E)`
# tensor or a tuple/list of them (one per MoE layer: then $f$ and $P$ are taken over all their
# rows together, as transformers does). Return a 0-dimensional tensor equal to
# `transformers.models.mixtral.modeling_mixtral.load_balancing_loss_func` (without an
# attention mask).

# %% nbgrader={"grade": false, "grade_id": "load_balancing_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_balancing_loss(router_logits, k, n_experts):
    """E * sum_e f_e * P_e over all rows of router_logits ((T, E) or a tuple of them)."""
    if isinstance(router_logits, (tuple, list)):
        router_logits = torch.cat(list(router_logits), dim=0)       # (sum of T, E)
    check_shape(router_logits, ("T", n_experts), "router_logits")
    ### BEGIN SOLUTION
    T = router_logits.shape[0]
    probs = torch.softmax(router_logits.float(), dim=-1)             # (T, E)
    experts = torch.topk(probs, k, dim=-1).indices                   # (T, k)
    counts = torch.bincount(experts.reshape(-1), minlength=n_experts)  # (E,), sums to T*k
    f = counts.float() / T                                           # (E,), sums to k
    P = probs.mean(dim=0)                                            # (E,), sums to 1
    return n_experts * (f * P).sum()                                 # ()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_load_balancing_loss", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""load_balancing_loss: a 0-d tensor, = k for a uniform router, about E when every token goes to the same k experts; hidden: equals transformers' load_balancing_loss_func for random logits, several layers, its gradient."""
lb0 = load_balancing_loss(torch.zeros(10, 4), 2, 4)
assert isinstance(lb0, torch.Tensor) and lb0.dim() == 0, f"return a 0-d tensor, got {type(lb0).__name__} {getattr(lb0, 'shape', '')}"
assert_close(lb0, torch.tensor(2.0), name="loss of a uniform router (every P_e = 1/E): must be k")
skew = torch.tensor([[20.0, 20.0, 0.0, 0.0]]).repeat(6, 1)            # all tokens to experts 0 and 1
assert_close(load_balancing_loss(skew, 2, 4), torch.tensor(4.0), rtol=1e-4, name="all tokens to the same 2 of 4 experts: about E")
### BEGIN HIDDEN TESTS
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

TOL = dict(rtol=1e-5, atol=1e-6)  # float32
g = torch.Generator().manual_seed(11)
for trial in range(10):
    E_ = [4, 8, 16, 3, 6][trial % 5]
    k_ = [1, 2, 3][trial % 3] if E_ >= 3 else 1
    n_layers = 1 + trial % 3
    layers = tuple(torch.randn(int(torch.randint(1, 40, (1,), generator=g)), E_, generator=g) * (1 + trial)
                   for _ in range(n_layers))
    ref = load_balancing_loss_func(layers, E_, k_)
    got = load_balancing_loss(layers, k_, E_)
    assert isinstance(got, torch.Tensor) and got.dim() == 0
    assert_close(got, ref, name=f"loss vs transformers (E={E_}, k={k_}, {n_layers} layers)", **TOL)
    got_list = load_balancing_loss(list(layers), k_, E_)
    assert_close(got_list, ref, name="loss for a list of layers", **TOL)
    if n_layers == 1:
        assert_close(load_balancing_loss(layers[0], k_, E_), ref, name="loss for a single (T, E) tensor", **TOL)
# the gradient flows through the mean probabilities, as in transformers
logits_a = torch.randn(12, 8, generator=g, requires_grad=True)
logits_b = logits_a.detach().clone().requires_grad_(True)
load_balancing_loss(logits_a, 2, 8).backward()
load_balancing_loss_func((logits_b,), 8, 2).backward()
assert logits_a.grad is not None, "the loss must be differentiable with respect to the logits"
assert_close(logits_a.grad, logits_b.grad, name="gradient of the loss w.r.t. the logits", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Exercise: total and active parameters
#
# A token passing through an MoE layer uses the router and $k$ of the $E$ experts. The
# **total** parameter count is what must be stored; the **active** count is what one token
# computes with. Convention here (it is the one behind the published figures: Mixtral's 12.9B
# and Jamba's 12B both include them): the embedding matrix and the output layer count as active,
# every parameter outside the experts counts as active, and of each MoE layer's experts only
# $k$ of $E$ do.
#
# Write `count_params(config)` returning `(total, active)` as ints for a transformers config of
# a dense decoder (`LlamaConfig`, `MistralConfig`), a `MixtralConfig` or a `JambaConfig`. Count
# from the config's numbers, piece by piece (no model building):
#
# | piece | parameters |
# | --- | --- |
# | embedding; output layer (`lm_head`) | $VD$ each; the output layer is free when `tie_word_embeddings` |
# | attention | $D\cdot Hd$ (q) $+\ 2\,D\cdot H_\text{kv}d$ (k, v) $+\ Hd\cdot D$ (o); $d$ = `head_dim` if the config has one, else $D/H$; biases only if `attention_bias` |
# | SwiGLU MLP / one expert | $3DF$ (gate, up, down; biases only if `mlp_bias`) |
# | MoE router | $ED$ |
# | Mamba mixer (Jamba) | `mamba_mixer_params(config)`, given below (you counted these in notebook 02) |
# | RMSNorm | $D$; two per layer and one final |
#
# Which layers are attention or Mamba and which carry experts: your `jamba_layer_schedule`
# for Jamba; every layer has attention and an MoE in Mixtral (`num_local_experts`,
# `num_experts_per_tok`). Jamba names them `num_experts` and `num_experts_per_tok`.

# %% nbgrader={"grade": false, "grade_id": "given_mamba_params", "locked": true, "schema_version": 3, "solution": false, "task": false}
def mamba_mixer_params(config):
    """Parameters of one Jamba Mamba mixer (JambaMambaMixer), from the config's numbers."""
    D, N, K = config.hidden_size, config.mamba_d_state, config.mamba_d_conv
    d_in, R = config.mamba_expand * config.hidden_size, config.mamba_dt_rank
    proj_bias, conv_bias = int(config.mamba_proj_bias), int(config.mamba_conv_bias)
    return (D * 2 * d_in + proj_bias * 2 * d_in      # in_proj: x and the gate z
            + d_in * K + conv_bias * d_in            # depthwise causal conv1d
            + d_in * (R + 2 * N)                     # x_proj -> (dt, B, C)
            + R * d_in + d_in                        # dt_proj (with bias)
            + d_in * N + d_in                        # A_log, D
            + d_in * D + proj_bias * D               # out_proj
            + R + 2 * N)                             # Jamba's RMSNorms of dt, B and C


# %% nbgrader={"grade": false, "grade_id": "count_params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_params(config):
    """(total, active) parameters of a dense, Mixtral or Jamba decoder config; active = per token."""
    ### BEGIN SOLUTION
    D, V = config.hidden_size, config.vocab_size
    H = config.num_attention_heads
    H_kv = getattr(config, "num_key_value_heads", None) or H
    d = getattr(config, "head_dim", None) or D // H
    attn = D * H * d + 2 * D * H_kv * d + H * d * D                         # q, k, v, o
    if getattr(config, "attention_bias", False):
        attn += H * d + 2 * H_kv * d + D
    mlp = 3 * D * config.intermediate_size                                   # gate, up, down
    if getattr(config, "mlp_bias", False):
        mlp += 2 * config.intermediate_size + D
    norms = 2 * D                                                            # two RMSNorms a layer

    if config.model_type == "jamba":
        E, k = config.num_experts, config.num_experts_per_tok
        schedule = jamba_layer_schedule(config.num_hidden_layers, config.attn_layer_period,
                                        config.attn_layer_offset, config.expert_layer_period,
                                        config.expert_layer_offset)
    elif config.model_type == "mixtral":
        E, k = config.num_local_experts, config.num_experts_per_tok
        schedule = [("attention", "moe")] * config.num_hidden_layers
    else:
        E, k = 1, 1
        schedule = [("attention", "mlp")] * config.num_hidden_layers

    total = active = 0
    for mixer, ffn in schedule:
        layer = norms + (attn if mixer == "attention" else mamba_mixer_params(config))
        total, active = total + layer, active + layer
        if ffn == "moe":
            total += E * D + E * mlp                                         # router + all experts
            active += E * D + k * mlp                                        # router + k experts
        else:
            total, active = total + mlp, active + mlp
    outside = V * D + D + (0 if config.tie_word_embeddings else V * D)       # embedding, final norm, head
    return int(total + outside), int(active + outside)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_count_params", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""count_params: ints; Llama-2-7B (dense: active = total) equals the model built on the meta device; hidden: Mixtral-8x7B, Jamba-v0.1 and random small Llama/Mistral/Mixtral/Jamba configs against meta-device models, active from their expert tensors."""
llama_cfg = moelib.llama2_7b_config()
tot, act = count_params(llama_cfg)
assert isinstance(tot, int) and isinstance(act, int), f"return two ints, got {type(tot).__name__}, {type(act).__name__}"
meta_total = models.count_params(models.meta_model(llama_cfg))
assert tot == meta_total, f"Llama-2-7B: you count {tot:,}, the model built on the meta device has {meta_total:,}"
assert act == tot, "a dense model uses every parameter for every token: active must equal total"
### BEGIN HIDDEN TESTS
from transformers import JambaConfig, LlamaConfig, MistralConfig, MixtralConfig


def meta_reference(cfg):
    """total from a meta-device model; active = total minus the unused (E - k)/E of every expert tensor."""
    net = models.meta_model(cfg)
    total = models.count_params(net)
    k_ = getattr(cfg, "num_experts_per_tok", 1)
    inactive = 0
    for mod in net.modules():
        if hasattr(mod, "gate_up_proj") and hasattr(mod, "down_proj"):
            E_ = mod.gate_up_proj.shape[0]
            inactive += (mod.gate_up_proj.numel() + mod.down_proj.numel()) * (E_ - k_) // E_
    return total, total - inactive


for cfg in [moelib.mixtral_8x7b_config(), moelib.jamba_v01_config()]:
    got, ref = count_params(cfg), meta_reference(cfg)
    assert got == ref, f"{cfg.model_type}: (total, active) yours {got}, reference {ref}"
rng = random.Random(3)
for trial in range(16):
    heads = rng.choice([2, 4])
    common = dict(vocab_size=rng.choice([50, 97]), hidden_size=heads * rng.choice([4, 8]),
                  intermediate_size=rng.choice([12, 24]), num_hidden_layers=rng.randint(1, 9),
                  num_attention_heads=heads, num_key_value_heads=rng.choice([1, heads]),
                  tie_word_embeddings=rng.random() < 0.5)
    kind = ["llama", "mistral", "mixtral", "jamba"][trial % 4]
    if kind == "llama":
        cfg = LlamaConfig(**common, attention_bias=rng.random() < 0.5, mlp_bias=rng.random() < 0.5,
                          head_dim=rng.choice([None, 6]))
    elif kind == "mistral":
        cfg = MistralConfig(**common)
    elif kind == "mixtral":
        E_ = rng.randint(2, 6)
        cfg = MixtralConfig(**common, num_local_experts=E_, num_experts_per_tok=rng.randint(1, E_))
    else:
        E_, ap, ep = rng.randint(2, 6), rng.randint(1, 5), rng.randint(1, 3)
        cfg = JambaConfig(**common, num_experts=E_, num_experts_per_tok=rng.randint(1, E_),
                          attn_layer_period=ap, attn_layer_offset=rng.randrange(ap),
                          expert_layer_period=ep, expert_layer_offset=rng.randrange(ep),
                          mamba_d_state=rng.choice([4, 8]), mamba_expand=rng.choice([1, 2]),
                          mamba_dt_rank=rng.choice([2, 3]), mamba_conv_bias=rng.random() < 0.5,
                          mamba_proj_bias=rng.random() < 0.5)
    got, ref = count_params(cfg), meta_reference(cfg)
    shown = {key: getattr(cfg, key) for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                                "num_key_value_heads", "tie_word_embeddings") if hasattr(cfg, key)}
    assert got == ref, f"{kind} config {shown} (and more):\n  (total, active) yours {got}, reference {ref}"
### END HIDDEN TESTS

# %% [markdown]
# ### The published figures, computed
#
# The same function on the published configurations (`archlab.moe` holds their numbers, from
# the models' config files):

# %%
published = {name: make() for name, make in moelib.PUBLISHED.items()}
for name, cfg in published.items():
    total, active = count_params(cfg)
    print(f"{name:13s} total {total / 1e9:6.2f}B   active per token {active / 1e9:6.2f}B")

mix = published["Mixtral-8x7B"]
D_, F_, H_kv_, d_ = mix.hidden_size, mix.intermediate_size, mix.num_key_value_heads, mix.hidden_size // mix.num_attention_heads
expert = 3 * D_ * F_
attn = 2 * D_ * D_ + 2 * D_ * H_kv_ * d_
print(f"\nMixtral, per layer: one expert {expert / 1e6:.1f}M, attention {attn / 1e6:.1f}M")
print(f"  8 experts x 32 layers = {8 * 32 * expert / 1e9:.2f}B of the total; 2 experts x 32 layers = "
      f"{2 * 32 * expert / 1e9:.2f}B of the active count")

# %% [markdown]
# Jamba-v0.1 comes out at about 52B in total and 12B active, as its paper says. Mixtral-8x7B
# has about 46.7B parameters, of which about **12.9B** are used for each token: the six experts a
# token does not use hold $32 \times 6 \times 176\text{M} \approx 33.8\text{B}$ parameters. The
# reading's "39B active" (in §4 and again in §6) is wrong; 12.9B is also the figure of the
# Mixtral paper (Jiang et al. 2024: "13B active parameters"). The name "8x7B" misleads too:
# only the MLPs are replicated, attention and embeddings are shared, so the total is well
# under $8 \times 7 = 56$B.
#
# ## 7. The KV cache at 256K tokens
#
# A decoder keeps, per sequence, the keys and values of every past token in every **attention**
# layer: $2 \cdot n_\text{attn} \cdot H_\text{kv} \cdot d \cdot L$ numbers (notebook 01). A
# Mamba layer keeps a state of fixed size instead. The given function below counts the
# attention layers of a config (with your schedule for Jamba) and applies the formula:

# %% nbgrader={"grade": false, "grade_id": "given_kv_cache", "locked": true, "schema_version": 3, "solution": false, "task": false}
def attention_layers(config):
    """Number of layers that keep a KV cache."""
    if config.model_type == "jamba":
        schedule = jamba_layer_schedule(config.num_hidden_layers, config.attn_layer_period,
                                        config.attn_layer_offset, config.expert_layer_period,
                                        config.expert_layer_offset)
        return sum(mixer == "attention" for mixer, _ in schedule)
    return config.num_hidden_layers


def kv_cache_bytes_from_config(config, seq_len, bytes_per_value=2, batch=1):
    """2 (K and V) * attention layers * H_kv * d * L * B * bytes per value."""
    d = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * attention_layers(config) * config.num_key_value_heads * d * seq_len * batch * bytes_per_value


# %%
context = 256 * 1024
kv_256k = {name: kv_cache_bytes_from_config(cfg, context) for name, cfg in published.items()}
for name, cfg in published.items():
    print(f"{name:13s} {attention_layers(cfg):2d} attention layers x {cfg.num_key_value_heads:2d} KV heads: "
          f"{kv_256k[name] / 2**30:5.0f} GiB at 256K tokens (16-bit)")
print("Jamba paper, Table 1 (Lieber et al. 2024): Llama-2 6.7B 128GB, Mixtral 32GB, Jamba 4GB")

# %% [markdown]
# ![KV cache against context for Llama-2-7B, Mixtral-8x7B and Jamba-v0.1, computed from their configs](../../figs/kv_cache_vs_context.png)
#
# *The same formula over every context length (made by `figs/src/kv_cache_vs_context.py`; the
# marks at 256K are the Jamba paper's Table 1). It stands in for the reading's context-size
# figure, which the reading references but does not include.*
#
# Two things make Jamba's cache 8 times smaller than Mixtral's: only 4 of its 32 layers are
# attention layers, both use 8 KV heads (grouped-query attention; Llama-2-7B keeps all 32,
# hence another factor 4). Now the check on a real cache: a tiny Hugging Face Jamba with the
# same 1-in-8 schedule, run on $L$ tokens. Its `past_key_values` holds keys and values for the
# attention layer only; the Mamba layers hold a convolution state $(B, \text{expand}\cdot D,
# d_\text{conv})$ and an SSM state $(B, \text{expand}\cdot D, N)$ whose size does not depend on
# $L$.

# %%
tiny_cfg = models.make_config("jamba", "tiny", num_hidden_layers=8, attn_layer_period=8, attn_layer_offset=4)
tiny_jamba = models.build_model(tiny_cfg, seed=SEED, device=device)


def split_cache_bytes(cache):
    """(bytes of keys/values of attention layers, bytes of Mamba states) in a transformers cache."""
    kv = sum(measure.tensor_bytes([layer.keys, layer.values]) for layer in cache.layers if hasattr(layer, "keys"))
    return kv, measure.tensor_bytes(cache) - kv


for L_ in [16, 64]:
    with torch.no_grad():
        out = tiny_jamba(torch.randint(0, tiny_cfg.vocab_size, (2, L_), device=device), use_cache=True)
    kv_measured, mamba_measured = split_cache_bytes(out.past_key_values)
    kv_formula = kv_cache_bytes_from_config(tiny_cfg, L_, bytes_per_value=4, batch=2)
    d_inner = tiny_cfg.mamba_expand * tiny_cfg.hidden_size
    mamba_formula = 7 * 2 * d_inner * (tiny_cfg.mamba_d_conv + tiny_cfg.mamba_d_state) * 4
    print(f"L={L_:3d}: KV measured {kv_measured:6d} B, formula {kv_formula:6d} B | "
          f"Mamba states measured {mamba_measured} B, formula {mamba_formula} B (7 layers, B=2, float32)")
    assert kv_measured == kv_formula and mamba_measured == mamba_formula

# %% [markdown]
# ## 8. Experiment: a tiny hybrid from the course's blocks
#
# We assemble a Jamba-shaped language model from our own parts: the attention of notebook 01
# (condensed below, calling torch's fused kernel which 01 checked yours against), a small Mamba
# mixer (the block of notebook 02, with the reference parameter names and a plain sequential
# scan; the cell checks it against transformers' `MambaMixer` with the same weights), your
# `MoE` and the `SwiGLU` MLP, placed by your `jamba_layer_schedule`. Each mixer returns what it
# must keep for decoding: attention its keys and values, Mamba its two states.

# %% nbgrader={"grade": false, "grade_id": "given_hybrid", "locked": true, "schema_version": 3, "solution": false, "task": false}
class CausalSelfAttention(nn.Module):
    """Notebook 01's multi-head attention, condensed: forward -> (y, (K, V)), the KV cache."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x):
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)  # each (B, H, L, d)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)                                # (B, H, L, d)
        # clone: k and v are views into the qkv output; the cache should own exactly its tensors
        return self.out(y.transpose(1, 2).reshape(B, L, D)), (k.clone(), v.clone())                # (B, L, D)


class MiniMamba(nn.Module):
    """The Mamba mixer (Gu & Dao 2023, Algorithm 2) with a sequential scan: forward -> (y, (conv_state, ssm_state))."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank=None):
        super().__init__()
        d_in, self.d_conv, self.d_state = expand * d_model, d_conv, d_state
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * d_in, bias=False)
        self.conv1d = nn.Conv1d(d_in, d_in, d_conv, groups=d_in, padding=d_conv - 1)
        self.x_proj = nn.Linear(d_in, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_in)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_in, 1))  # (d_in, N)
        self.D = nn.Parameter(torch.ones(d_in))
        self.out_proj = nn.Linear(d_in, d_model, bias=False)

    def forward(self, x):
        B, L, _ = x.shape
        u, z = self.in_proj(x).chunk(2, dim=-1)                            # each (B, L, d_in)
        u = u.transpose(1, 2)                                              # (B, d_in, L)
        conv_state = F.pad(u, (max(0, self.d_conv - L), 0))[..., -self.d_conv:].clone()  # (B, d_in, d_conv): last inputs
        u = F.silu(self.conv1d(u)[..., :L]).transpose(1, 2)                # (B, L, d_in), causal conv
        dt, Bm, Cm = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt))                                  # (B, L, d_in)
        A = -torch.exp(self.A_log)                                         # (d_in, N)
        h = x.new_zeros(B, u.shape[-1], self.d_state)                      # (B, d_in, N)
        ys = []
        for t in range(L):                                                 # h_t = exp(dt A) h + dt B u
            h = torch.exp(dt[:, t, :, None] * A) * h + dt[:, t, :, None] * Bm[:, t, None, :] * u[:, t, :, None]
            ys.append((h * Cm[:, t, None, :]).sum(-1))                     # (B, d_in)
        y = (torch.stack(ys, dim=1) + u * self.D) * F.silu(z)             # (B, L, d_in)
        return self.out_proj(y), (conv_state, h)                           # (B, L, D)


class TinyHybrid(nn.Module):
    """Embedding, then one pre-norm residual (mixer, MLP) pair per schedule entry, then a norm and the head."""

    def __init__(self, schedule, vocab=256, d_model=64, n_heads=4, d_ff=128, n_experts=4, k=2, d_state=16):
        super().__init__()
        self.schedule = list(schedule)
        self.embed = nn.Embedding(vocab, d_model)
        self.mixers = nn.ModuleList(CausalSelfAttention(d_model, n_heads) if mixer == "attention"
                                    else MiniMamba(d_model, d_state) for mixer, _ in self.schedule)
        self.ffns = nn.ModuleList(MoE(d_model, d_ff, n_experts, k) if ffn == "moe" else SwiGLU(d_model, d_ff)
                                  for _, ffn in self.schedule)
        self.norms = nn.ModuleList(nn.RMSNorm(d_model) for _ in range(2 * len(self.schedule)))
        self.final_norm = nn.RMSNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, ids):
        """ids (B, L) -> (logits (B, L, vocab), caches [one per layer], router_logits [one per MoE layer])."""
        h = self.embed(ids)                                                # (B, L, D)
        caches, router_logits = [], []
        for i, (mixer, ffn) in enumerate(zip(self.mixers, self.ffns)):
            y, cache = mixer(self.norms[2 * i](h))                         # (B, L, D)
            h, caches = h + y, caches + [cache]
            y = ffn(self.norms[2 * i + 1](h))
            if isinstance(ffn, MoE):
                y, logits = y                                              # (B, L, D), (B·L, E)
                router_logits.append(logits)
            h = h + y                                                      # (B, L, D)
        return self.head(self.final_norm(h)), caches, router_logits


# The Mamba mixer above against transformers' MambaMixer with the same weights (float32).
from transformers import MambaConfig
from transformers.models.mamba.modeling_mamba import MambaMixer

_mini = MiniMamba(16, d_state=8, dt_rank=4)
_hf = MambaMixer(MambaConfig(hidden_size=16, state_size=8, conv_kernel=4, expand=2, time_step_rank=4,
                             use_bias=False, use_conv_bias=True), layer_idx=0)
_hf.load_state_dict(_mini.state_dict())
_x = torch.randn(2, 9, 16)
with torch.no_grad():
    assert_close(_mini(_x)[0], _hf(_x), rtol=1e-4, atol=1e-5, name="MiniMamba vs transformers' MambaMixer")

# %% [markdown]
# The layout of our hybrid next to the Hugging Face Jamba with the same schedule (8 layers, 1
# attention : 7 Mamba, MoE in every second layer):

# %%
schedule = jamba_layer_schedule(8, attn_period=8, attn_offset=4, expert_period=2, expert_offset=1)
torch.manual_seed(SEED)
hybrid = TinyHybrid(schedule).to(device).eval()
hf_names = lambda layer: ("attention" if hasattr(layer, "self_attn") else "mamba",
                          "moe" if hasattr(layer.feed_forward, "experts") else "mlp")
print(f"{'layer':>5}  {'ours':28s}  Hugging Face Jamba")
for i, layer in enumerate(tiny_jamba.model.layers):
    ours = f"{type(hybrid.mixers[i]).__name__} + {type(hybrid.ffns[i]).__name__}"
    print(f"{i:>5}  {ours:28s}  {type(layer).__name__} + {type(layer.feed_forward).__name__}")
    assert hf_names(layer) == schedule[i]
print(f"parameters: ours {models.count_params(hybrid):,}, Hugging Face {models.count_params(tiny_jamba):,}")

# %% [markdown]
# **Cache memory as $L$ grows.** Each model reads $L$ tokens once (a prefill) and we add up
# the bytes it keeps for decoding the next token. The all-attention models have the same
# width and depth, with attention in every layer (`attn_period=1, attn_offset=0`).

# %%
lengths = [32, 64, 128, 256] if QUICK else [64, 128, 256, 512, 1024, 2048]
all_attention = jamba_layer_schedule(8, attn_period=1, attn_offset=0, expert_period=2, expert_offset=1)
torch.manual_seed(SEED)
ours_all_attention = TinyHybrid(all_attention).to(device).eval()
hf_all_attention = models.build_model(tiny_cfg, seed=SEED, device=device, attn_layer_period=1, attn_layer_offset=0)
cache_bytes = {"ours, 1:7 hybrid": [], "ours, all attention": [], "HF Jamba, 1:7 hybrid": [], "HF Jamba, all attention": []}
for L_ in lengths:
    ids = torch.randint(0, 256, (1, L_), device=device)
    with torch.no_grad():
        cache_bytes["ours, 1:7 hybrid"].append(measure.tensor_bytes(hybrid(ids)[1]))
        cache_bytes["ours, all attention"].append(measure.tensor_bytes(ours_all_attention(ids)[1]))
        cache_bytes["HF Jamba, 1:7 hybrid"].append(measure.tensor_bytes(tiny_jamba(ids, use_cache=True).past_key_values))
        cache_bytes["HF Jamba, all attention"].append(
            measure.tensor_bytes(hf_all_attention(ids, use_cache=True).past_key_values))
for label, values in cache_bytes.items():
    print(f"{label:24s}", values)

fig, ax = plt.subplots(figsize=(7, 4))
for label, values in cache_bytes.items():
    ax.plot(lengths, [v / 1024 for v in values], marker="o", linestyle="--" if "HF" in label else "-", label=label)
ax.set_xlabel("tokens read, L")
ax.set_ylabel("cache kept for decoding (KiB, float32)")
ax.set_title("Cache memory of 8-layer models, batch 1")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# **What to look for.** The all-attention lines grow linearly, by eight layers' worth of keys
# and values per token. The hybrids grow at one eighth of that slope (one
# attention layer) on top of a constant: the seven Mamba states. Our hybrid and the Hugging
# Face Jamba start from the same constant (their Mamba layers keep tensors of the same shapes);
# their slopes differ because our attention keeps keys and values for all 4 heads while the
# tiny HF Jamba shares 2 KV heads among its 4 query heads (grouped-query attention).
# For the first few dozen tokens the Mamba states outweigh the KV cache; beyond that
# the hybrid wins, and at Jamba's 256K the gap is the factor 8 computed above.
#
# Less cache to read per token also means faster decoding at long context. The course measured
# it on ~100M-parameter models on a 2-core CPU (`figs/data/decode_vs_context.json`, which names
# the machine; the 05 notebook and `make bench` repeat such measurements on yours):
#
# ![Decode time per token against context length, measured](../../figs/decode_vs_context.png)
#
# *This replaces the reading's throughput figure. On this hardware the gap is modest and
# noisy; the reading's "3x" is AI21's figure for 52B-parameter models at 128K tokens on GPUs.*
#
# ## 9. Experiment: who gets the tokens, with and without the balancing loss
#
# A router that starts out favouring two experts (we tilt it on purpose: both are aligned with
# the inputs' common direction) is trained with your `MoE` to imitate a fixed random
# teacher MoE, once with the task loss alone and once with your `load_balancing_loss` added
# (coefficient 0.1, large so that a short run shows the effect; transformers' Mixtral and Jamba
# configs default to 0.001, the Switch Transformer used 0.01, over far more steps). The
# bars count the tokens of a held-out batch that each expert receives.

# %%
def routed_load(layer, x):
    """Tokens (of all k slots) that each expert of an MoE layer receives for the input x (B, L, D)."""
    with torch.no_grad():
        _, logits = layer(x)                                               # (T, E)
    return moelib.expert_load(top_k_routing(logits, layer.k)[1], layer.n_experts)   # (E,)


D_toy, E_toy, k_toy = 16, 8, 2
steps = 60 if QUICK else 400
g = torch.Generator().manual_seed(SEED)
direction = torch.randn(D_toy, generator=g)
direction = direction / direction.norm()
make_batch = lambda n: torch.randn(n, 32, D_toy, generator=g) + 2.0 * direction   # (n, 32, D)
torch.manual_seed(SEED)
teacher = MoE(D_toy, 32, E_toy, k_toy)
with torch.no_grad():
    teacher.router.weight.mul_(4.0)                                        # a confident, varied teacher
torch.manual_seed(SEED + 1)
start = MoE(D_toy, 32, E_toy, k_toy)
with torch.no_grad():
    start.router.weight[:2] += 3.0 * direction                             # tilt: experts 0 and 1 win
x_eval = make_batch(8)
loads = {"at the start": routed_load(start, x_eval)}
losses = {}
for label, coef in [("task loss only", 0.0), ("task + 0.1 x balancing loss", 0.1)]:
    student = MoE(D_toy, 32, E_toy, k_toy)
    student.load_state_dict(start.state_dict())
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    for step in range(steps):
        x = make_batch(16)                                                 # (16, 32, D)
        with torch.no_grad():
            target = teacher(x)[0]                                         # (16, 32, D)
        y, logits = student(x)
        task = F.mse_loss(y, target)
        loss = task + coef * load_balancing_loss(logits, k_toy, E_toy)
        opt.zero_grad()
        loss.backward()
        opt.step()
    loads[label] = routed_load(student, x_eval)
    losses[label] = (task.item(), load_balancing_loss(student(x_eval)[1], k_toy, E_toy).item())
    print(f"{label:28s} task loss {losses[label][0]:.4f}, balancing loss {losses[label][1]:.2f} "
          f"(even routing gives {k_toy})")

fig, axes = plt.subplots(1, len(loads), figsize=(12, 3.2), sharey=True)
for ax, (label, counts) in zip(axes, loads.items()):
    ax.bar(range(E_toy), counts.tolist(), color="tab:purple")
    ax.axhline(counts.sum().item() / E_toy, color="gray", linestyle="--", label="even load")
    ax.set_title(label)
    ax.set_xlabel("expert")
axes[0].set_ylabel("tokens routed (all k slots)")
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.** At the start experts 0 and 1 receive nearly every token. With the
# task loss alone the other experts stay almost idle: a token's gradient only reaches the
# experts it was sent to, so an unused expert never becomes attractive. The balancing loss
# pushes the mean router probabilities, and with them the counts, towards an even spread;
# the experts it wakes up then learn from their share of the tokens.
#
# ## 10. Checkpoint questions
#
# Each question has an autograded part (a number or a letter in a code cell) and a written
# answer your instructor grades. Two or three sentences are enough.
#
# ### Question 1
# - What ratio are **Transformer layers and Mamba layers** arranged in Jamba architecture? Explain what advantages this design provides in terms of **memory and speed**.
#
# Autograded part: for Jamba-v0.1 (32 layers), set `q1_attention_layers` to its number of
# attention layers and `q1_kv_ratio` to how many times larger Mixtral-8x7B's KV cache is than
# Jamba's at the same context (both ints; you computed both above).

# %% nbgrader={"grade": false, "grade_id": "q1_numbers", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q1_attention_layers = ?   # an int
# q1_kv_ratio = ?           # an int
### BEGIN SOLUTION
q1_attention_layers = 4
q1_kv_ratio = 8
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q1_numbers", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 1, autograded part: two ints (hidden: the right ones)."""
for _name in ("q1_attention_layers", "q1_kv_ratio"):
    assert isinstance(globals()[_name], int), f"{_name} must be an int"
### BEGIN HIDDEN TESTS
assert q1_attention_layers == 4
assert q1_kv_ratio == 8
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q1_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** One attention layer for every seven Mamba layers (1:7; 4 of 32 layers in
# Jamba-v0.1). Memory: only attention layers keep a KV cache that grows with the context, so
# the cache is 8 times smaller than that of an all-attention model with the same attention
# widths (4 GB against Mixtral's 32 GB at 256K tokens); Mamba layers keep a fixed-size state.
# Speed: Mamba layers cost the same per token however long the context, and attention's
# per-token cost (reading all cached keys) is paid in 4 layers instead of 32, so long-context
# decoding is faster and a larger batch fits in the freed memory (higher throughput). The few
# attention layers keep the exact recall over the whole context that pure Mamba lacks.
#
# **Rubric (2 points).** 1 point: the ratio 1:7 (one attention in eight layers). 1 point: a
# correct memory or speed argument tied to the KV cache existing only in attention layers /
# Mamba's constant-size state (a number such as 8× smaller or 4 GB vs 32 GB is a plus).
# ### END SOLUTION

# %% [markdown]
# ### Question 2
# - Why did Jamba introduce MoE? Explain using the concepts of _active parameters_ and _total parameters_.
#
# Autograded part: which statement is right? Set `q2_choice` to one letter.
#
# * **A.** MoE lowers the memory needed to store the weights, because only the active
#   parameters are loaded.
# * **B.** MoE raises the total parameter count (capacity) while the compute per token is set
#   by the active parameters: the router and $k$ of the $E$ experts in each MoE layer.
# * **C.** MoE makes the KV cache smaller, because each token attends with only $k$ experts.
# * **D.** Mixtral-8x7B uses about 39B parameters per token, 2 of its 8 experts in each layer.

# %% nbgrader={"grade": false, "grade_id": "q2_choice", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q2_choice = "?"   # one of "A", "B", "C", "D"
### BEGIN SOLUTION
q2_choice = "B"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q2_choice", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 2, autograded part: q2_choice is one of A-D (hidden: the right letter)."""
assert q2_choice in {"A", "B", "C", "D"}, f"q2_choice must be one of 'A', 'B', 'C', 'D'; got {q2_choice!r}"
### BEGIN HIDDEN TESTS
assert q2_choice == "B"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q2_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** MoE decouples capacity from compute. Total parameters (about 52B in
# Jamba-v0.1) are everything stored and trained; active parameters (about 12B) are those one
# token actually computes with: the shared layers plus the router and the top-2 of 16 experts
# in every second layer. The model gets the knowledge capacity of a much larger network at
# roughly the per-token FLOPs of a 12B dense model. The price is memory: all 52B must be held
# (on GPUs), which is why Jamba pairs MoE with the small KV cache of its hybrid layers.
#
# **Rubric (2 points).** 1 point: defines total (all stored parameters) vs active (used per
# token: top-k experts plus shared parts). 1 point: the motivation: more capacity/quality at
# the compute cost of the active parameters (with the memory cost of the total noted, or the
# 52B/12B figures).
# ### END SOLUTION

# %% [markdown]
# ### Question 3
# - What is the maximum context length that Jamba model supports, and what practical meaning does this have (e.g., application cases)?
#
# Autograded part: set `q3_max_context_tokens` to Jamba-v0.1's maximum context in tokens (an
# int; the config's `max_position_embeddings`) and `q3_kv_gib` to the size of its KV cache at
# that context in GiB, 16-bit, batch 1 (an int).

# %% nbgrader={"grade": false, "grade_id": "q3_numbers", "locked": false, "schema_version": 3, "solution": true, "task": false}
# q3_max_context_tokens = ?   # an int
# q3_kv_gib = ?               # an int
### BEGIN SOLUTION
q3_max_context_tokens = 262144
q3_kv_gib = 4
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_q3_numbers", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Question 3, autograded part: two ints (hidden: 256K tokens, accepted as 262144 or 256000, and 4 GiB)."""
for _name in ("q3_max_context_tokens", "q3_kv_gib"):
    assert isinstance(globals()[_name], int), f"{_name} must be an int"
### BEGIN HIDDEN TESTS
assert q3_max_context_tokens in (262144, 256000)
assert q3_kv_gib == 4
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "q3_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# **Model answer.** 256K tokens (262,144; roughly a few hundred pages of text). At that
# length its KV cache is only about 4 GB in 16-bit, so long inputs fit beside the weights;
# AI21 reports up to about 140K tokens of context on a single 80 GB GPU. In practice a whole
# book, a long contract or a code repository, or a long multi-turn conversation can be read
# at once for question answering and summarisation, instead of chunking it and retrieving
# pieces.
#
# **Rubric (2 points).** 1 point: 256K tokens. 1 point: a practical meaning (whole long
# documents / codebases / long conversations in one prompt, fewer retrieval/chunking tricks,
# feasible on one GPU thanks to the small KV cache).
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# * Jamba's layout is four numbers: attention where `i % 8 == 4`, MoE where `i % 2 == 1`.
# * A sparse MoE layer routes each token to its top-$k$ experts (softmax over all experts,
#   keep $k$, Mixtral renormalises) and adds their weighted outputs; a balancing loss
#   $E\sum_e f_e P_e$ keeps the experts in use.
# * Total vs active parameters, computed: Jamba-v0.1 52B / 12B, Mixtral-8x7B 46.7B / 12.9B (not 39B).
# * KV cache at 256K tokens: Jamba 4 GiB, Mixtral 32 GiB, Llama-2-7B 128 GiB; only attention
#   layers pay it, Mamba layers keep a fixed-size state.

# %%
# Parity record (scripts/parity.py compares a CPU run with a CUDA run): under
# `python -m autograder execute` these numbers are written beside the executed notebook; otherwise nothing is.
from archlab.parity import save_record

save_record(globals(), device, exact=["s", "attn_layers", "moe_layers"], close=["yv", "lv"])
