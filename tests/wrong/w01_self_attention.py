"""Plausible wrong answers for 01_self_attention. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it: a dict with
"visible": the keyword its visible test's message must contain (a typical mistake, named before
grading), or "hidden": what the hidden tests' message must contain (a subtle mistake that passes
the visible tests). See tests/nbtools.py:wrong_answers.
"""

_SDPA_HEAD = '''def scaled_dot_product_attention(Q, K, V, mask=None):
    check_attention_inputs(Q, K, V, mask)
'''

_MHA_HEAD = '''class MultiHeadSelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _merge(self, y):
        B, H, L, d = y.shape
        return y.transpose(1, 2).reshape(B, L, H * d)
'''

_MHA_GOOD_HEADS = '''
    def _heads(self, x):
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        f = lambda t: t.view(B, L, self.n_heads, self.d_head).transpose(1, 2)
        return f(q), f(k), f(v)
'''

_MHA_GOOD_FORWARD = '''
    def forward(self, x, causal=True):
        q, k, v = self._heads(x)
        mask = causal_mask(x.shape[1]) if causal else None
        return self.out(self._merge(scaled_dot_product_attention(q, k, v, mask)[0]))
'''

_MHA_GOOD_STEP = '''
    def step(self, x_t, cache=None):
        q, k, v = self._heads(x_t)
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        return self.out(self._merge(scaled_dot_product_attention(q, k, v)[0])), (k, v)
'''

# MultiHeadSelfAttention calls the student's own attention and mask; with those wrong (as in a
# submission that gets every exercise's first mistake) its visible test says to fix them first.
BUILT_ON = {"MultiHeadSelfAttention": (("scaled_dot_product_attention", "causal_mask"), "fix them first")}

