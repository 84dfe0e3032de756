"""Plausible wrong answers for 04_jamba_moe. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it.
"""

_SCHEDULE_HEAD = '''def jamba_layer_schedule(n_layers=32, attn_period=8, attn_offset=4, expert_period=2, expert_offset=1):
    for name, offset, period in (("attn", attn_offset, attn_period), ("expert", expert_offset, expert_period)):
        if not 0 <= offset < period:
            raise ValueError(f"{name}_offset must be smaller than {name}_period")
'''

_TOPK_HEAD = '''def top_k_routing(router_logits, k, normalize=True):
    check_shape(router_logits, ("T", "E"), "router_logits")
'''

_MOE_INIT = '''class MoE(nn.Module):
    def __init__(self, d_model, d_ff, n_experts, k):
        super().__init__()
        self.d_model, self.d_ff, self.n_experts, self.k = d_model, d_ff, n_experts, k
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(d_model, d_ff) for _ in range(n_experts))

    def forward(self, x):
        B, L, D = x.shape
        tokens = x.reshape(B * L, D)
        logits = self.router(tokens)
'''

_MOE_DISPATCH = '''        y = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            idx, slot = torch.where(experts == e)
            if idx.numel():
                y.index_add_(0, idx, expert(tokens[idx]) * weights[idx, slot, None])
        return y.reshape(B, L, D), {logits_out}
'''

_LB_HEAD = '''def load_balancing_loss(router_logits, k, n_experts):
    if isinstance(router_logits, (tuple, list)):
        router_logits = torch.cat(list(router_logits), dim=0)
    T = router_logits.shape[0]
'''

_COUNT = '''def count_params(config):
    D, V, H = config.hidden_size, config.vocab_size, config.num_attention_heads
    H_kv = {H_kv}
    d = getattr(config, "head_dim", None) or D // H
    attn = D * H * d + 2 * D * H_kv * d + H * d * D
    if getattr(config, "attention_bias", False):
        attn += H * d + 2 * H_kv * d + D
    mlp = 3 * D * config.intermediate_size
    if getattr(config, "mlp_bias", False):
        mlp += 2 * config.intermediate_size + D
    if config.model_type == "jamba":
        E, k = config.num_experts, config.num_experts_per_tok
        sched = jamba_layer_schedule(config.num_hidden_layers, config.attn_layer_period, config.attn_layer_offset,
                                     config.expert_layer_period, config.expert_layer_offset)
    elif config.model_type == "mixtral":
        E, k = config.num_local_experts, config.num_experts_per_tok
        sched = [("attention", "moe")] * config.num_hidden_layers
    else:
        E, k = 1, 1
        sched = [("attention", "mlp")] * config.num_hidden_layers
    total = active = 0
    for mixer, ffn in sched:
        layer = 2 * D + (attn if mixer == "attention" else mamba_mixer_params(config))
        total += layer
        active += layer
        if ffn == "moe":
            total += E * D + E * mlp
            active += E * D + {k_active} * mlp
        else:
            total += mlp
            active += mlp
    outside = {outside}
    return int(total + outside), int(active + outside)
'''

_GOOD = dict(H_kv='getattr(config, "num_key_value_heads", None) or H', k_active="k",
             outside="V * D + D + (0 if config.tie_word_embeddings else V * D)")

