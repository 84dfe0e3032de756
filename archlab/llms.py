"""Published configurations of the reading's models, as transformers config objects: one registry.

Notebooks 04, 05 and 06, their widgets and the figures count parameters and cache bytes of
real models without downloading them: each fills a transformers config class with the
hyperparameters the model's authors published (from :func:`published_config`) and builds the
model on the meta device (shapes only, no memory). This module holds those numbers, where they
come from, and how they differ from the config classes' defaults: Llama 2 and Llama 3,
Mixtral, Qwen2 (the open LLMs of §6) and Jamba (the hybrid of §4).

Glossary (code name -> symbol used in the notebook and the papers)
--------
vocab_size            V      tokens in the vocabulary (rows of the embedding matrix)
hidden_size           D      model width
intermediate_size     F      width of the SwiGLU MLP (per expert for Mixtral and Jamba)
num_hidden_layers     n_L    decoder layers
num_attention_heads   H      query heads; head width d = D / H (``head_dim``)
num_key_value_heads   H_kv   key/value heads (GQA: H_kv < H; H / H_kv query heads share one)
num_local_experts     E      experts per MoE layer (Mixtral; Jamba calls it num_experts)
num_experts_per_tok   k      experts each token is routed to (top-k)
rope_parameters       theta  RoPE base ("rope_theta"); Jamba has no positional encoding
attn_layer_period / offset   one attention layer in every `period` layers, placed `offset` in (Jamba)
expert_layer_period / offset one MoE MLP in every `period` layers, placed `offset` in (Jamba)
tie_word_embeddings          the output layer (lm_head) reuses the embedding matrix

Sources: the models' config.json files on the Hugging Face Hub (the numbers below), which
agree with Touvron et al. 2023, arXiv:2307.09288 (Llama 2, Table 1), Meta 2024 (Llama 3 model
card), Jiang et al. 2024, arXiv:2401.04088 (Mixtral, Table 1), Qwen team 2024, arXiv:2407.10671
(Qwen2, Table 1) and Lieber et al. 2024, arXiv:2403.19887 (Jamba, §2 and Table 1) except where
:data:`NOTES` says otherwise. Shapes, norms and RoPE only: token ids and training settings
(such as the router's auxiliary-loss coefficient) are left at the classes' defaults.
"""

import copy

from transformers import JambaConfig, LlamaConfig, MixtralConfig, Qwen2Config

# name -> (config class, published hyperparameters, hub id). Token ids are left out: they do
# not change any shape. Read them with published_config(name), which returns a fresh object.
PUBLISHED = {
    "Llama-2-7B": (LlamaConfig, dict(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
        rms_norm_eps=1e-5, rope_parameters=dict(rope_type="default", rope_theta=10000.0),
        tie_word_embeddings=False), "meta-llama/Llama-2-7b-hf"),
    "Llama-3-8B": (LlamaConfig, dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
        rms_norm_eps=1e-5, rope_parameters=dict(rope_type="default", rope_theta=500000.0),
        tie_word_embeddings=False), "meta-llama/Meta-Llama-3-8B"),
    "Llama-3-70B": (LlamaConfig, dict(
        vocab_size=128256, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
        num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=8192,
        rms_norm_eps=1e-5, rope_parameters=dict(rope_type="default", rope_theta=500000.0),
        tie_word_embeddings=False), "meta-llama/Meta-Llama-3-70B"),
    "Mixtral-8x7B": (MixtralConfig, dict(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, num_local_experts=8, num_experts_per_tok=2,
        max_position_embeddings=32768, rms_norm_eps=1e-5,
        rope_parameters=dict(rope_type="default", rope_theta=1e6), tie_word_embeddings=False),
        "mistralai/Mixtral-8x7B-v0.1"),
    "Qwen2-72B": (Qwen2Config, dict(
        vocab_size=152064, hidden_size=8192, intermediate_size=29568, num_hidden_layers=80,
        num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=131072,
        rms_norm_eps=1e-6, rope_parameters=dict(rope_type="default", rope_theta=1e6),
        tie_word_embeddings=False), "Qwen/Qwen2-72B"),
    # The small Qwen2 ties its output layer to the embedding; the 72B does not.
    "Qwen2-0.5B": (Qwen2Config, dict(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=131072,
        rms_norm_eps=1e-6, rope_parameters=dict(rope_type="default", rope_theta=1e6),
        tie_word_embeddings=True), "Qwen/Qwen2-0.5B"),
    # 32 layers: attention 1 in 8 from layer 4, MoE 1 in 2 from layer 1, 16 experts top-2.
    "Jamba-v0.1": (JambaConfig, dict(
        vocab_size=65536, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, num_experts=16, num_experts_per_tok=2,
        attn_layer_period=8, attn_layer_offset=4, expert_layer_period=2, expert_layer_offset=1,
        mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, mamba_dt_rank=256,
        max_position_embeddings=262144, rms_norm_eps=1e-6, tie_word_embeddings=False),
        "ai21labs/Jamba-v0.1"),
}

