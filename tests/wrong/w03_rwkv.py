"""Plausible wrong answers for 03_rwkv. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it.
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

    def forward(self, x):
        check_shape(x, ("B", "T", self.d_model), "x")
        r, k, v = self._rkv(x, {prev})
        return self.output(r * wkv_parallel(self.time_decay, self.time_first, k, v))

    def step(self, x_t, state=None):
        check_shape(x_t, ("B", 1, self.d_model), "x_t")
        B, _, C = x_t.shape
        if state is None:
            state = (torch.zeros(B, C), *empty_wkv_state(B, C))
        r, k, v = self._rkv(x_t, {step_prev})
        wkv, s = wkv_recurrent(self.time_decay, self.time_first, k, v, state=tuple(state[1:]), return_state=True)
        return self.output(r * wkv), (x_t[:, 0], *s)

    def _rkv(self, x, x_prev):
        mix = lambda mu: {mix}
        k = self.key(mix(self.time_mix_key))
        v = self.value(mix(self.time_mix_value))
        r = torch.sigmoid(self.receptance(mix(self.time_mix_receptance)))
        return r, k, v
'''

_GOOD_MIX = "x * mu + x_prev * (1 - mu)"
_GOOD_PREV = "token_shift(x)"
_GOOD_STEP_PREV = "state[0][:, None, :]"

_CM_TEMPLATE = '''class ChannelMix(nn.Module):
    def __init__(self, d_model, hidden):
        super().__init__()
        C = self.d_model = d_model
        self.time_mix_key = nn.Parameter(torch.full((1, 1, C), 0.7))
        self.time_mix_receptance = nn.Parameter(torch.full((1, 1, C), 0.6))
        self.key = nn.Linear(C, hidden, bias=False)
        self.receptance = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(hidden, C, bias=False)

    def forward(self, x):
        check_shape(x, ("B", "T", self.d_model), "x")
        return self._mix(x, {prev})

    def step(self, x_t, state=None):
        check_shape(x_t, ("B", 1, self.d_model), "x_t")
        x_prev = torch.zeros_like(x_t[:, 0]) if state is None else state
        return self._mix(x_t, x_prev[:, None, :]), x_t[:, 0]

    def _mix(self, x, x_prev):
        xk = x * self.time_mix_key + x_prev * (1 - self.time_mix_key)
        xr = x * self.time_mix_receptance + x_prev * (1 - self.time_mix_receptance)
        k = {act}
        return {gate} * self.value(k)
'''

WRONG = {
    "token_shift": {
        "shifted the wrong way (reads the next token)": _SHIFT_HEAD + '''
    return torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)
''',
        "rolls instead of padding (last token wraps to the front)": _SHIFT_HEAD + '''
    return torch.roll(x, shifts=1, dims=1)
''',
        "shifts along the channels": _SHIFT_HEAD + '''
    return torch.cat([torch.zeros_like(x[..., :1]), x[..., :-1]], dim=-1)
''',
    },
    "wkv_recurrent": {
        "u bonus applied to past tokens too": _rec(_LOOP + _REC_GOOD_OUT + '''        q = torch.maximum(mx + decay, u + kt)
        e1, e2 = torch.exp(mx + decay - q), torch.exp(u + kt - q)
        num, den, mx = e1 * num + e2 * vt, e1 * den + e2, q
'''),
        "decay sign flipped: exp(+exp(w))": _rec(_LOOP + _REC_GOOD_OUT + _REC_GOOD_UPDATE, decay="torch.exp(w)"),
        "no max-subtraction (plain exp overflows)": _REC_HEAD + '''    a = num * torch.exp(mx)      # the real sums, without the running max
    b = den * torch.exp(mx)
    for t in range(T):
        kt, vt = k[:, t], v[:, t]
        out[:, t] = (a + torch.exp(u + kt) * vt) / (b + torch.exp(u + kt))
        a = torch.exp(-torch.exp(w)) * a + torch.exp(kt) * vt
        b = torch.exp(-torch.exp(w)) * b + torch.exp(kt)
    num, den, mx = a, b, torch.zeros(B, C)
''' + _REC_TAIL,
        "decay also applied to the previous token (one step too many)": _rec(_LOOP + '''        q = torch.maximum(mx + decay, u + kt)
        e1, e2 = torch.exp(mx + decay - q), torch.exp(u + kt - q)
        out[:, t] = (e1 * num + e2 * vt) / (e1 * den + e2)
''' + _REC_GOOD_UPDATE),
        "update before output (current token counted twice)": _rec(_LOOP + _REC_GOOD_UPDATE.replace("num, den, mx = ", "num, den, mx = ") + _REC_GOOD_OUT),
    },
    "wkv_parallel": {
        "u bonus applied to past tokens too": _PAR_HEAD + '''
    s = -lag[None] * torch.exp(w)[:, None, None] + k.transpose(1, 2)[:, :, None, :] + u[:, None, None]
    s = s.masked_fill(t[None, :] > t[:, None], float("-inf"))
    return torch.einsum("bcti, bic -> btc", torch.softmax(s, -1), v)
''',
        "no max-subtraction (exp overflows on large keys)": _PAR_HEAD + '''
    s = -lag[None] * torch.exp(w)[:, None, None] + k.transpose(1, 2)[:, :, None, :]
    s = torch.where(same, (u[None, :] + k).transpose(1, 2)[:, :, :, None].expand_as(s), s)
    e = torch.exp(s.masked_fill(~(past | same), float("-inf")))
    return torch.einsum("bcti, bic -> btc", e, v) / e.sum(-1).transpose(1, 2)
''',
        "decay sign flipped: exp(+exp(w))": _PAR_HEAD + '''
    s = lag[None] * torch.exp(w)[:, None, None] + k.transpose(1, 2)[:, :, None, :]
    s = torch.where(same, (u[None, :] + k).transpose(1, 2)[:, :, :, None].expand_as(s), s)
    s = s.masked_fill(t[None, :] > t[:, None], float("-inf"))
    return torch.einsum("bcti, bic -> btc", torch.softmax(s, -1), v)
''',
        "a loop over T calling wkv_recurrent": '''def wkv_parallel(w, u, k, v):
    check_wkv_inputs(w, u, k, v)
    return torch.cat([wkv_recurrent(w, u, k[:, :t + 1], v[:, :t + 1])[:, -1:] for t in range(k.shape[1])], 1)
''',
    },
    "TimeMix": {
        "no token shift (mixes x with itself)": _TM_HEAD.format(prev="x", step_prev="x_t", mix=_GOOD_MIX),
        "mixing interpolation reversed": _TM_HEAD.format(prev=_GOOD_PREV, step_prev=_GOOD_STEP_PREV,
                                                          mix="x * (1 - mu) + x_prev * mu"),
        "step ignores the stored previous token": _TM_HEAD.format(prev=_GOOD_PREV, step_prev="torch.zeros_like(x_t)",
                                                                   mix=_GOOD_MIX),
    },
    "ChannelMix": {
        "no token shift": _CM_TEMPLATE.format(prev="x", act="torch.relu(self.key(xk)) ** 2",
                                              gate="torch.sigmoid(self.receptance(xr))"),
        "ReLU not squared": _CM_TEMPLATE.format(prev="token_shift(x)", act="torch.relu(self.key(xk))",
                                                gate="torch.sigmoid(self.receptance(xr))"),
        "no receptance gate": _CM_TEMPLATE.format(prev="token_shift(x)", act="torch.relu(self.key(xk)) ** 2",
                                                  gate="1.0"),
    },
    "q1_choice": {"B": 'q1_choice = "B"\n', "A": 'q1_choice = "A"\n', "D": 'q1_choice = "D"\n'},
    "q2_numbers": {
        "state grows like the cache": "q2_state_exponent = 1\nq2_kv_cache_exponent = 1\nq2_floats_per_layer = 5\n",
        "only num and den counted": "q2_state_exponent = 0\nq2_kv_cache_exponent = 1\nq2_floats_per_layer = 2\n",
        "KV cache quadratic": "q2_state_exponent = 0\nq2_kv_cache_exponent = 2\nq2_floats_per_layer = 5\n",
    },
    "q3_choice": {"R": 'q3_choice = "R"\n', "K": 'q3_choice = "K"\n', "V": 'q3_choice = "V"\n'},
}
