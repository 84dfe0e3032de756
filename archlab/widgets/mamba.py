"""Notebook 02's explorer: how the input-dependent step Δ makes a Mamba state remember or forget.

Glossary: A = one (negative) diagonal entry of the state matrix; Δ = softplus(w·x + b), the step
size for input x (Gu & Dao 2023, §3.2, s_Δ(x) followed by softplus); Ā = exp(Δ·A), the factor
the state is multiplied by each step, so after n steps of the same input it is exp(n·Δ·A).
"""

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F


def decay_over_time(A, delta, steps):
    """A < 0 (float), delta (K,) -> (K, steps + 1): exp(n·Δ·A), the weight left after n steps."""
    n = torch.arange(steps + 1, dtype=torch.float64)                     # (T,)
    return torch.exp(n[None, :] * delta.double()[:, None] * A)           # (K, T)


def mamba_delta_explorer(inputs=(-2.0, 0.0, 2.0), steps=50):
    """Decay exp(n Δ(x) A) for a few inputs x; sliders set A, the selectivity w and the bias b.

    `result` holds {"inputs": (K,), "delta": (K,), "decay": (K, steps + 1)}.
    """
    xs = torch.tensor(inputs, dtype=torch.float64)                       # (K,)

    def draw(log10_minus_A=0.0, w=2.0, b=-2.0):
        A = -(10.0 ** log10_minus_A)
        delta = F.softplus(w * xs + b)                                   # (K,)
        decay = decay_over_time(A, delta, steps)                         # (K, T)
        fig, ax = plt.subplots(figsize=(7, 4))
        for k in range(len(xs)):
            ax.plot(decay[k].numpy(),
                    label=f"x={xs[k]:+.1f}: Δ={delta[k]:.3f}, Ā=exp(ΔA)={torch.exp(delta[k] * A):.3f}")
        ax.set(xlabel="steps n with the same input", ylabel="state kept: exp(n Δ A)", ylim=(0, 1.02),
               title=f"A = {A:.3g}: small Δ keeps the state, large Δ resets it")
        ax.legend(fontsize=8)
        fig.tight_layout()
        plt.show()
        return {"inputs": xs, "delta": delta, "decay": decay}

    return W.interactive(
        draw,
        log10_minus_A=W.FloatSlider(value=0.0, min=-2.0, max=1.5, step=0.25, description="log10(-A)"),
        w=W.FloatSlider(value=2.0, min=-4.0, max=4.0, step=0.25, description="selectivity w"),
        b=W.FloatSlider(value=-2.0, min=-6.0, max=4.0, step=0.25, description="bias b"),
    )
