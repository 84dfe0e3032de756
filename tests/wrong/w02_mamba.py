"""Plausible wrong answers for 02_mamba. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it: a dict with
"visible": the keyword its visible test's message must contain (a typical mistake, named before
grading), or "hidden": what the hidden tests' message must contain (a subtle mistake that passes
the visible tests). See tests/nbtools.py:wrong_answers.
"""

_DISC_HEAD = '''def discretize(A, delta, B):
    check_shape(A, ("D", "N"), "A")
'''

_SCAN_HEAD = '''def selective_scan(u, delta, A, B, C, D=None):
    check_scan_inputs(u, delta, A, B, C, D)
'''

_PAR_HEAD = '''def selective_scan_parallel(u, delta, A, B, C, D=None):
    check_scan_inputs(u, delta, A, B, C, D)
'''


def _loop(update="A_bar[:, t] * h + B_bar[:, t] * u[:, t, :, None]", readout="y if D is None else y + u * D",
          before=False, write="B", read_out="C"):
    """A sequential scan with one line changed (write/read_out: the matrices that write into and read the state)."""
    read = f"        ys.append((h * {read_out}[:, t, None, :]).sum(-1))\n"
    step = f"        h = {update}\n"
    return _SCAN_HEAD + f'''    A_bar, B_bar = discretize(A, delta, {write})
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    for t in range(u.shape[1]):
''' + (read + step if before else step + read) + f'''    y = torch.stack(ys, dim=1)
    return {readout}
'''


def _par(new_a_first=False, keep_going="k < u.shape[1]", write="B", read_out="C"):
    a_line = "        a = torch.cat([a[:, :k], a[:, k:] * a[:, :-k]], dim=1)\n"
    b_line = "        b = torch.cat([b[:, :k], a[:, k:] * b[:, :-k] + b[:, k:]], dim=1)\n"
    return _PAR_HEAD + f'''    A_bar, B_bar = discretize(A, delta, {write})
    a, b = A_bar, B_bar * u[..., None]
    k = 1
    while {keep_going}:
''' + (a_line + b_line if new_a_first else b_line + a_line) + '''        k *= 2
    y = torch.einsum("bldn,bln->bld", b, ''' + read_out + ''')
    return y if D is None else y + u * D
'''


_FUSED_WRAPPER = '''

def selective_scan_fused(u, delta, A, B, C, D=None):
    check_scan_inputs(u, delta, A, B, C, D)
    f32 = lambda t: t.detach().to(torch.float32).contiguous().numpy()
    u_ = f32(u.transpose(1, 2))
    d_ = f32(delta.transpose(1, 2))
    D_ = f32(D) if D is not None else np.zeros(u.shape[2], np.float32)
    y = np.empty_like(u_)
    _fused_scan_kernel(u_, d_, f32(A), f32(B), f32(C), D_, y)
    return torch.from_numpy(y).transpose(1, 2).to(u.dtype)
'''


def _fused(update, readout="acc + D[d] * x", read_out="C"):
    return f'''@njit(parallel=True, fastmath=True, cache=False)
def _fused_scan_kernel(u, delta, A, B, C, D, y):
    nb, nd, nl = u.shape
    n = A.shape[1]
    for job in prange(nb * nd):
        b, d = job // nd, job % nd
        h = np.zeros(n, dtype=np.float32)
        for t in range(nl):
            dt, x = delta[b, d, t], u[b, d, t]
            acc = np.float32(0.0)
            for i in range(n):
                h[i] = {update}
                acc += {read_out}[b, t, i] * h[i]
            y[b, d, t] = {readout}
''' + _FUSED_WRAPPER


_BLOCK_INIT = '''SCAN_FUNCTIONS = {"sequential": selective_scan, "parallel": selective_scan_parallel, "fused": selective_scan_fused}


class MambaBlock(nn.Module):
    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, scan="fused"):
        super().__init__()
        self.d_model, self.d_state, self.d_conv, self.scan = d_model, d_state, d_conv, scan
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1.0)).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
'''


