"""Plausible wrong answers for 03_rwkv. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it: a dict with
"visible": the keyword its visible test's message must contain (a typical mistake, named before
grading), or "hidden": what the hidden tests' message must contain (a subtle mistake that passes
the visible tests). See tests/nbtools.py:wrong_answers.
"""

_SHIFT_HEAD = '''def token_shift(x):
    check_shape(x, ("B", "T", "C"), "x")
'''

_REC_HEAD = '''def wkv_recurrent(w, u, k, v, state=None, return_state=False):
    check_wkv_inputs(w, u, k, v, state)
    B, T, C = k.shape
    if state is None:
        state = empty_wkv_state(B, C, device=k.device)
    num, den, mx = state
    out = torch.empty(B, T, C)
'''

_REC_TAIL = '''
    return (out, (num, den, mx)) if return_state else out
'''


def _rec(body, decay="-torch.exp(w)"):
    return _REC_HEAD + f"    decay = {decay}\n" + body + _REC_TAIL


_REC_GOOD_OUT = '''        q = torch.maximum(mx, u + kt)
        e1, e2 = torch.exp(mx - q), torch.exp(u + kt - q)
        out[:, t] = (e1 * num + e2 * vt) / (e1 * den + e2)
'''

_REC_GOOD_UPDATE = '''        q = torch.maximum(mx + decay, kt)
        e1, e2 = torch.exp(mx + decay - q), torch.exp(kt - q)
        num, den, mx = e1 * num + e2 * vt, e1 * den + e2, q
'''

_LOOP = '''    for t in range(T):
        kt, vt = k[:, t], v[:, t]
'''

_PAR_HEAD = '''def wkv_parallel(w, u, k, v):
    check_wkv_inputs(w, u, k, v)
    B, T, C = k.shape
    t = torch.arange(T)
    lag = (t[:, None] - 1 - t[None, :]).float()
    past = t[None, :] < t[:, None]
    same = t[None, :] == t[:, None]
'''

_PAR_DIAG = '''    s = torch.where(same, (u[None, :] + k).transpose(1, 2)[:, :, :, None].expand_as(s), s)
'''
_PAR_MASK_SOFTMAX = '''    s = s.masked_fill(t[None, :] > t[:, None], float("-inf"))
    return torch.einsum("bcti, bic -> btc", torch.softmax(s, -1), v)
'''

_TM_HEAD = '''class TimeMix(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        C = self.d_model = d_model
        self.time_decay = nn.Parameter(torch.linspace(1.0, -6.0, C))
        self.time_first = nn.Parameter(torch.full((C,), math.log(0.5)))
        self.time_mix_key = nn.Parameter(torch.full((1, 1, C), 0.7))
        self.time_mix_value = nn.Parameter(torch.full((1, 1, C), 0.6))
        self.time_mix_receptance = nn.Parameter(torch.full((1, 1, C), 0.5))
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.receptance = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
'''

_TM_STEP = '''
    def step(self, x_t, state=None):
        check_shape(x_t, ("B", 1, self.d_model), "x_t")
        B, _, C = x_t.shape
        if state is None:
            state = (torch.zeros(B, C), *empty_wkv_state(B, C))
        r, k, v = self._rkv(x_t, {step_prev})
        wkv, s = wkv_recurrent(self.time_decay, self.time_first, k, v, state=tuple(state[1:]), return_state=True)
        return {out}, (x_t[:, 0], *s)
'''

_TM_BODY = '''
    def forward(self, x):
        check_shape(x, ("B", "T", self.d_model), "x")
        r, k, v = self._rkv(x, {prev})
        wkv = wkv_parallel(self.time_decay, self.time_first, k, v)
        return {out}
''' + _TM_STEP + '''
    def _rkv(self, x, x_prev):
        mix = lambda mu: {mix}
        k = self.key(mix(self.time_mix_key))
        v = self.value(mix(self.time_mix_value))
        r = {r}
        return r, k, v
'''

_GOOD_MIX = "x * mu + x_prev * (1 - mu)"
_GOOD_R = "torch.sigmoid(self.receptance(mix(self.time_mix_receptance)))"


