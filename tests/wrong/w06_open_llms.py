"""Plausible wrong answers for 06_open_llms. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it.
The first two of each exercise also go through the real grader (tests/test_autograde.py).
"""

_RMS = '''def rms_norm(x, weight, eps=1e-6):
    check_shape(weight, (x.shape[-1],), "weight")
'''

_ROPE = '''def apply_rope(x, positions, base=10000.0):
    check_rope_inputs(x, positions)
    d = x.shape[-1]
    ang = positions.to(torch.float32)[..., None] * (1.0 / base ** (torch.arange(0, d, 2).float() / d))
    if positions.dim() == 2:
        ang = ang[:, None]
'''

_RKV = '''def repeat_kv(k, n_rep):
    check_shape(k, ("B", "H_kv", "L", "d"), "k")
    B, H_kv, L, d = k.shape
'''

_MLP = '''def swiglu_mlp(x, w_gate, w_up, w_down):
'''

# decoder_layer: the correct steps with one thing changed at a time ({...} filled per answer)
_LAYER = '''def decoder_layer(x, p, n_heads, n_kv_heads, eps=1e-6, base=10000.0):
    check_layer_inputs(x, p, n_heads, n_kv_heads)
    B, L, D = x.shape
    d = p["self_attn.q_proj.weight"].shape[0] // n_heads
    lin = lambda h, n: F.linear(h, p[f"self_attn.{{n}}.weight"], p.get(f"self_attn.{{n}}.bias"))
    h = {norm_in}
    q = lin(h, "q_proj").view(B, L, n_heads, d).transpose(1, 2)
    k = lin(h, "k_proj").view(B, L, n_kv_heads, d).transpose(1, 2)
    v = lin(h, "v_proj").view(B, L, n_kv_heads, d).transpose(1, 2)
    pos = torch.arange(L)
    q, k = {rope}
    k, v = repeat_kv(k, n_heads // n_kv_heads), repeat_kv(v, n_heads // n_kv_heads)
    s = q @ k.transpose(-2, -1) / math.sqrt({scale})
    s = {mask}
    a = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, L, n_heads * d)
    x = {resid1}
    h = rms_norm(x, p["post_attention_layernorm.weight"], eps)
    return x + swiglu_mlp(h, p["mlp.gate_proj.weight"], p["mlp.up_proj.weight"], p["mlp.down_proj.weight"])
'''
_GOOD = dict(norm_in='rms_norm(x, p["input_layernorm.weight"], eps)',
             rope="apply_rope(q, pos, base), apply_rope(k, pos, base)", scale="d",
             mask="s.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), float('-inf'))",
             resid1='x + lin(a, "o_proj")')


def _layer(**change):
    return _LAYER.format(**{**_GOOD, **change})


_COUNT = '''def count_params(config):
    V, D, I, n_L = config.vocab_size, config.hidden_size, config.intermediate_size, config.num_hidden_layers
    H, H_kv = config.num_attention_heads, config.num_key_value_heads
    d = getattr(config, "head_dim", None) or D // H
    attn = 2 * D * H * d + 2 * D * H_kv * d
    if config.model_type == "qwen2":
        attn += H * d + 2 * H_kv * d
    elif getattr(config, "attention_bias", False):
        attn += H * d + 2 * H_kv * d + D
    mlp = 3 * D * I + (2 * I + D if getattr(config, "mlp_bias", False) else 0)
    E = getattr(config, "num_local_experts", None)
    k = config.num_experts_per_tok if E else 1
'''

