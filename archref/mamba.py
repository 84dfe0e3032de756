"""A pure-PyTorch Mamba block with mamba-ssm's constructor and parameter names (Gu & Dao 2023, Fig. 3).

Glossary: d_model = D (model width), d_inner = expand * D (the E·D channels of the paper),
d_state = N, d_conv = the causal conv's kernel width, dt_rank = R (rank of the Δ projection).
Parameters as in mamba-ssm `Mamba` and Hugging Face `MambaMixer`, so state dicts load both ways:
in_proj (x and gate z), conv1d (depthwise, causal), x_proj (-> Δ, B, C), dt_proj (R -> d_inner),
A_log (A = -exp(A_log)), D (skip), out_proj.

This is 02's MambaBlock answer (instructor-only, see archref/__init__.py); the benchmark builds
its Mamba stacks from it. Students and notebooks use `archlab.mamba` instead.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from archref.ssm import SCANS


class Mamba(nn.Module):
    """forward(x (B, L, d_model)) -> (B, L, d_model); step(x_t (B, 1, d_model), state) for decoding."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank="auto", scan="fused",
                 dt_min=0.001, dt_max=0.1, device=None, dtype=None):
        super().__init__()
        if scan not in SCANS:
            raise ValueError(f"scan must be one of {sorted(SCANS)}; got {scan!r}")
        kw = dict(device=device, dtype=dtype)
        self.d_model, self.d_state, self.d_conv, self.scan = d_model, d_state, d_conv, scan
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False, **kw)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner,
                                padding=d_conv - 1, bias=True, **kw)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **kw)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **kw)
        # S4D-real initialisation: A_n = -(n + 1); Δ's bias so softplus(bias) is log-uniform in [dt_min, dt_max]
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)  # (d_inner, N)
        self.A_log = nn.Parameter(torch.log(A).to(**{k: v for k, v in kw.items() if v is not None}))
        self.D = nn.Parameter(torch.ones(self.d_inner, **kw))
        with torch.no_grad():
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))   # inverse softplus
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False, **kw)

    def ssm_params(self, xc):
        """xc (B, L, d_inner) -> delta (B, L, d_inner), Bm (B, L, N), C (B, L, N)."""
        dt, Bm, C = self.x_proj(xc).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.softplus(self.dt_proj(dt)), Bm, C

    def forward(self, x, scan=None):
        B, L, _ = x.shape
        # 1. project up: the SSM branch x and the gate z
        xz = self.in_proj(x)                                        # (B, L, 2*d_inner)
        xs, z = xz.chunk(2, dim=-1)                                 # (B, L, d_inner) each
        # 2. causal depthwise conv: pad d_conv-1 on the left, keep the first L outputs
        xc = self.conv1d(xs.transpose(1, 2))[..., :L].transpose(1, 2)  # (B, L, d_inner)
        xc = F.silu(xc)
        # 3. input-dependent Δ, B, C, then the scan
        delta, Bm, C = self.ssm_params(xc)
        A = -torch.exp(self.A_log.float())                          # (d_inner, N)
        y = SCANS[scan or self.scan](xc, delta, A, Bm, C, self.D)   # (B, L, d_inner)
        # 4. gate and project down
        return self.out_proj(y * F.silu(z))                         # (B, L, d_model)

    def step(self, x_t, state=None):
        """x_t (B, 1, d_model); state (conv_state (B, d_inner, d_conv), ssm_state (B, d_inner, N)) or None."""
        B = x_t.shape[0]
        if state is None:
            state = (x_t.new_zeros(B, self.d_inner, self.d_conv), x_t.new_zeros(B, self.d_inner, self.d_state))
        conv_state, h = state
        xs, z = self.in_proj(x_t[:, 0]).chunk(2, dim=-1)            # (B, d_inner) each
        conv_state = torch.cat([conv_state[:, :, 1:], xs[:, :, None]], dim=-1)   # (B, d_inner, d_conv)
        xc = (conv_state * self.conv1d.weight[:, 0]).sum(-1) + self.conv1d.bias  # (B, d_inner)
        xc = F.silu(xc)
        delta, Bm, C = self.ssm_params(xc)                          # (B, d_inner), (B, N), (B, N)
        A = -torch.exp(self.A_log.float())                          # (d_inner, N)
        h = torch.exp(delta[..., None] * A) * h + delta[..., None] * Bm[:, None] * xc[..., None]  # (B, d_inner, N)
        y = (h * C[:, None]).sum(-1) + self.D * xc                  # (B, d_inner)
        return self.out_proj(y * F.silu(z))[:, None], (conv_state, h)  # (B, 1, d_model)