# The four models of the reading's §6 (notebook 06; Qwen2-0.5B is only here for its tied
# embeddings), and the three whose sizes and KV caches the Jamba paper's Table 1 compares (the
# figures the reading's §4 quotes: notebook 04, figs/kv_cache_vs_context.png).
FOUR = ["Llama-3-8B", "Llama-3-70B", "Mixtral-8x7B", "Qwen2-72B"]
JAMBA_TABLE1 = ["Jamba-v0.1", "Mixtral-8x7B", "Llama-2-7B"]

NOTES = {
    "Llama-2-7B": "LlamaConfig's default shapes are Llama-2-7B's; its default context is 2048 (Llama 1's) and "
                  "rms_norm_eps 1e-6, the released config.json says 4096 and 1e-5.",
    "Llama-3-8B": "LlamaConfig's default shapes are Llama-2-7B's (V 32000, I 11008, no GQA, theta 1e4); "
                  "Llama 3's rms_norm_eps is 1e-5 (class default 1e-6).",
    "Llama-3-70B": "Llama 3.1 keeps these shapes and raises max_position_embeddings to 131072 (rope_type 'llama3').",
    "Mixtral-8x7B": "MixtralConfig's defaults are Mixtral-8x7B's shapes; its default context is 131072, "
                    "the released config.json says 32768.",
    "Qwen2-72B": "Qwen2 paper Table 1 gives a vocabulary of 151,646 tokens; config.json pads the embedding "
                 "to 152,064 rows, which is what the weights hold. Qwen2Config's default shapes (D 4096, 32 layers, "
                 "no GQA, theta 1e4) match no released Qwen2 size, although its docstring names Qwen2-7B.",
    "Qwen2-0.5B": "config.json pads the vocabulary to 151,936 rows (paper: 151,646 tokens).",
    "Jamba-v0.1": "JambaConfig's defaults are Jamba-v0.1's shapes. Jamba has no positional encoding (no RoPE): "
                  "its Mamba layers carry the order of the tokens.",
}


def published_config(name, **overrides):
    """A fresh transformers config of the published model ``name`` (see :data:`PUBLISHED`)."""
    if name not in PUBLISHED:
        raise ValueError(f"Unknown model {name!r}. Known: {', '.join(PUBLISHED)}.")
    cls, kwargs, _ = PUBLISHED[name]
    return cls(**{**copy.deepcopy(kwargs), **overrides})


def hub_id(name):
    """The Hugging Face Hub id the reading loads ``name`` from."""
    return PUBLISHED[name][2]


def differences_from_defaults(name):
    """{field: (published, config-class default)} for the fields where the two differ."""
    cls, kwargs, _ = PUBLISHED[name]
    default = cls()
    return {k: (v, getattr(default, k)) for k, v in kwargs.items() if getattr(default, k) != v}
