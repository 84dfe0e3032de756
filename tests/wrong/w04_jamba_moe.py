"""Plausible wrong answers for 04_jamba_moe. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it: a dict with
"visible": the keyword its visible test's message must contain (a typical mistake, named before
grading), or "hidden": what the hidden tests' message must contain (a subtle mistake that passes
the visible tests). See tests/nbtools.py:wrong_answers. The first "visible" and the first "hidden"
entry of each exercise are what tests/grading/test_autograde.py submits as students wrong1 and wrong2.
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
        self.experts = nn.ModuleList(moelib.expert_mlp(d_model, d_ff) for _ in range(n_experts))

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
    d = {d}
    attn = D * H * d + 2 * D * H_kv * d + H * d * D
    if getattr(config, "attention_bias", False):
        attn += H * d + 2 * H_kv * d + D
    mlp = 3 * D * config.intermediate_size
    if getattr(config, "mlp_bias", False):
        mlp += 2 * config.intermediate_size + D
    n = config.num_hidden_layers
    if config.model_type == "jamba":
        E, k = config.num_experts, config.num_experts_per_tok
        mixers, moe = {jamba_mixers}, [m > 1 for m in config.layers_num_experts]
    elif config.model_type == "mixtral":
        E, k = config.num_local_experts, config.num_experts_per_tok
        mixers, moe = ["attention"] * n, [True] * n
    else:
        E, k = 1, 1
        mixers, moe = ["attention"] * n, [False] * n
    total = active = 0
    for mixer, is_moe in zip(mixers, moe):
        layer = 2 * D + (attn if mixer == "attention" else mamba_mixer_params(config))
        total += layer
        active += layer
        if is_moe:
            total += E * D + E * mlp
            active += E * D + {k_active} * mlp
        else:
            total += mlp
            active += mlp
    outside = {outside}
    return int(total + outside), int(active + outside)
'''

_GOOD = dict(H_kv='getattr(config, "num_key_value_heads", None) or H', d='getattr(config, "head_dim", None) or D // H',
             jamba_mixers="config.layers_block_type", k_active="k",
             outside="V * D + D + (0 if config.tie_word_embeddings else V * D)")


def _count(**change):
    return _COUNT.format(**{**_GOOD, **change})


# MoE routes with the student's own top_k_routing: with that one wrong (as in a submission that gets
# every exercise's first mistake) its visible test says to fix it first.
BUILT_ON = {"MoE": (("top_k_routing",), "fix it first")}

WRONG = {
    "jamba_layer_schedule": {
        "layers counted from 1": {"visible": "layers counted from 1", "code": _SCHEDULE_HEAD + '''
    return [("attention" if (i + 1) % attn_period == attn_offset else "mamba",
             "moe" if (i + 1) % expert_period == expert_offset else "mlp") for i in range(n_layers)]
'''},
        "a block of attn_period layers repeated n_layers // attn_period times": {
            "hidden": "one (mixer, ffn) pair for each", "code": _SCHEDULE_HEAD + '''
    block = ["attention" if i == attn_offset else "mamba" for i in range(attn_period)]
    mixers = block * (n_layers // attn_period)
    ffns = ["moe" if i % expert_period == expert_offset else "mlp" for i in range(n_layers)]
    return list(zip(mixers, ffns))
'''},
        "attention at the start of each period (offset ignored)": {"visible": "start of each period", "code": _SCHEDULE_HEAD + '''
    return [("attention" if i % attn_period == 0 else "mamba",
             "moe" if i % expert_period == expert_offset else "mlp") for i in range(n_layers)]
'''},
        "MoE placement ignores the expert offset": {"visible": "expert offset ignored", "code": _SCHEDULE_HEAD + '''
    return [("attention" if i % attn_period == attn_offset else "mamba",
             "moe" if i % expert_period == 0 else "mlp") for i in range(n_layers)]
'''},
        "period and offset swapped": {"visible": "period and offset swapped", "code": _SCHEDULE_HEAD + '''
    return [("attention" if i % attn_offset == attn_period else "mamba",
             "moe" if i % expert_offset == expert_period else "mlp") for i in range(n_layers)]
'''},
        "attention and Mamba swapped": {"visible": "attention and Mamba swapped", "code": _SCHEDULE_HEAD + '''
    return [("mamba" if i % attn_period == attn_offset else "attention",
             "moe" if i % expert_period == expert_offset else "mlp") for i in range(n_layers)]
'''},
        "pairs in the wrong order (ffn, mixer)": {"visible": "mixer and ffn swapped", "code": _SCHEDULE_HEAD + '''
    return [("moe" if i % expert_period == expert_offset else "mlp",
             "attention" if i % attn_period == attn_offset else "mamba") for i in range(n_layers)]
'''},
        "asks transformers' JambaConfig": {"hidden": "must be your own code", "code": _SCHEDULE_HEAD + '''
    from transformers import JambaConfig
    cfg = JambaConfig(num_hidden_layers=n_layers, attn_layer_period=attn_period, attn_layer_offset=attn_offset,
                      expert_layer_period=expert_period, expert_layer_offset=expert_offset, num_experts=2)
    return [(m, "moe" if n > 1 else "mlp") for m, n in zip(cfg.layers_block_type, cfg.layers_num_experts)]
'''},
    },
    "top_k_routing": {
        "top-k without renormalising": {"visible": "without renormalisation", "code": _TOPK_HEAD + '''
    probs = torch.softmax(router_logits.float(), dim=-1)
    w, e = torch.topk(probs, k, dim=-1)
    return w, e
'''},
        "softmax in the logits' dtype": {"hidden": "float32", "code": _TOPK_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    w, e = torch.topk(probs, k, dim=-1)
    if normalize:
        w = w / w.sum(-1, keepdim=True)
    return w, e
'''},
        "softmax over the token axis": {"visible": "softmax over the tokens", "code": _TOPK_HEAD + '''
    probs = torch.softmax(router_logits.float(), dim=0)
    w, e = torch.topk(probs, k, dim=-1)
    if normalize:
        w = w / w.sum(-1, keepdim=True)
    return w, e
'''},
        "softmax over the kept logits only, also when normalize=False": {
            "visible": "renormalised although normalize=False", "code": _TOPK_HEAD + '''
    top, e = torch.topk(router_logits.float(), k, dim=-1)
    return torch.softmax(top, dim=-1), e
'''},
        "renormalised by the batch's sum": {"visible": "renormalised over the whole batch", "code": _TOPK_HEAD + '''
    w, e = torch.topk(torch.softmax(router_logits.float(), dim=-1), k, dim=-1)
    return (w / w.sum() if normalize else w), e
'''},
    },
    "MoE": {
        "weights not renormalised": {"visible": "weights not renormalised", "code": _MOE_INIT + '''        weights, experts = top_k_routing(logits, self.k, normalize=False)
''' + _MOE_DISPATCH.format(logits_out="logits")},
        "every expert on every token, unrouted ones weighted 0": {"hidden": "only on the tokens routed", "code": _MOE_INIT + '''        weights, experts = top_k_routing(logits, self.k)
        y = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            w_e = (weights * (experts == e)).sum(-1, keepdim=True)
            y = y + w_e * expert(tokens)
        return y.reshape(B, L, D), logits
'''},
        "runs transformers' MixtralSparseMoeBlock with its weights": {"hidden": "must be your own code", "code": _MOE_INIT + '''        block = moelib.copy_moe_to_hf(self, moelib.mixtral_moe_block(D, self.d_ff, self.n_experts, self.k))
        return block(x), logits
'''},
        "dense mixture: every expert weighted by the full softmax": {"visible": "dense mixture", "code": _MOE_INIT + '''        probs = torch.softmax(logits, dim=-1)
        y = sum(probs[:, e, None] * expert(tokens) for e, expert in enumerate(self.experts))
        return y.reshape(B, L, D), logits
'''},
        "returns router probabilities instead of logits": {"visible": "router_logits are probabilities", "code": _MOE_INIT + '''        weights, experts = top_k_routing(logits, self.k)
''' + _MOE_DISPATCH.format(logits_out="torch.softmax(logits, dim=-1)")},
        "router logits returned as (B, L, E)": {"visible": "router_logits of shape (B, L, E)", "code": _MOE_INIT + '''        weights, experts = top_k_routing(logits, self.k)
''' + _MOE_DISPATCH.format(logits_out="logits.reshape(B, L, -1)")},
        "expert outputs added without their weights": {"visible": "without their weights", "code": _MOE_INIT + '''        weights, experts = top_k_routing(logits, self.k)
        weights = torch.ones_like(weights)
''' + _MOE_DISPATCH.format(logits_out="logits")},
    },
    "load_balancing_loss": {
        "without the num_experts factor": {"visible": "no factor E", "code": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    counts = torch.bincount(torch.topk(probs, k, dim=-1).indices.reshape(-1), minlength=n_experts)
    return (counts.float() / T * probs.mean(0)).sum()
'''},
        "P detached (no gradient)": {"hidden": "must not be detached", "code": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1).detach()
    counts = torch.bincount(torch.topk(probs, k, dim=-1).indices.reshape(-1), minlength=n_experts)
    return n_experts * (counts.float() / T * probs.mean(0)).sum()
'''},
        "counts of the top-1 expert only (Switch) although k > 1": {"visible": "only the top-1 expert", "code": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    counts = torch.bincount(probs.argmax(-1), minlength=n_experts)
    return n_experts * (counts.float() / T * probs.mean(0)).sum()
'''},
        "f divided by T*k (shares summing to 1)": {"visible": "f divided by T * k", "code": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    counts = torch.bincount(torch.topk(probs, k, dim=-1).indices.reshape(-1), minlength=n_experts)
    return n_experts * (counts.float() / (T * k) * probs.mean(0)).sum()
'''},
        "softmax over the token axis": {"visible": "softmax over the tokens", "code": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=0)
    counts = torch.bincount(torch.topk(probs, k, dim=-1).indices.reshape(-1), minlength=n_experts)
    return n_experts * (counts.float() / T * probs.mean(0)).sum()
'''},
        "calls transformers' load_balancing_loss_func": {"hidden": "must be your own code", "code": _LB_HEAD + '''
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func
    return load_balancing_loss_func((router_logits,), n_experts, k)
'''},
        "E squared": {"visible": "factor E squared", "code": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    counts = torch.bincount(torch.topk(probs, k, dim=-1).indices.reshape(-1), minlength=n_experts)
    return n_experts ** 2 * (counts.float() / T * probs.mean(0)).sum()
'''},
        "P from the renormalised top-k weights": {"visible": "P from the renormalised top-k weights", "code": _LB_HEAD + '''
    probs = torch.softmax(router_logits, dim=-1)
    top = torch.topk(probs, k, dim=-1)
    w = torch.zeros_like(probs).scatter(-1, top.indices, top.values / top.values.sum(-1, keepdim=True))
    counts = torch.bincount(top.indices.reshape(-1), minlength=n_experts)
    return n_experts * (counts.float() / T * w.mean(0)).sum()
'''},
    },
    "count_params": {
        "all experts counted as active": {"visible": "all experts counted as active", "code": _count(k_active="E")},
        "head width always D / H (head_dim ignored)": {"hidden": "head_dim=6", "mistake": "config-setting-miscounted",
                                                       "code": _count(d="D // H")},
        "k and v with all H heads (GQA ignored)": {"visible": "k and v sized with all H heads", "code": _count(H_kv="H")},
        "output layer counted even when tied": {"visible": "output layer counted although tie_word_embeddings",
                                                "code": _count(outside="2 * V * D + D")},
        "output layer forgotten": {"visible": "output layer (lm_head) forgotten", "code": _count(outside="V * D + D")},
        "Jamba's Mamba layers counted as attention": {"visible": "every layer counted as attention",
                                                      "code": _count(jamba_mixers='["attention"] * n')},
        "counts the model transformers builds": {"hidden": "must be your own code", "code": '''def count_params(config):
    net = models.meta_model(config)
    total = models.n_parameters(net)
    k = getattr(config, "num_experts_per_tok", 1)
    skipped = sum((m.gate_up_proj.numel() + m.down_proj.numel()) * (m.gate_up_proj.shape[0] - k) // m.gate_up_proj.shape[0]
                  for m in net.modules() if hasattr(m, "gate_up_proj"))
    return total, total - skipped
'''},
    },
    "q1_numbers": {
        "floats": {"visible": "must be an int", "code": "q1_attention_layers = 8.0\nq1_kv_ratio = 5.0\n"},
        "KV ratio from Mamba layers per attention layer": {"hidden": "q1_kv_ratio", "code": "q1_attention_layers = 8\nq1_kv_ratio = 4\n"},
        "counted the Mamba layers": {"hidden": "q1_attention_layers", "code": "q1_attention_layers = 32\nq1_kv_ratio = 5\n"},
        "Jamba-v0.1's numbers": {"hidden": "q1_attention_layers", "code": "q1_attention_layers = 4\nq1_kv_ratio = 8\n"},
    },
    "q2_choice": {
        "lower case": {"visible": "write 'C'", "code": 'q2_choice = "c"\n'},
        "MoE saves weight memory (A)": {"hidden": "not the right letter", "code": 'q2_choice = "A"\n'},
        "MoE shrinks the KV cache (B)": {"hidden": "not the right letter", "code": 'q2_choice = "B"\n'},
        "training only (D)": {"hidden": "not the right letter", "code": 'q2_choice = "D"\n'},
    },
    "q3_max_context": {
        "a string": {"visible": "must be an int", "code": 'q3_max_context_tokens = "256K"\n'},
        "256K read as thousands": {"visible": "reads '256K' as thousands", "code": "q3_max_context_tokens = 256000\n"},
        "128K context": {"hidden": "is 128K", "mistake": "128k-context", "code": "q3_max_context_tokens = 131072\n"},
        "128K in thousands": {"hidden": "is 128K", "mistake": "128k-context", "code": "q3_max_context_tokens = 128000\n"},
        "the single-GPU figure": {"hidden": "not Jamba-v0.1's maximum context", "mistake": "not-the-config-value",
                                  "code": "q3_max_context_tokens = 140000\n"},
    },
}