WRONG = {
    "rms_norm": {
        "subtracts the mean (LayerNorm without shift)": _RMS + '''
    xc = x - x.mean(-1, keepdim=True)
    return weight * xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + eps)
''',
        "eps added outside the square root": _RMS + '''
    return weight * x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps)
''',
        "divides by the L2 norm, not the root mean square": _RMS + '''
    return weight * x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps)
''',
        "forgets the weight": _RMS + '''
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
''',
    },
    "apply_rope": {
        "interleaved pairs (2i, 2i+1) instead of rotate_half": _ROPE + '''
    cos, sin = ang.cos(), ang.sin()
    x_even, x_odd = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x_even * cos - x_odd * sin, x_even * sin + x_odd * cos], dim=-1)
    return out.flatten(-2)
''',
        "rotates the other way (halves swapped with the wrong sign)": _ROPE + '''
    ang = torch.cat([ang, ang], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * ang.cos() + torch.cat([x2, -x1], -1) * ang.sin()
''',
        "frequencies base^(-i/d) instead of base^(-2i/d)": '''def apply_rope(x, positions, base=10000.0):
    check_rope_inputs(x, positions)
    d = x.shape[-1]
    ang = positions.to(torch.float32)[..., None] * (1.0 / base ** (torch.arange(d // 2).float() / d))
    if positions.dim() == 2:
        ang = ang[:, None]
    ang = torch.cat([ang, ang], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * ang.cos() + torch.cat([-x2, x1], -1) * ang.sin()
''',
        "adds a sinusoidal position vector instead of rotating": _ROPE + '''
    ang = torch.cat([ang, ang], -1)
    return x + torch.cat([ang[..., : d // 2].sin(), ang[..., d // 2:].cos()], -1)
''',
    },
    "repeat_kv": {
        "tiles the heads (repeat) instead of repeating each in place": _RKV + '''
    return k.repeat(1, n_rep, 1, 1)
''',
        "repeats along the sequence axis": _RKV + '''
    return torch.repeat_interleave(k, n_rep, dim=2)
''',
        "expand before the head axis, then reshape (tiled order)": _RKV + '''
    return k[:, None].expand(B, n_rep, H_kv, L, d).reshape(B, H_kv * n_rep, L, d)
''',
    },
    "swiglu_mlp": {
        "SiLU on the up projection instead of the gate": _MLP + '''
    return (x @ w_gate.T * F.silu(x @ w_up.T)) @ w_down.T
''',
        "GELU instead of SiLU": _MLP + '''
    return (F.gelu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T
''',
        "sigmoid gate (GLU) instead of SiLU": _MLP + '''
    return (torch.sigmoid(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T
''',
    },
    "decoder_layer": {
        "post-norm: normalises after the residual": _layer(norm_in="x", resid1='rms_norm(x + lin(a, "o_proj"), p["input_layernorm.weight"], eps)'),
        "no causal mask": _layer(mask="s"),
        "scores scaled by sqrt(D) instead of sqrt(d)": _layer(scale="D"),
        "RoPE on the queries only": _layer(rope="apply_rope(q, pos, base), k"),
    },
    "count_params": {
        "forgets tied embeddings (always counts lm_head)": _COUNT + '''
    ffn = (E * mlp + D * E) if E else mlp
    ffn_act = (k * mlp + D * E) if E else mlp
    rest = 2 * V * D + D
    return rest + n_L * (attn + ffn + 2 * D), rest + n_L * (attn + ffn_act + 2 * D)
''',
        "never counts lm_head (as if every model were tied)": _COUNT + '''
    ffn = (E * mlp + D * E) if E else mlp
    ffn_act = (k * mlp + D * E) if E else mlp
    rest = V * D + D
    return rest + n_L * (attn + ffn + 2 * D), rest + n_L * (attn + ffn_act + 2 * D)
''',
        "no QKV bias for Qwen2": '''def count_params(config):
    V, D, I, n_L = config.vocab_size, config.hidden_size, config.intermediate_size, config.num_hidden_layers
    H, H_kv = config.num_attention_heads, config.num_key_value_heads
    d = getattr(config, "head_dim", None) or D // H
    attn = 2 * D * H * d + 2 * D * H_kv * d
    mlp = 3 * D * I
    E = getattr(config, "num_local_experts", None)
    ffn, ffn_act = ((E * mlp + D * E), (config.num_experts_per_tok * mlp + D * E)) if E else (mlp, mlp)
    rest = V * D * (1 if config.tie_word_embeddings else 2) + D
    return rest + n_L * (attn + ffn + 2 * D), rest + n_L * (attn + ffn_act + 2 * D)
''',
        "active = total (MoE experts all counted)": _COUNT + '''
    ffn = (E * mlp + D * E) if E else mlp
    rest = V * D * (1 if config.tie_word_embeddings else 2) + D
    total = rest + n_L * (attn + ffn + 2 * D)
    return total, total
''',
        "keys and values sized with query heads (no GQA)": '''def count_params(config):
    V, D, I, n_L = config.vocab_size, config.hidden_size, config.intermediate_size, config.num_hidden_layers
    H = config.num_attention_heads
    d = getattr(config, "head_dim", None) or D // H
    attn = 4 * D * H * d + (3 * H * d if config.model_type == "qwen2" else 0)
    mlp = 3 * D * I
    E = getattr(config, "num_local_experts", None)
    ffn, ffn_act = ((E * mlp + D * E), (config.num_experts_per_tok * mlp + D * E)) if E else (mlp, mlp)
    rest = V * D * (1 if config.tie_word_embeddings else 2) + D
    return rest + n_L * (attn + ffn + 2 * D), rest + n_L * (attn + ffn_act + 2 * D)
''',
    },
    "kv_bytes_per_token": {
        "counts the cache with query heads": '''def kv_bytes_per_token(config, bytes_per_value=2):
    d = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * config.num_attention_heads * d * bytes_per_value
''',
        "keys only (forgets the values)": '''def kv_bytes_per_token(config, bytes_per_value=2):
    d = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers * config.num_key_value_heads * d * bytes_per_value
''',
        "ignores head_dim (always D / H)": '''def kv_bytes_per_token(config, bytes_per_value=2):
    d = config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * config.num_key_value_heads * d * bytes_per_value
''',
    },
    "q1_choice": {"A (8 x 7B)": 'q1_choice = "A"\n', "C (the reading's 39B)": 'q1_choice = "C"\n'},
    "q2_kv_shrink_factor": {"64 (query heads)": "q2_kv_shrink_factor = 64\n", "4 (Llama-3-8B's ratio)": "q2_kv_shrink_factor = 4\n"},
    "q3_choice": {"A (learned absolute)": 'q3_choice = "A"\n', "D (ALiBi)": 'q3_choice = "D"\n'},
}
