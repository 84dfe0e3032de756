"""Mixture of experts: the library expert MLP, weight copying to and from Hugging Face, router load.

Notebook 04 builds a sparse mixture-of-experts (MoE) layer and the Jamba layer schedule
itself; this module holds what the notebook needs around those exercises: the library MLP the
notebook's experts are (:func:`expert_mlp`: transformers' ``LlamaMLP``, not the course's own
code: notebook 06 asks you to write that MLP yourself), a documented way to move weights
between the notebook's ``MoE`` and the Hugging Face ``MixtralSparseMoeBlock`` (which stores its
experts as fused 3-D tensors), and a counter of how many tokens each expert receives.

Glossary (code name -> symbol in the notebook and the papers)
--------
n_experts / num_local_experts   E   experts (gated SiLU MLPs, Llama's) in one MoE layer
k / num_experts_per_tok         k   experts each token is sent to (top-k routing)
router                          W_r (E, D) linear map from a token to E router logits
router logits                   s = x W_r^T, one row (E,) per token; softmax(s) = router probabilities
gate_up_proj (HF)               (E, 2F, D): each expert's gate and up projections stacked,
                                gate in rows [0, F), up in rows [F, 2F)
down_proj (HF)                  (E, D, F): each expert's down projection
expert load                     how many (token, slot) assignments each expert received: (E,)

The published configurations of Jamba-v0.1, Mixtral-8x7B and Llama-2-7B (so parameter counts
and KV-cache sizes are computed, never typed in) are in :mod:`archlab.llms`, the one registry.
Sources: Jiang et al. 2024, arXiv:2401.04088 (Mixtral); Lieber et al. 2024, arXiv:2403.19887
(Jamba, §2).
"""

import torch
from transformers import LlamaConfig, MixtralConfig

# ---------------------------------------------------------------------------------------------
# One expert: a library MLP
# ---------------------------------------------------------------------------------------------


def expert_mlp(d_model, d_ff):
    """One expert (and a layer's dense MLP): transformers' ``LlamaMLP`` without biases.

    It has ``gate_proj`` (F, D), ``up_proj`` (F, D) and ``down_proj`` (D, F), all ``nn.Linear``,
    and computes down(silu(gate(x)) * up(x)) on ``x (..., D)`` (Mixtral's and Jamba's experts
    compute the same function). A library module on purpose: notebook 06 asks you to write it.
    """
    from transformers.models.llama.modeling_llama import LlamaMLP

    cfg = LlamaConfig(hidden_size=d_model, intermediate_size=d_ff, hidden_act="silu", mlp_bias=False,
                      num_attention_heads=1, num_key_value_heads=1)   # heads: unused by the MLP
    return LlamaMLP(cfg)

# ---------------------------------------------------------------------------------------------
# Moving weights between the notebook's MoE and Hugging Face's fused-expert blocks
# ---------------------------------------------------------------------------------------------
# The notebook's MoE keeps   moe.router            nn.Linear(D, E, bias=False), weight (E, D)
#                            moe.experts[e]        an expert_mlp (LlamaMLP) with gate_proj (F, D),
#                                                  up_proj (F, D), down_proj (D, F), nn.Linear, no bias.
# transformers 5.x keeps     block.gate.weight     (E, D)   (Mixtral; Jamba calls it block.router)
#                            block.experts.gate_up_proj (E, 2F, D) = [gate; up] per expert
#                            block.experts.down_proj    (E, D, F)


def _router_of(block):
    return block.gate if hasattr(block, "gate") else block.router


@torch.no_grad()
def copy_moe_to_hf(moe, block):
    """Write the notebook MoE's weights into a Mixtral (or Jamba) sparse MoE block; return it."""
    E = len(moe.experts)
    if block.experts.gate_up_proj.shape[0] != E:
        raise ValueError(f"the block has {block.experts.gate_up_proj.shape[0]} experts, the MoE {E}")
    _router_of(block).weight.copy_(moe.router.weight)                          # (E, D)
    for e, expert in enumerate(moe.experts):
        block.experts.gate_up_proj[e].copy_(
            torch.cat([expert.gate_proj.weight, expert.up_proj.weight], dim=0))  # (2F, D)
        block.experts.down_proj[e].copy_(expert.down_proj.weight)              # (D, F)
    return block


@torch.no_grad()
def copy_hf_to_moe(block, moe):
    """Write a Mixtral (or Jamba) sparse MoE block's weights into the notebook's MoE; return it."""
    F_ = moe.experts[0].gate_proj.weight.shape[0]
    moe.router.weight.copy_(_router_of(block).weight)                          # (E, D)
    for e, expert in enumerate(moe.experts):
        gate, up = block.experts.gate_up_proj[e].split(F_, dim=0)              # each (F, D)
        expert.gate_proj.weight.copy_(gate)
        expert.up_proj.weight.copy_(up)
        expert.down_proj.weight.copy_(block.experts.down_proj[e])              # (D, F)
    return moe


def mixtral_moe_block(d_model, d_ff, n_experts, k, seed=0, std=0.5):
    """A ``MixtralSparseMoeBlock`` (transformers) with random weights N(0, std^2 / d_in), no jitter."""
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    cfg = MixtralConfig(hidden_size=d_model, intermediate_size=d_ff, num_local_experts=n_experts,
                        num_experts_per_tok=k, router_jitter_noise=0.0)
    cfg._experts_implementation = "eager"         # the plain loop over experts (no model sets it here)
    block = MixtralSparseMoeBlock(cfg)            # parameters are torch.empty: fill them
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():
            fan_in = p.shape[-1]
            p.copy_(torch.randn(p.shape, generator=g) * std / fan_in ** 0.5)
    return block.eval()


# ---------------------------------------------------------------------------------------------
# Router load
# ---------------------------------------------------------------------------------------------


def expert_load(experts, n_experts):
    """Tokens each expert receives: ``experts`` (T, k) long indices -> counts (E,) long.

    A token sent to two experts counts once for each, so the counts sum to T * k.
    """
    experts = torch.as_tensor(experts)
    if experts.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"experts must hold integer expert indices; got {experts.dtype}")
    return torch.bincount(experts.reshape(-1).long().cpu(), minlength=n_experts)   # (E,)
