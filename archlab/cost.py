"""What a decode step reads, in bytes: cache and state from the configuration, weights, bandwidth.

A batch-1 decode step reads every weight it uses and the whole cache once, so its bytes over
the memory bandwidth bound its time from below (the roofline). Notebooks 05 and 07, their
widgets and ``bench/run.py`` take these numbers from here.

Glossary
--------
cache / state bytes
    What decode carries from step to step, from the configuration alone
    (:func:`predicted_state_bytes`): the KV cache grows with the context n, a Mamba or RWKV
    state does not. Notebook 05 measures the same bytes itself (its exercise ``state_bytes``).
total / active parameters
    All weights of a model, and those one decode step reads (a mixture of experts reads top-k
    of its E experts): :func:`archlab.models.n_parameters`, :func:`active_params`.
roofline (decode)
    At batch 1 a decode step reads every weight and the whole cache once; it cannot be faster
    than bytes_read / memory_bandwidth (:func:`memory_bandwidth`, measured).
"""

import torch

from archlab import models
from archlab.measure import tensor_bytes, time_fn


def predicted_state_bytes(config, context_len, batch=1, bytes_per_value=4):
    """Cache/state bytes from the configuration alone (what ``state_bytes`` should measure).

    GPT-2:  2 (K and V) · layers · B · n · D
    Mamba:  layers · B · d_inner · (d_conv + N)          (conv window + SSM state, no n!)
    RWKV-4: 5 · layers · B · D                           (the five per-layer state vectors)
    Jamba:  attention layers' K, V with GQA  +  Mamba layers' conv and SSM states
    """
    kind = config.model_type
    n, B = context_len, batch
    if kind == "gpt2":
        values = 2 * config.n_layer * B * n * config.n_embd
    elif kind == "mamba":
        values = config.num_hidden_layers * B * config.intermediate_size * (config.conv_kernel + config.state_size)
    elif kind == "rwkv":
        values = 5 * config.num_hidden_layers * B * config.hidden_size
    elif kind == "jamba":
        head_dim = config.hidden_size // config.num_attention_heads
        n_attn = sum(1 for t in config.layers_block_type if t == "attention")
        n_mamba = config.num_hidden_layers - n_attn
        d_inner = config.mamba_expand * config.hidden_size
        values = 2 * n_attn * B * n * config.num_key_value_heads * head_dim
        values += n_mamba * B * d_inner * (config.mamba_d_conv + config.mamba_d_state)
    else:
        raise ValueError(f"no formula for {kind!r}")
    return int(values * bytes_per_value)


def weight_bytes(model):
    """Bytes of all parameters (a tied weight counted once)."""
    return tensor_bytes(list(model.parameters()))


def active_weight_bytes(model):
    """Bytes a batch-1 decode step actually reads: MoE layers read only top-k of E experts."""
    total = weight_bytes(model)
    cfg = model.config
    E, k = getattr(cfg, "num_experts", 0) or 0, getattr(cfg, "num_experts_per_tok", 0) or 0
    if E and k and E > k:
        expert = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if ".experts." in n)
        total -= expert * (E - k) // E
    return total


def memory_bandwidth(device="cpu", n_bytes=256 * 2**20, repeat=5):
    """Measured copy bandwidth in bytes/s: the median time of ``dst.copy_(src)`` (reads + writes 2·n_bytes)."""
    device = torch.device(device)
    src = torch.ones(n_bytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: dst.copy_(src), warmup=1, repeat=repeat, device=device)  # warm-up: first touch
    return 2 * n_bytes / t.median


def active_params(model):
    """Parameters a batch-1 decode step reads: all of them, less the (E - k)/E unused experts' share.

    Counts elements, not bytes, so it works on a model built on the meta device (shapes only).
    """
    total = models.n_parameters(model)
    cfg = model.config
    E, k = getattr(cfg, "num_experts", 0) or 0, getattr(cfg, "num_experts_per_tok", 0) or 0
    if E and k and E > k:
        expert = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
        total -= expert * (E - k) // E
    return total
