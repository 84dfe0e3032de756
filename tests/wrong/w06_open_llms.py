"""Plausible wrong answers for 06_open_llms. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it: a dict with
"visible": the keyword its visible test's message must contain (a typical mistake, named before
grading), or "hidden": what the hidden tests' message must contain (a subtle mistake that passes
the visible tests); a plain string only has to fail somewhere. See tests/nbtools.py:wrong_answers.
The first "visible" and the first "hidden" entry of each exercise are what
tests/grading/test_autograde.py submits as students wrong1 and wrong2.
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
    d = {d}
    lin = lambda h, n: F.linear(h, p[f"self_attn.{{n}}.weight"], p.get(f"self_attn.{{n}}.bias"))
    h = {norm_in}
    q = lin(h, "q_proj").view(B, L, n_heads, d).transpose(1, 2)
    k = lin(h, "k_proj").view(B, L, n_kv_heads, d).transpose(1, 2)
    v = lin(h, "v_proj").view(B, L, n_kv_heads, d).transpose(1, 2)
    pos = torch.arange(L)
    q, k = {rope}
    k, v = repeat_kv(k, n_heads // n_kv_heads), repeat_kv(v, n_heads // n_kv_heads)
    {attention}
    a = a.transpose(1, 2).reshape(B, L, n_heads * d)
    x = {resid1}
    h = {norm_post}
    return {out}
'''
_MLP_CALL = 'swiglu_mlp(h, p["mlp.gate_proj.weight"], p["mlp.up_proj.weight"], p["mlp.down_proj.weight"])'
_GOOD = dict(d='p["self_attn.q_proj.weight"].shape[0] // n_heads',
             norm_in='rms_norm(x, p["input_layernorm.weight"], eps)',
             rope="apply_rope(q, pos, base), apply_rope(k, pos, base)",
             attention="s = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), "
                       "float('-inf')); a = torch.softmax(s, -1) @ v",
             resid1='x + lin(a, "o_proj")', norm_post='rms_norm(x, p["post_attention_layernorm.weight"], eps)',
             out="x + " + _MLP_CALL)


def _layer(**change):
    return _LAYER.format(**{**_GOOD, **change})


WRONG = {
    "rms_norm": {
        "eps added outside the square root": {"visible": "eps added outside", "code": _RMS + '''
    x32 = x.float()
    return weight * (x32 / (x32.pow(2).mean(-1, keepdim=True).sqrt() + eps)).to(x.dtype)
'''},
        "squares in the input's dtype (no float32)": {"hidden": "normalise in float32", "code": _RMS + '''
    return weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
'''},
        "mean over the wrong axis": {"visible": "mean over the wrong axis", "code": _RMS + '''
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(0, keepdim=True) + eps)).to(x.dtype)
'''},
        "subtracts the mean (LayerNorm without shift)": {"visible": "mean subtracted", "code": _RMS + '''
    xc = x - x.mean(-1, keepdim=True)
    return weight * xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + eps)
'''},
        "divides by the L2 norm, not the root mean square": {"visible": "L2 norm", "code": _RMS + '''
    return weight * x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps)
'''},
        "forgets the weight": {"visible": "weight forgotten", "code": _RMS + '''
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
'''},
        "calls torch's rms_norm": {"hidden": "must be your own code", "code": _RMS + '''
    return weight * F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)
'''},
    },
    "apply_rope": {
        "interleaved pairs (2i, 2i+1) instead of rotate_half": {"visible": "interleaved pairs", "code": _ROPE + '''
    cos, sin = ang.cos(), ang.sin()
    x_even, x_odd = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x_even * cos - x_odd * sin, x_even * sin + x_odd * cos], dim=-1)
    return out.flatten(-2)
'''},
        "(B, L) positions: the first sequence's positions for the whole batch": {
            "hidden": "each sequence its own", "code": '''def apply_rope(x, positions, base=10000.0):
    check_rope_inputs(x, positions)
    d = x.shape[-1]
    pos = positions if positions.dim() == 1 else positions[0]
    ang = pos.to(torch.float32)[:, None] * (1.0 / base ** (torch.arange(0, d, 2).float() / d))
    ang = torch.cat([ang, ang], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * ang.cos().to(x.dtype) + torch.cat([-x2, x1], -1) * ang.sin().to(x.dtype)
'''},
        "rotates the other way (halves swapped with the wrong sign)": {"visible": "wrong direction", "code": _ROPE + '''
    ang = torch.cat([ang, ang], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * ang.cos() + torch.cat([x2, -x1], -1) * ang.sin()
'''},
        "frequencies base^(-i/d) instead of base^(-2i/d)": {"visible": "theta exponent -i/d", "code": '''def apply_rope(x, positions, base=10000.0):
    check_rope_inputs(x, positions)
    d = x.shape[-1]
    ang = positions.to(torch.float32)[..., None] * (1.0 / base ** (torch.arange(d // 2).float() / d))
    if positions.dim() == 2:
        ang = ang[:, None]
    ang = torch.cat([ang, ang], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * ang.cos() + torch.cat([-x2, x1], -1) * ang.sin()
'''},
        "positions ignored (0 .. L-1)": {"visible": "positions ignored", "code": '''def apply_rope(x, positions, base=10000.0):
    check_rope_inputs(x, positions)
    d, L = x.shape[-1], x.shape[-2]
    ang = torch.arange(L, dtype=torch.float32)[:, None] * (1.0 / base ** (torch.arange(0, d, 2).float() / d))
    ang = torch.cat([ang, ang], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * ang.cos() + torch.cat([-x2, x1], -1) * ang.sin()
'''},
        "adds a sinusoidal position vector instead of rotating": _ROPE + '''
    ang = torch.cat([ang, ang], -1)
    return x + torch.cat([ang[..., : d // 2].sin(), ang[..., d // 2:].cos()], -1)
''',
        "calls transformers' rotary embedding": {"hidden": "must be your own code", "code": '''def apply_rope(x, positions, base=10000.0):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
    check_rope_inputs(x, positions)
    B, H, L, d = x.shape
    cfg = LlamaConfig(hidden_size=H * d, num_attention_heads=H, head_dim=d,
                      rope_parameters=dict(rope_type="default", rope_theta=base))
    cos, sin = LlamaRotaryEmbedding(cfg)(x, positions.expand(B, L))
    return apply_rotary_pos_emb(x, x, cos, sin)[0]
'''},
    },
    "repeat_kv": {
        "tiles the heads (repeat) instead of repeating each in place": {"visible": "heads tiled", "code": _RKV + '''
    return k.repeat(1, n_rep, 1, 1)
'''},
        "calls transformers' repeat_kv": {"hidden": "must be your own code", "code": _RKV + '''
    from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv
    return hf_repeat_kv(k, n_rep)
'''},
        "repeats along the sequence axis": {"visible": "repeated along the sequence axis", "code": _RKV + '''
    return torch.repeat_interleave(k, n_rep, dim=2)
'''},
        "expand before the head axis, then reshape (tiled order)": {"visible": "heads tiled", "code": _RKV + '''
    return k[:, None].expand(B, n_rep, H_kv, L, d).reshape(B, H_kv * n_rep, L, d)
'''},
    },
    "swiglu_mlp": {
        "SiLU on the up projection instead of the gate": {"visible": "gate and up swapped", "code": _MLP + '''
    return (x @ w_gate.T * F.silu(x @ w_up.T)) @ w_down.T
'''},
        "runs transformers' LlamaMLP with the weights": {"hidden": "must be your own code", "code": _MLP + '''
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP
    mlp = LlamaMLP(LlamaConfig(hidden_size=w_gate.shape[1], intermediate_size=w_gate.shape[0], num_attention_heads=1))
    with torch.no_grad():
        mlp.gate_proj.weight.copy_(w_gate)
        mlp.up_proj.weight.copy_(w_up)
        mlp.down_proj.weight.copy_(w_down)
    return mlp(x)
'''},
        "GELU instead of SiLU": {"visible": "GELU instead of SiLU", "code": _MLP + '''
    return (F.gelu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T
'''},
        "sigmoid gate (GLU) instead of SiLU": {"visible": "sigmoid instead of SiLU", "code": _MLP + '''
    return (torch.sigmoid(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T
'''},
        "no down projection": {"visible": "no down projection", "code": _MLP + '''
    return F.silu(x @ w_gate.T) * (x @ w_up.T)
'''},
    },
    "decoder_layer": {
        # first: a mistake the visible tests name even when the parts (rms_norm, ...) are wrong too (student wrong1)
        "no causal mask": {"visible": "causal", "code": _layer(attention="a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), -1) @ v")},
        "no residual connections": {"visible": "no residual connections",
                                    "code": _layer(resid1='lin(a, "o_proj")', out=_MLP_CALL)},
        "scores scaled by sqrt(D) instead of sqrt(d)": {"hidden": "decoder_layer vs",
                                                        "code": _layer(attention=_GOOD["attention"].replace("math.sqrt(d)", "math.sqrt(D)"))},
        "post-norm: normalises after each residual": {"visible": "post-norm", "code": _layer(
            norm_in="x", resid1='rms_norm(x + lin(a, "o_proj"), p["input_layernorm.weight"], eps)', norm_post="x",
            out='rms_norm(x + ' + _MLP_CALL + ', p["post_attention_layernorm.weight"], eps)')},
        "head width always D / H": {"visible": "head width may differ", "code": _layer(d="D // n_heads")},
        "norms swapped": {"visible": "norms swapped", "code": _layer(
            norm_in='rms_norm(x, p["post_attention_layernorm.weight"], eps)',
            norm_post='rms_norm(x, p["input_layernorm.weight"], eps)')},
        "no second residual": {"visible": "no second residual", "code": _layer(out=_MLP_CALL)},
        "no RoPE": {"visible": "RoPE not applied to q and k", "code": _layer(rope="q, k")},
        "RoPE on the queries only": {"visible": "RoPE not applied to q and k",
                                     "code": _layer(rope="apply_rope(q, pos, base), k")},
        "RoPE applied to v as well": {"visible": "RoPE applied to v", "code": _layer(
            rope="apply_rope(q, pos, base), apply_rope(k, pos, base); v = apply_rope(v, pos, base)")},
        "RoPE on the keys only": {"hidden": "decoder_layer vs", "code": _layer(rope="q, apply_rope(k, pos, base)")},
        "torch's fused attention": {"hidden": "must compute attention itself", "code": _layer(
            attention="a = F.scaled_dot_product_attention(q, k, v, is_causal=True)")},
    },
    "q1_choice": {
        "lower case": {"visible": "write 'A'", "code": 'q1_choice = "a"\n'},
        "B (attention copied per expert)": {"hidden": "not the right letter", "code": 'q1_choice = "B"\n'},
        "D (each expert keeps keys and values)": {"hidden": "not the right letter", "code": 'q1_choice = "D"\n'},
    },
    "q2_kv_shrink_factor": {
        "a float": {"visible": "must be an int", "code": "q2_kv_shrink_factor = 8.0\n"},
        "64 (query heads)": {"hidden": "not Llama-3-70B's factor", "code": "q2_kv_shrink_factor = 64\n"},
        "4 (Llama-3-8B's ratio)": {"hidden": "not Llama-3-70B's factor", "code": "q2_kv_shrink_factor = 4\n"},
    },
    "q3_choice": {
        "with a full stop": {"visible": "write 'B'", "code": 'q3_choice = "B."\n'},
        "A (learned absolute)": {"hidden": "not the right letter", "code": 'q3_choice = "A"\n'},
        "D (ALiBi)": {"hidden": "not the right letter", "code": 'q3_choice = "D"\n'},
    },
}