def _block(softplus="F.softplus(self.dt_proj(dt))", conv="self.conv1d(xs.transpose(1, 2))[..., :L]",
           gate="F.silu(z)", step_gate="F.silu(z)", split="self.dt_rank, self.d_state, self.d_state",
           order="dt, Bm, C", new_h="h", new_conv="conv_state"):
    return _BLOCK_INIT + f'''
    def ssm_params(self, xc):
        {order} = self.x_proj(xc).split([{split}], dim=-1)
        return {softplus}, Bm, C

    def forward(self, x):
        L = x.shape[1]
        xs, z = self.in_proj(x).chunk(2, dim=-1)
        xc = F.silu({conv}.transpose(1, 2))
        delta, Bm, C = self.ssm_params(xc)
        A = -torch.exp(self.A_log)
        y = SCAN_FUNCTIONS[self.scan](xc, delta, A, Bm, C, self.D)
        return self.out_proj(y * {gate})

    def step(self, x_t, state=None):
        Bsz = x_t.shape[0]
        if state is None:
            state = (x_t.new_zeros(Bsz, self.d_inner, self.d_conv), x_t.new_zeros(Bsz, self.d_inner, self.d_state))
        conv_state, h0 = state
        xs, z = self.in_proj(x_t[:, 0]).chunk(2, dim=-1)
        conv_state = torch.cat([conv_state[:, :, 1:], xs[:, :, None]], -1)
        xc = F.silu((conv_state * self.conv1d.weight[:, 0]).sum(-1) + self.conv1d.bias)
        delta, Bm, C = self.ssm_params(xc)
        A = -torch.exp(self.A_log)
        h = torch.exp(delta[..., None] * A) * h0 + delta[..., None] * Bm[:, None] * xc[..., None]
        y = (h * C[:, None]).sum(-1) + self.D * xc
        return self.out_proj(y * {step_gate})[:, None], ({new_conv}, {new_h})
'''


_SHORTCUT_BLOCK = _BLOCK_INIT + '''
    def ssm_params(self, xc):
        dt, Bm, C = self.x_proj(xc).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.softplus(self.dt_proj(dt)), Bm, C

    def forward(self, x):
        from archlab.mamba import Mamba
        lib = Mamba(self.d_model, d_state=self.d_state, d_conv=self.d_conv, expand=self.d_inner // self.d_model)
        lib.load_state_dict(self.state_dict())
        return lib(x)

    def step(self, x_t, state=None):
        Bsz = x_t.shape[0]
        if state is None:
            state = (x_t.new_zeros(Bsz, self.d_inner, self.d_conv), x_t.new_zeros(Bsz, self.d_inner, self.d_state))
        conv_state, h = state
        xs, z = self.in_proj(x_t[:, 0]).chunk(2, dim=-1)
        conv_state = torch.cat([conv_state[:, :, 1:], xs[:, :, None]], -1)
        xc = F.silu((conv_state * self.conv1d.weight[:, 0]).sum(-1) + self.conv1d.bias)
        delta, Bm, C = self.ssm_params(xc)
        h = torch.exp(delta[..., None] * -torch.exp(self.A_log)) * h + delta[..., None] * Bm[:, None] * xc[..., None]
        y = (h * C[:, None]).sum(-1) + self.D * xc
        return self.out_proj(y * F.silu(z))[:, None], (conv_state, h)
'''