WRONG = {
    "scaled_dot_product_attention": {
        "softmax over the query axis": {"visible": "softmax over the queries", "code": _SDPA_HEAD + '''
    w = torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1]), dim=-2)
    if mask is not None:
        w = w.masked_fill(~mask, 0.0)
    return w @ V, w
'''},
        "no 1/sqrt(d) scale": {"visible": "no scaling", "code": _SDPA_HEAD + '''
    s = Q @ K.transpose(-2, -1)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = torch.softmax(s, dim=-1)
    return w @ V, w
'''},
        "mask inverted (True = blocked)": {"visible": "mask inverted", "code": _SDPA_HEAD + '''
    s = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        s = s.masked_fill(mask, -1e9)
    w = torch.softmax(s, dim=-1)
    return w @ V, w
'''},
        "masked after the softmax": {"visible": "masked after the softmax", "code": _SDPA_HEAD + '''
    w = torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1]), dim=-1)
    if mask is not None:
        w = w.masked_fill(~mask, 0.0)
    return w @ V, w
'''},
        "scaled by sqrt(dv), the width of V": {"visible": "sqrt(dv), the width of V", "code": _SDPA_HEAD + '''
    s = Q @ K.transpose(-2, -1) / math.sqrt(V.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = torch.softmax(s, dim=-1)
    return w @ V, w
'''},
        "calls torch's fused attention": {"hidden": "must compute attention itself", "code": _SDPA_HEAD + '''
    import torch.nn.functional as F
    s = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return F.scaled_dot_product_attention(Q, K, V, attn_mask=mask), torch.softmax(s, -1)
'''},
    },
    "causal_mask": {
        "upper triangle (sees the future)": {"visible": "upper triangle", "code": '''def causal_mask(L, device=None):
    return torch.ones(L, L, dtype=torch.bool, device=device).triu()
'''},
        "diagonal excluded (off by one)": {"visible": "diagonal excluded", "code": '''def causal_mask(L, device=None):
    return torch.ones(L, L, dtype=torch.bool, device=device).tril(-1)
'''},
        "float 0/1 mask instead of bool": {"visible": "bool", "code": '''def causal_mask(L, device=None):
    return torch.ones(L, L, device=device).tril()
'''},
        "device argument ignored": {"hidden": "create the tensor on `device`", "code": '''def causal_mask(L, device=None):
    return torch.ones(L, L, dtype=torch.bool).tril()
'''},
    },
    "MultiHeadSelfAttention": {
        "heads split without the transpose": {"visible": "heads split without the transpose", "code": _MHA_HEAD + '''
    def _heads(self, x):
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        f = lambda t: t.reshape(B, self.n_heads, L, self.d_head)
        return f(q), f(k), f(v)
''' + _MHA_GOOD_FORWARD + _MHA_GOOD_STEP},
        "step ignores the cache": {"visible": "append the new token to the cache", "code": _MHA_HEAD + _MHA_GOOD_HEADS + _MHA_GOOD_FORWARD + '''
    def step(self, x_t, cache=None):
        q, k, v = self._heads(x_t)
        return self.out(self._merge(scaled_dot_product_attention(q, k, v)[0])), (k, v)
'''},
        "causal flag ignored (never masks)": {"visible": "causal ignored", "code": _MHA_HEAD + _MHA_GOOD_HEADS + '''
    def forward(self, x, causal=True):
        q, k, v = self._heads(x)
        return self.out(self._merge(scaled_dot_product_attention(q, k, v)[0]))
''' + _MHA_GOOD_STEP},
        "causal=False ignored (always masks)": {"hidden": "causal=False", "code": _MHA_HEAD + _MHA_GOOD_HEADS + '''
    def forward(self, x, causal=True):
        q, k, v = self._heads(x)
        return self.out(self._merge(scaled_dot_product_attention(q, k, v, causal_mask(x.shape[1]))[0]))
''' + _MHA_GOOD_STEP},
    },
    "fit_scaling_exponent": {
        "axes swapped": {"visible": "axes swapped", "code": '''import numpy as np
def fit_scaling_exponent(lengths, costs):
    return float(np.polyfit(np.log(np.asarray(costs, float)), np.log(np.asarray(lengths, float)), 1)[0])
'''},
        "slope without logs": {"visible": "no logarithms", "code": '''import numpy as np
def fit_scaling_exponent(lengths, costs):
    return float(np.polyfit(np.asarray(lengths, float), np.asarray(costs, float), 1)[0])
'''},
        "a 0-d tensor": {"visible": "python float", "code": '''def fit_scaling_exponent(lengths, costs):
    x = torch.log(torch.as_tensor(lengths, dtype=torch.float64))
    y = torch.log(torch.as_tensor(costs, dtype=torch.float64))
    return ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
'''},
        "archlab's fit": {"hidden": "must be your own code", "code": '''from archlab import fits
def fit_scaling_exponent(lengths, costs):
    return fits.fit_power_law(lengths, costs).exponent
'''},
        "endpoints only": {"hidden": "least-squares slope through all", "code": '''def fit_scaling_exponent(lengths, costs):
    return float((math.log(costs[-1]) - math.log(costs[0])) / (math.log(lengths[-1]) - math.log(lengths[0])))
'''},
    },
    "kv_cache_bytes": {
        "keys only (no factor 2)": {"visible": "keys only", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    return int(n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_value)
'''},
        "batch ignored": {"visible": "batch ignored", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    return int(2 * n_layers * n_kv_heads * head_dim * seq_len * bytes_per_value)
'''},
        "a float in GiB": {"visible": "return an int", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    return 2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_value / 2**30
'''},
        "queries cached too (a factor 3)": {"visible": "queries cached too", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    return int(3 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_value)
'''},
        "layers ignored": {"visible": "layers ignored", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    return int(2 * n_kv_heads * head_dim * seq_len * batch * bytes_per_value)
'''},
        "bytes_per_value ignored (counts numbers)": {"visible": "bytes_per_value ignored", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    return int(2 * n_layers * n_kv_heads * head_dim * seq_len * batch)
'''},
        "float32's 4 bytes hard-coded": {"visible": "4 bytes a value", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    return int(2 * n_layers * n_kv_heads * head_dim * seq_len * batch * 4)
'''},
        "bits instead of bytes": {"visible": "bits, not bytes", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    return int(2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_value * 8)
'''},
        "float32 by default": {"hidden": "defaults must be", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=4, batch=1):
    return int(2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_value)
'''},
        "measures archlab's cache_bytes on a GPT-2 of that shape": {"hidden": "must be your own code", "code": '''def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, bytes_per_value=2, batch=1):
    from transformers import GPT2Config
    cfg = GPT2Config(n_layer=n_layers, n_head=n_kv_heads, n_embd=n_kv_heads * head_dim, n_positions=max(2, seq_len),
                     vocab_size=8)
    return models.cache_bytes(cfg, seq_len, batch=batch, dtype=torch.float16) // 2 * bytes_per_value
'''},
    },
    "q1_choice": {"lower case": {"visible": "write 'C'", "code": 'q1_choice = "c"\n'},
                  "training (A)": {"hidden": "not the right letter", "code": 'q1_choice = "A"\n'},
                  "feed-forward (B)": {"hidden": "not the right letter", "code": 'q1_choice = "B"\n'}},
    "q2_choice": {"with a full stop": {"visible": "write 'D'", "code": 'q2_choice = "D."\n'},
                  "masked self-attention (A)": {"hidden": "not the right letter", "code": 'q2_choice = "A"\n'}},
    "q3_exponents": {
        "floats": {"visible": "must be an int", "code": "q3_decode_step_exponent = 1.0\nq3_generate_cached_exponent = 2.0\nq3_generate_uncached_exponent = 3.0\n"},
        "decode step quadratic": {"hidden": "q3_decode_step_exponent", "code": "q3_decode_step_exponent = 2\nq3_generate_cached_exponent = 2\nq3_generate_uncached_exponent = 3\n"},
        "cached generation linear (one step's cost)": {"hidden": "q3_generate_cached_exponent", "code": "q3_decode_step_exponent = 1\nq3_generate_cached_exponent = 1\nq3_generate_uncached_exponent = 3\n"},
        "uncached generation as cheap as cached": {"hidden": "q3_generate_uncached_exponent", "code": "q3_decode_step_exponent = 1\nq3_generate_cached_exponent = 2\nq3_generate_uncached_exponent = 2\n"},
    },
}
