"""A Mamba block with mamba-ssm's constructor that runs anywhere: the reading's example on a CPU.

The reading builds its block with `from mamba_ssm import Mamba`; mamba-ssm needs an NVIDIA GPU
and its CUDA kernels. `Mamba` below takes the same arguments (`d_model, d_state, d_conv,
expand`), has the same parameter names (in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj)
and computes the same function, but it is a library's block, not the course's: it wraps the
Hugging Face `MambaMixer` (transformers, `models/mamba/modeling_mamba.py`), which runs
mamba-ssm's kernels when they are installed and a pure-PyTorch scan otherwise.

Notebook 02 asks you to write this block yourself (`MambaBlock`); this module exists so that
the rest of the course (the reading's example, later notebooks) never needs your answer.

Glossary: d_model = D (model width), d_inner = expand · D, d_state = N (state size per
channel), d_conv = width of the causal depthwise convolution, dt_rank = R (rank of Δ's
projection, ceil(D / 16) by default).
"""

import math

import torch


def _mixer_class():
    from transformers.models.mamba.modeling_mamba import MambaMixer
    return MambaMixer


class Mamba(_mixer_class()):
    """``Mamba(d_model, d_state=16, d_conv=4, expand=2)``: ``forward(x (B, L, D)) -> (B, L, D)``.

    A subclass of transformers' ``MambaMixer`` (so the parameter names are mamba-ssm's, at the
    top level, and its state dicts load as they are) with mamba-ssm's constructor.
    """

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank="auto", device=None, dtype=None):
        from transformers import MambaConfig

        cfg = MambaConfig(hidden_size=d_model, state_size=d_state, conv_kernel=d_conv, expand=expand,
                          time_step_rank=math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank,
                          num_hidden_layers=1, vocab_size=16, use_bias=False, use_conv_bias=True)
        super().__init__(cfg, layer_idx=0)
        # its "falling back to the reference PyTorch implementation" notices go to stderr (which
        # nbgrader counts as a failed test); mamba_block() says in one line which path runs
        import logging
        logging.getLogger("transformers.integrations.hub_kernels").setLevel(logging.ERROR)
        self.d_model, self.d_state, self.d_conv, self.d_inner = d_model, d_state, d_conv, expand * d_model
        self.to(device=device, dtype=dtype)

    def forward(self, x):
        return super().forward(x)                              # (B, L, D) -> (B, L, D)


def mamba_block(d_model, d_state=16, d_conv=4, expand=2, device="cpu", verbose=True):
    """mamba-ssm's ``Mamba`` on a CUDA device when it is installed, else :class:`Mamba`; says which."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            from mamba_ssm import Mamba as CudaMamba
        except ImportError:
            CudaMamba = None
        if CudaMamba is not None:
            if verbose:
                print("Mamba block: mamba_ssm.Mamba (its CUDA selective-scan kernel)")
            return CudaMamba(d_model=d_model, d_state=d_state, d_conv=d_conv, expand=expand).to(device)
    if verbose:
        where = "mamba-ssm not installed" if device.type == "cuda" else "no CUDA"
        print(f"Mamba block: archlab.mamba.Mamba (transformers' MambaMixer, pure-PyTorch scan; {where}) on {device}")
    return Mamba(d_model, d_state=d_state, d_conv=d_conv, expand=expand).to(device)


def mamba_block_class(device="cpu"):
    """(class, where it came from): mamba-ssm's ``Mamba`` on CUDA when installed, else :class:`Mamba`.

    Both take the reading's ``Mamba(d_model=..., d_state=..., d_conv=..., expand=...)``."""
    if torch.device(device).type == "cuda":
        try:
            from mamba_ssm import Mamba as CudaMamba

            return CudaMamba, "mamba_ssm.Mamba (its CUDA selective-scan kernel)"
        except ImportError:
            pass
    return Mamba, "archlab.mamba.Mamba (transformers' MambaMixer, pure-PyTorch scan)"