WRONG = {
    "discretize": {
        "Euler step for A_bar (1 + delta A)": {"visible": "Euler step for A_bar", "code": _DISC_HEAD + '''
    return 1 + delta[..., None] * A, delta[..., None] * B[:, :, None, :]
'''},
        "delta broadcast over the state entries": {"visible": "delta broadcast wrongly", "code": _DISC_HEAD + '''
    return torch.exp(delta[:, :, None, :] * A), delta[..., None] * B[:, :, None, :]
'''},
        "B_bar without delta": {"visible": "B_bar without delta", "code": _DISC_HEAD + '''
    A_bar = torch.exp(delta[..., None] * A)
    return A_bar, B[:, :, None, :].expand_as(A_bar)
'''},
        "exact zero-order hold for B_bar": {"visible": "exact zero-order hold", "code": _DISC_HEAD + '''
    A_bar = torch.exp(delta[..., None] * A)
    return A_bar, (A_bar - 1) / A * B[:, :, None, :]
'''},
        "B of the first sequence used for the whole batch": {"hidden": "each sequence b uses its own B[b]", "code": _DISC_HEAD + '''
    return torch.exp(delta[..., None] * A), delta[..., None] * B[0][None, :, None, :]
'''},
        "calls the course's reference": {"hidden": "must be your own code", "code": _DISC_HEAD + '''
    from archref import ssm
    return ssm.discretize(A, delta, B)
'''},
    },
    "selective_scan": {
        "ignores D": {"visible": "D forgotten", "code": _loop(readout="y")},
        "state reset at every step": {"visible": "state reset", "code": _loop(update="B_bar[:, t] * u[:, t, :, None]")},
        "output read before the state update": {"visible": "output read before the state update", "code": _loop(before=True)},
        "input not multiplied in (B_bar alone)": {"visible": "not multiplied in", "code": _loop(update="A_bar[:, t] * h + B_bar[:, t]")},
        "B and C swapped (C writes into the state, B reads it out)": {"visible": "B and C swapped",
                                                                     "code": _loop(write="C", read_out="B")},
        "one state for the whole batch (not reset between sequences)": {
            "hidden": "each sequence of the batch starts from h = 0", "code": _SCAN_HEAD + '''
    A_bar, B_bar = discretize(A, delta, B)
    h = u.new_zeros(u.shape[2], A.shape[1])
    ys = []
    for i in range(u.shape[0]):
        ys_i = []
        for t in range(u.shape[1]):
            h = A_bar[i, t] * h + B_bar[i, t] * u[i, t, :, None]
            ys_i.append((h * C[i, t, None, :]).sum(-1))
        ys.append(torch.stack(ys_i))
    y = torch.stack(ys)
    return y if D is None else y + u * D
'''},
        "calls the transformers scan": {"hidden": "must be your own code", "code": _SCAN_HEAD + '''
    from transformers.models.mamba import modeling_mamba
    y = modeling_mamba.mamba_selective_scan(u.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2),
                                            C.transpose(1, 2), D=D)
    return y.transpose(1, 2)
'''},
    },
    "selective_scan_parallel": {
        "a updated before b (new a used for b)": {"visible": "the new a used for b", "code": _par(new_a_first=True)},
        "one round too few": {"visible": "too few rounds", "code": _par(keep_going="2 * k < u.shape[1]")},
        "B and C swapped (C writes into the state, B reads it out)": {"visible": "B and C swapped",
                                                                     "code": _par(write="C", read_out="B")},
        "cumprod and divide (underflows with large delta)": {"hidden": "never divide", "code": _PAR_HEAD + '''
    A_bar, B_bar = discretize(A, delta, B)
    P = torch.cumprod(A_bar, dim=1)
    h = P * torch.cumsum(B_bar * u[..., None] / P, dim=1)
    y = torch.einsum("bldn,bln->bld", h, C)
    return y if D is None else y + u * D
'''},
        "just calls the loop": {"hidden": "loop over time", "code": _PAR_HEAD + '''
    return selective_scan(u, delta, A, B, C, D)
'''},
    },
    "selective_scan_fused": {
        "A_bar = 1 + delta A (Euler, no exp)": {"visible": "Euler step", "code": _fused("(1.0 + dt * A[d, i]) * h[i] + dt * B[b, t, i] * x")},
        "ignores D": {"visible": "D forgotten", "code": _fused("np.exp(dt * A[d, i]) * h[i] + dt * B[b, t, i] * x", readout="acc")},
        "B and C swapped (C writes into the state, B reads it out)": {
            "visible": "B and C swapped", "code": _fused("np.exp(dt * A[d, i]) * h[i] + dt * C[b, t, i] * x", read_out="B")},
        "wraps the parallel scan (materialises (B, L, D, N))": {"hidden": "must not be materialised", "code": '''def selective_scan_fused(u, delta, A, B, C, D=None):
    check_scan_inputs(u, delta, A, B, C, D)
    return selective_scan_parallel(u, delta, A, B, C, D)
'''},
        "wraps the course's reference scan": {"hidden": "must be your own code", "code": '''def selective_scan_fused(u, delta, A, B, C, D=None):
    check_scan_inputs(u, delta, A, B, C, D)
    from archref import ssm
    return ssm.selective_scan_fused(u, delta, A, B, C, D)
'''},
    },
    "MambaBlock": {
        "conv leaks the future (last L outputs)": {"visible": "sees the future", "code": _block(conv="self.conv1d(xs.transpose(1, 2))[..., -L:]")},
        "no softplus on delta": {"visible": "no softplus", "code": _block(softplus="self.dt_proj(dt)")},
        "gate without SiLU": {"visible": "gate without SiLU", "code": _block(gate="z", step_gate="z")},
        "step forgets h": {"visible": "step forgets h", "code": _block(new_h="h0")},
        "B and C swapped in x_proj's split": {"hidden": "vs HF MambaMixer", "code": _block(order="dt, C, Bm")},
        "wraps archlab.mamba.Mamba (transformers' mixer)": {"hidden": "must be your own code", "code": _SHORTCUT_BLOCK},
    },
    "q1_choice": {"lower case": {"visible": "write 'A'", "code": 'q1_choice = "a"\n'},
                  "linear (B)": {"hidden": "not the right letter", "code": 'q1_choice = "B"\n'},
                  "log L (D)": {"hidden": "not the right letter", "code": 'q1_choice = "D"\n'}},
    "q2_choice": {"with a full stop": {"visible": "write 'B'", "code": 'q2_choice = "B."\n'},
                  "all of them (C)": {"hidden": "not the right letter", "code": 'q2_choice = "C"\n'},
                  "A and D (A)": {"hidden": "not the right letter", "code": 'q2_choice = "A"\n'}},
    "q3_choice": {"not a letter": {"visible": "must be a string", "code": 'q3_choice = 4\n'},
                  "trails downstream (A)": {"hidden": "not the right letter", "code": 'q3_choice = "A"\n'},
                  "ten times its size (B)": {"hidden": "not the right letter", "code": 'q3_choice = "B"\n'}},
}