def _tm(prev="token_shift(x)", step_prev="state[0][:, None, :]", mix=_GOOD_MIX, r=_GOOD_R,
        out="self.output(r * wkv)"):
    return _TM_HEAD + _TM_BODY.format(prev=prev, step_prev=step_prev, mix=mix, r=r, out=out)


_TM_SHORTCUT = _TM_HEAD + '''
    def forward(self, x):
        from transformers import RwkvConfig
        from transformers.models.rwkv.modeling_rwkv import RwkvSelfAttention
        C = self.d_model
        cfg = RwkvConfig(hidden_size=C, attention_hidden_size=C, intermediate_size=4 * C, num_hidden_layers=1,
                         rescale_every=0, context_length=64)
        ref = RwkvSelfAttention(cfg, layer_id=0)
        ref.load_state_dict(self.state_dict())
        return ref(x)[0]
''' + _TM_STEP.format(step_prev="state[0][:, None, :]", out="self.output(r * wkv)") + '''
    def _rkv(self, x, x_prev):
        mix = lambda mu: x * mu + x_prev * (1 - mu)
        k = self.key(mix(self.time_mix_key))
        v = self.value(mix(self.time_mix_value))
        r = torch.sigmoid(self.receptance(mix(self.time_mix_receptance)))
        return r, k, v
'''

_CM_HEAD = '''class ChannelMix(nn.Module):
    def __init__(self, d_model, hidden):
        super().__init__()
        C = self.d_model = d_model
        self.time_mix_key = nn.Parameter(torch.full((1, 1, C), 0.7))
        self.time_mix_receptance = nn.Parameter(torch.full((1, 1, C), 0.6))
        self.key = nn.Linear(C, hidden, bias=False)
        self.receptance = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(hidden, C, bias=False)
'''

_CM_BODY = '''
    def forward(self, x):
        check_shape(x, ("B", "T", self.d_model), "x")
        return self._mix(x, {prev})

    def step(self, x_t, state=None):
        check_shape(x_t, ("B", 1, self.d_model), "x_t")
        x_prev = torch.zeros_like(x_t[:, 0]) if {step_state} is None else state
        return self._mix(x_t, x_prev[:, None, :]), x_t[:, 0]

    def _mix(self, x, x_prev):
        xk = {xk}
        xr = {xr}
        k = {act}
        return {gate} * self.value(k)
'''

_GOOD_XK = "x * self.time_mix_key + x_prev * (1 - self.time_mix_key)"
_GOOD_XR = "x * self.time_mix_receptance + x_prev * (1 - self.time_mix_receptance)"


def _cm(prev="token_shift(x)", step_state="state", xk=_GOOD_XK, xr=_GOOD_XR, act="torch.relu(self.key(xk)) ** 2",
        gate="torch.sigmoid(self.receptance(xr))"):
    return _CM_HEAD + _CM_BODY.format(prev=prev, step_state=step_state, xk=xk, xr=xr, act=act, gate=gate)


_CM_SHORTCUT = _CM_HEAD + '''
    def forward(self, x):
        from transformers import RwkvConfig
        from transformers.models.rwkv.modeling_rwkv import RwkvFeedForward
        cfg = RwkvConfig(hidden_size=self.d_model, attention_hidden_size=self.d_model,
                         intermediate_size=self.key.out_features, num_hidden_layers=1, rescale_every=0)
        ref = RwkvFeedForward(cfg, layer_id=0)
        ref.load_state_dict(self.state_dict())
        return ref(x)[0]

    def step(self, x_t, state=None):
        x_prev = torch.zeros_like(x_t[:, 0]) if state is None else state
        xk = x_t * self.time_mix_key + x_prev[:, None] * (1 - self.time_mix_key)
        xr = x_t * self.time_mix_receptance + x_prev[:, None] * (1 - self.time_mix_receptance)
        return torch.sigmoid(self.receptance(xr)) * self.value(torch.relu(self.key(xk)) ** 2), x_t[:, 0]
'''

