"""Notebook 01's explorer: attention weights of a toy sentence under head/temperature sliders."""

import ipywidgets as W
import matplotlib.pyplot as plt
import torch


def attention_explorer(tokens, attention_fn, mask_fn, n_heads=4, d_head=16, seed=0):
    """Heat map of attention weights for `tokens` under sliders for head and temperature.

    attention_fn(Q, K, V, mask) -> (out, weights) is the student's scaled dot-product attention,
    mask_fn(L) -> bool (L, L) the student's causal mask.
    Queries and keys are fixed random projections of fixed random token embeddings: the patterns
    mean nothing linguistically, but each head's pattern is stable and heads differ.
    """
    if len(tokens) < 2:
        raise ValueError(f"attention_explorer needs at least 2 tokens, got {len(tokens)}")
    g = torch.Generator().manual_seed(seed)
    L, D = len(tokens), n_heads * d_head
    x = torch.randn(L, D, generator=g)                                  # (L, D) embeddings
    Wq = torch.randn(n_heads, D, d_head, generator=g) / D ** 0.5        # (H, D, d)
    Wk = torch.randn(n_heads, D, d_head, generator=g) / D ** 0.5        # (H, D, d)
    Q = torch.einsum("l D, h D d -> h l d", x, Wq) * 2                  # (H, L, d), sharpened
    K = torch.einsum("l D, h D d -> h l d", x, Wk) * 2                  # (H, L, d)
    V = torch.eye(L).expand(n_heads, L, L)                              # (H, L, L): out = weights
    causal = mask_fn(L)                                                 # (L, L), True = may attend

    def draw(head=0, temperature=1.0, causal_mask=True):
        mask = causal if causal_mask else None
        _, weights = attention_fn(Q[head] / temperature, K[head], V[head], mask)  # (L, L)
        weights = weights.detach()
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        im = ax.imshow(weights.numpy(), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(L), tokens, rotation=60)
        ax.set_yticks(range(L), tokens)
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query (attending)")
        ax.set_title(f"head {head}, temperature {temperature:.2f}")
        fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        plt.show()
        return weights

    return W.interactive(
        draw,
        head=W.IntSlider(value=0, min=0, max=n_heads - 1, description="head"),
        temperature=W.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05,
                                     description="temperature"),
        causal_mask=W.Checkbox(value=True, description="causal mask"),
    )
