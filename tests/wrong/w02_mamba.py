"""Plausible wrong answers for 02_mamba. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it.
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


def _fused(update, readout="acc + D[d] * x"):
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
                acc += C[b, t, i] * h[i]
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
           gate="F.silu(z)", step_gate="F.silu(z)", step_conv="conv_state"):
    return _BLOCK_INIT + f'''
    def ssm_params(self, xc):
        dt, Bm, C = self.x_proj(xc).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
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
        conv_state, h = state
        xs, z = self.in_proj(x_t[:, 0]).chunk(2, dim=-1)
        conv_state = torch.cat([conv_state[:, :, 1:], xs[:, :, None]], -1)
        xc = F.silu(({step_conv} * self.conv1d.weight[:, 0]).sum(-1) + self.conv1d.bias)
        delta, Bm, C = self.ssm_params(xc)
        A = -torch.exp(self.A_log)
        h = torch.exp(delta[..., None] * A) * h + delta[..., None] * Bm[:, None] * xc[..., None]
        y = (h * C[:, None]).sum(-1) + self.D * xc
        return self.out_proj(y * {step_gate})[:, None], (conv_state, h)
'''


WRONG = {
    "discretize": {
        "A_bar without exp (delta * A)": _DISC_HEAD + '''
    return delta[..., None] * A, delta[..., None] * B[:, :, None, :]
''',
        "B_bar without delta": _DISC_HEAD + '''
    A_bar = torch.exp(delta[..., None] * A)
    return A_bar, B[:, :, None, :].expand_as(A_bar)
''',
        "exp(A) * delta instead of exp(delta A)": _DISC_HEAD + '''
    return torch.exp(A) * delta[..., None], delta[..., None] * B[:, :, None, :]
''',
    },
    "selective_scan": {
        "ignores D": _SCAN_HEAD + '''
    A_bar, B_bar = discretize(A, delta, B)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    for t in range(u.shape[1]):
        h = A_bar[:, t] * h + B_bar[:, t] * u[:, t, :, None]
        ys.append((h * C[:, t, None, :]).sum(-1))
    return torch.stack(ys, dim=1)
''',
        "output read before the state update": _SCAN_HEAD + '''
    A_bar, B_bar = discretize(A, delta, B)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    for t in range(u.shape[1]):
        ys.append((h * C[:, t, None, :]).sum(-1))
        h = A_bar[:, t] * h + B_bar[:, t] * u[:, t, :, None]
    y = torch.stack(ys, dim=1)
    return y if D is None else y + u * D
''',
        "input not multiplied in (B_bar alone)": _SCAN_HEAD + '''
    A_bar, B_bar = discretize(A, delta, B)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    for t in range(u.shape[1]):
        h = A_bar[:, t] * h + B_bar[:, t]
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = torch.stack(ys, dim=1)
    return y if D is None else y + u * D
''',
    },
    "selective_scan_parallel": {
        "a updated before b (new a used for b)": _PAR_HEAD + '''
    A_bar, B_bar = discretize(A, delta, B)
    a, b = A_bar, B_bar * u[..., None]
    k = 1
    while k < u.shape[1]:
        a = torch.cat([a[:, :k], a[:, k:] * a[:, :-k]], dim=1)
        b = torch.cat([b[:, :k], a[:, k:] * b[:, :-k] + b[:, k:]], dim=1)
        k *= 2
    y = torch.einsum("bldn,bln->bld", b, C)
    return y if D is None else y + u * D
''',
        "cumprod and divide (underflows with large delta)": _PAR_HEAD + '''
    A_bar, B_bar = discretize(A, delta, B)
    P = torch.cumprod(A_bar, dim=1)
    h = P * torch.cumsum(B_bar * u[..., None] / P, dim=1)
    y = torch.einsum("bldn,bln->bld", h, C)
    return y if D is None else y + u * D
''',
        "just calls the loop": _PAR_HEAD + '''
    return selective_scan(u, delta, A, B, C, D)
''',
    },
    "selective_scan_fused": {
        "A_bar = 1 + delta A (Euler, no exp)": _fused("(1.0 + dt * A[d, i]) * h[i] + dt * B[b, t, i] * x"),
        "ignores D": _fused("np.exp(dt * A[d, i]) * h[i] + dt * B[b, t, i] * x", readout="acc"),
        "wraps the parallel scan (materialises (B, L, D, N))": '''def selective_scan_fused(u, delta, A, B, C, D=None):
    check_scan_inputs(u, delta, A, B, C, D)
    return selective_scan_parallel(u, delta, A, B, C, D)
''',
    },
    "MambaBlock": {
        "conv leaks the future (last L outputs)": _block(conv="self.conv1d(xs.transpose(1, 2))[..., -L:]"),
        "no softplus on delta": _block(softplus="self.dt_proj(dt)"),
        "gate without SiLU": _block(gate="z", step_gate="z"),
    },
    "q1_choice": {"A": 'q1_choice = "A"\n', "C": 'q1_choice = "C"\n'},
    "q2_choice": {"B": 'q2_choice = "B"\n', "A": 'q2_choice = "A"\n'},
    "q3_choice": {"C": 'q3_choice = "C"\n', "A": 'q3_choice = "A"\n'},
}