WRONG = {
    "token_shift": {
        "shifted the wrong way (reads the next token)": {"visible": "shifted the wrong way", "code": _SHIFT_HEAD + '''
    return torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)
'''},
        "rolls instead of padding (last token wraps to the front)": {"visible": "rolled", "code": _SHIFT_HEAD + '''
    return torch.roll(x, shifts=1, dims=1)
'''},
        "shifts along the channels": {"visible": "along the channels", "code": _SHIFT_HEAD + '''
    return torch.cat([torch.zeros_like(x[..., :1]), x[..., :-1]], dim=-1)
'''},
        "shifts the input in place": {"hidden": "must not modify its input", "code": _SHIFT_HEAD + '''
    x[:, 1:] = x[:, :-1].clone()
    x[:, 0] = 0
    return x
'''},
    },
    "wkv_recurrent": {
        "decay sign flipped: exp(+exp(w))": {"visible": "the minus sign is missing",
                                             "code": _rec(_LOOP + _REC_GOOD_OUT + _REC_GOOD_UPDATE, decay="torch.exp(w)")},
        "decay exp(w) instead of exp(-exp(w))": {"visible": "decay written e^w",
                                                 "code": _rec(_LOOP + _REC_GOOD_OUT + _REC_GOOD_UPDATE, decay="w")},
        "u bonus applied to past tokens too": {"visible": "bonus u missing", "code": _rec(_LOOP + _REC_GOOD_OUT + '''        q = torch.maximum(mx + decay, u + kt)
        e1, e2 = torch.exp(mx + decay - q), torch.exp(u + kt - q)
        num, den, mx = e1 * num + e2 * vt, e1 * den + e2, q
''')},
        "no bonus u at all": {"visible": "bonus u missing", "code": _rec(_LOOP + '''        q = torch.maximum(mx, kt)
        e1, e2 = torch.exp(mx - q), torch.exp(kt - q)
        out[:, t] = (e1 * num + e2 * vt) / (e1 * den + e2)
''' + _REC_GOOD_UPDATE)},
        "no max-subtraction (plain exp overflows)": {"visible": "no running maximum", "code": _REC_HEAD + '''    a = num * torch.exp(mx)      # the real sums, without the running max
    b = den * torch.exp(mx)
    for t in range(T):
        kt, vt = k[:, t], v[:, t]
        out[:, t] = (a + torch.exp(u + kt) * vt) / (b + torch.exp(u + kt))
        a = torch.exp(-torch.exp(w)) * a + torch.exp(kt) * vt
        b = torch.exp(-torch.exp(w)) * b + torch.exp(kt)
    num, den, mx = a, b, torch.zeros(B, C)
''' + _REC_TAIL},
        "decay also applied to the previous token (one step too many)": {"visible": "decay one step too early",
                                                                         "code": _rec(_LOOP + '''        q = torch.maximum(mx + decay, u + kt)
        e1, e2 = torch.exp(mx + decay - q), torch.exp(u + kt - q)
        out[:, t] = (e1 * num + e2 * vt) / (e1 * den + e2)
''' + _REC_GOOD_UPDATE)},
        "update before output (current token counted twice)": {"visible": "state updated before the output",
                                                               "code": _rec(_LOOP + _REC_GOOD_UPDATE + _REC_GOOD_OUT)},
        "no decay at all": {"visible": "decay missing",
                            "code": _rec(_LOOP + _REC_GOOD_OUT + _REC_GOOD_UPDATE, decay="torch.zeros_like(w)")},
        "output: stored sums not rescaled to the new maximum": {"visible": "not rescaled in the output",
                                                                "code": _rec(_LOOP + '''        q = torch.maximum(mx, u + kt)
        e2 = torch.exp(u + kt - q)
        out[:, t] = (num + e2 * vt) / (den + e2)
''' + _REC_GOOD_UPDATE)},
        "update: old sums decayed but not rescaled when p moves": {"visible": "not rescaled in the update",
                                                                   "code": _rec(_LOOP + _REC_GOOD_OUT + '''        q = torch.maximum(mx + decay, kt)
        e2 = torch.exp(kt - q)
        num, den, mx = torch.exp(decay) * num + e2 * vt, torch.exp(decay) * den + e2, q
''')},
        "update: old sums added as they are": {"visible": "added as they are", "code": _rec(_LOOP + _REC_GOOD_OUT + '''        q = torch.maximum(mx + decay, kt)
        e2 = torch.exp(kt - q)
        num, den, mx = num + e2 * vt, den + e2, q
''')},
        "update: the maximum taken without the decay": {"visible": "without the decay", "code": _rec(_LOOP + _REC_GOOD_OUT + '''        q = torch.maximum(mx, kt)
        e1, e2 = torch.exp(mx + decay - q), torch.exp(kt - q)
        num, den, mx = e1 * num + e2 * vt, e1 * den + e2, q
''')},
        "the given state ignored": {"visible": "state ignored", "code": _REC_HEAD.replace(
            "    if state is None:\n        state = empty_wkv_state(B, C, device=k.device)\n",
            "    state = empty_wkv_state(B, C, device=k.device)\n") + "    decay = -torch.exp(w)\n"
            + _LOOP + _REC_GOOD_OUT + _REC_GOOD_UPDATE + _REC_TAIL},
        "float32 result for float64 inputs": {"hidden": "float64",
                                              "code": _rec(_LOOP + _REC_GOOD_OUT + _REC_GOOD_UPDATE)},
    },
    "wkv_parallel": {
        "future tokens not masked": {"visible": "future tokens not masked", "code": _PAR_HEAD + '''
    s = -lag[None] * torch.exp(w)[:, None, None] + k.transpose(1, 2)[:, :, None, :]
''' + _PAR_DIAG + '''    return torch.einsum("bcti, bic -> btc", torch.softmax(s, -1), v)
'''},
        "u bonus applied to past tokens too": {"visible": "bonus u missing", "code": _PAR_HEAD + '''
    s = -lag[None] * torch.exp(w)[:, None, None] + k.transpose(1, 2)[:, :, None, :] + u[:, None, None]
''' + _PAR_DIAG + _PAR_MASK_SOFTMAX},
        "diagonal given the decay formula (lag -1) instead of the bonus": {"visible": "the diagonal took the decay formula", "code": _PAR_HEAD + '''
    s = -lag[None] * torch.exp(w)[:, None, None] + k.transpose(1, 2)[:, :, None, :]
''' + _PAR_MASK_SOFTMAX},
        "no max-subtraction (exp overflows on large keys)": {"visible": "overflow", "code": _PAR_HEAD + '''
    s = -lag[None] * torch.exp(w)[:, None, None] + k.transpose(1, 2)[:, :, None, :]
''' + _PAR_DIAG + '''    e = torch.exp(s.masked_fill(~(past | same), float("-inf")))
    return torch.einsum("bcti, bic -> btc", e, v) / e.sum(-1).transpose(1, 2)
'''},
        "decay sign flipped: exp(+exp(w))": {"visible": "decay e^{+e^w}", "code": _PAR_HEAD + '''
    s = lag[None] * torch.exp(w)[:, None, None] + k.transpose(1, 2)[:, :, None, :]
''' + _PAR_DIAG + _PAR_MASK_SOFTMAX},
        "lag t - i (decay one step too early)": {"visible": "decay one step too early", "code": _PAR_HEAD + '''
    s = -(lag[None] + 1) * torch.exp(w)[:, None, None] + k.transpose(1, 2)[:, :, None, :]
''' + _PAR_DIAG + _PAR_MASK_SOFTMAX},
        "a loop over T calling wkv_recurrent": {"hidden": "a loop over T", "code": '''def wkv_parallel(w, u, k, v):
    check_wkv_inputs(w, u, k, v)
    return torch.cat([wkv_recurrent(w, u, k[:, :t + 1], v[:, :t + 1])[:, -1:] for t in range(k.shape[1])], 1)
'''},
        "calls Hugging Face's wkv": {"hidden": "must be your own code", "code": '''def wkv_parallel(w, u, k, v):
    check_wkv_inputs(w, u, k, v)
    from transformers.models.rwkv.modeling_rwkv import rwkv_linear_attention_cpu
    return rwkv_linear_attention_cpu(w, u, k, v)[0]
'''},
    },
    "TimeMix": {
        "no token shift (mixes x with itself)": {"visible": "no token shift", "code": _tm(prev="x", step_prev="x_t")},
        "mixing interpolation reversed": {"visible": "mixing weights reversed", "code": _tm(mix="x * (1 - mu) + x_prev * mu")},
        "no sigmoid on the receptance": {"visible": "no sigmoid", "code": _tm(r="self.receptance(mix(self.time_mix_receptance))")},
        "step ignores the stored previous token": {"visible": "step forgets the previous token",
                                                   "code": _tm(step_prev="torch.zeros_like(x_t)")},
        "receptance gate after the output projection": {"hidden": "vs RwkvSelfAttention",
                                                        "code": _tm(out="self.output(wkv) * r")},
        "wraps Hugging Face's RwkvSelfAttention": {"hidden": "must be your own code", "code": _TM_SHORTCUT},
    },
    "ChannelMix": {
        "no token shift": {"visible": "no token shift", "code": _cm(prev="x")},
        "ReLU not squared": {"visible": "ReLU not squared", "code": _cm(act="torch.relu(self.key(xk))")},
        "no receptance gate": {"visible": "no receptance gate", "code": _cm(gate="1.0")},
        "mixing interpolation reversed": {"visible": "mixing weights reversed", "code": _cm(
            xk="x * (1 - self.time_mix_key) + x_prev * self.time_mix_key",
            xr="x * (1 - self.time_mix_receptance) + x_prev * self.time_mix_receptance")},
        "step ignores the state": {"visible": "step forgets the previous token", "code": _cm(step_state="None")},
        "receptance mixed with the key's weights": {"hidden": "vs RwkvFeedForward", "code": _cm(xr=_GOOD_XK)},
        "wraps Hugging Face's RwkvFeedForward": {"hidden": "must be your own code", "code": _CM_SHORTCUT},
    },
    "q1_choice": {"lower case": {"visible": "write 'A'", "code": 'q1_choice = "a"\n'},
                  "trains through a T x T matrix (C)": {"hidden": "not the right letter", "code": 'q1_choice = "C"\n'},
                  "8-bit KV cache (B)": {"hidden": "not the right letter", "code": 'q1_choice = "B"\n'}},
    "q2_numbers": {
        "floats": {"visible": "must be an int",
                   "code": "q2_crossover_tokens = 3.0\nq2_gpt2_sequences_in_16gib = 2**34 / (2 * 12 * 768 * 1024 * 4)\n"
                           "q2_rwkv_sequences_in_16gib = 2**34 / (5 * 768 * 12 * 4)\n"},
        "keys only in the cache": {"hidden": "q2_crossover_tokens",
                                   "code": "q2_crossover_tokens = 6\nq2_gpt2_sequences_in_16gib = 455\n"
                                           "q2_rwkv_sequences_in_16gib = 93206\n"},
        "rounded up": {"hidden": "q2_gpt2_sequences_in_16gib",
                       "code": "q2_crossover_tokens = 3\nq2_gpt2_sequences_in_16gib = 228\nq2_rwkv_sequences_in_16gib = 93207\n"},
        "state without the running max": {"hidden": "q2_rwkv_sequences_in_16gib",
                                          "code": "q2_crossover_tokens = 3\nq2_gpt2_sequences_in_16gib = 227\n"
                                                  "q2_rwkv_sequences_in_16gib = 116508\n"},
    },
    "q3_choice": {"lower case": {"visible": "write 'W'", "code": 'q3_choice = "w"\n'},
                  "R": {"hidden": "not the right letter", "code": 'q3_choice = "R"\n'},
                  "K": {"hidden": "not the right letter", "code": 'q3_choice = "K"\n'}},
}