WRONG = {
    "jamba_layer_schedule": {
        "attention offset off by one (layers counted from 1)": _SCHEDULE_HEAD + '''
    return [("attention" if (i + 1) % attn_period == attn_offset else "mamba",
             "moe" if i % expert_period == expert_offset else "mlp") for i in range(n_layers)]
''',
        "MoE placement ignores the expert offset": _SCHEDULE_HEAD + '''
    return [("attention" if i % attn_period == attn_offset else "mamba",
             "moe" if i % expert_period == 0 else "mlp") for i in range(n_layers)]
''',
        "pairs in the wrong order (ffn, mixer)": _SCHEDULE_HEAD + '''
    return [("moe" if i % expert_period == expert_offset else "mlp",
             "attention" if i % attn_period == attn_offset else "mamba") for i in range(n_layers)]
''',
    },
    "top_k_routing": {
        "top-k without renormalising": _TOPK_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    return torch.topk(probs, k, dim=-1)
''',
        "softmax over the token axis": _TOPK_HEAD + '''
    probs = torch.softmax(router_logits, dim=0)
    w, e = torch.topk(probs, k, dim=-1)
    if normalize:
        w = w / w.sum(-1, keepdim=True)
    return w, e
''',
        "softmax over the kept logits only, also when normalize=False": _TOPK_HEAD + '''
    top, e = torch.topk(router_logits, k, dim=-1)
    return torch.softmax(top, dim=-1), e
''',
    },
    "MoE": {
        "weights not renormalised": _MOE_INIT + '''        weights, experts = top_k_routing(logits, self.k, normalize=False)
''' + _MOE_DISPATCH.format(logits_out="logits"),
        "dense mixture: every expert weighted by the full softmax": _MOE_INIT + '''        probs = torch.softmax(logits, dim=-1)
        y = sum(probs[:, e, None] * expert(tokens) for e, expert in enumerate(self.experts))
        return y.reshape(B, L, D), logits
''',
        "returns router probabilities instead of logits": _MOE_INIT + '''        weights, experts = top_k_routing(logits, self.k)
''' + _MOE_DISPATCH.format(logits_out="torch.softmax(logits, dim=-1)"),
        "expert outputs added without their weights": _MOE_INIT + '''        weights, experts = top_k_routing(logits, self.k)
        weights = torch.ones_like(weights)
''' + _MOE_DISPATCH.format(logits_out="logits"),
    },
    "load_balancing_loss": {
        "without the num_experts factor": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    counts = torch.bincount(torch.topk(probs, k, dim=-1).indices.reshape(-1), minlength=n_experts)
    return (counts.float() / T * probs.mean(0)).sum()
''',
        "counts of the top-1 expert only (Switch) although k > 1": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    counts = torch.bincount(probs.argmax(-1), minlength=n_experts)
    return n_experts * (counts.float() / T * probs.mean(0)).sum()
''',
        "f divided by T*k (shares summing to 1)": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    counts = torch.bincount(torch.topk(probs, k, dim=-1).indices.reshape(-1), minlength=n_experts)
    return n_experts * (counts.float() / (T * k) * probs.mean(0)).sum()
''',
        "softmax over the token axis": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=0)
    counts = torch.bincount(torch.topk(probs, k, dim=-1).indices.reshape(-1), minlength=n_experts)
    return n_experts * (counts.float() / T * probs.mean(0)).sum()
''',
    },
    "count_params": {
        "all experts counted as active": _COUNT.format(**{**_GOOD, "k_active": "E"}),
        "k and v with all H heads (GQA ignored)": _COUNT.format(**{**_GOOD, "H_kv": "H"}),
        "output layer counted even when tied": _COUNT.format(**{**_GOOD, "outside": "2 * V * D + D"}),
        "output layer forgotten": _COUNT.format(**{**_GOOD, "outside": "V * D + D"}),
    },
    "q1_numbers": {
        "KV ratio taken from the 1:7 layer ratio": "q1_attention_layers = 4\nq1_kv_ratio = 7\n",
        "counted the Mamba layers": "q1_attention_layers = 28\nq1_kv_ratio = 8\n",
        "one attention layer per four": "q1_attention_layers = 8\nq1_kv_ratio = 4\n",
    },
    "q2_choice": {
        "MoE saves weight memory": 'q2_choice = "A"\n',
        "the reading's 39B active": 'q2_choice = "D"\n',
        "MoE shrinks the KV cache": 'q2_choice = "C"\n',
    },
    "q3_numbers": {
        "128K context": "q3_max_context_tokens = 131072\nq3_kv_gib = 2\n",
        "the single-GPU figure": "q3_max_context_tokens = 140000\nq3_kv_gib = 4\n",
        "Mixtral's KV cache": "q3_max_context_tokens = 262144\nq3_kv_gib = 32\n",
    },
}
