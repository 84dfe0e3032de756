"""Interactive explorers the notebooks show (ipywidgets + matplotlib), one module a notebook.

Each explorer is an `ipywidgets.interactive`: its controls are `w.children[:-1]`, its output
area is `w.children[-1]`, and `w.result` holds what the last redraw computed, so a test (or a
curious student) can move a control and check what changed without a browser.

    attention_explorer   01: attention weights of a toy sentence: head, temperature, causal mask
    comparison_explorer  05: cache/state bytes and fitted decode time at any context and batch
    mamba_delta_explorer 02: Mamba's decay exp(Δ·A) over time for a few inputs (Δ = softplus(w x + b))
    jamba_explorer       04: a hybrid's layer schedule (attention/Mamba, MoE) and its KV cache
    roofline_explorer    07: fastest decode time per token from the measured bandwidth: context, batch
    rwkv_decay_explorer  03: RWKV's per-channel decay exp(-n exp(w)) and half-lives for a range of w
    kv_cache_explorer    06: KV-cache bytes of a published model: KV heads (GQA), context length
"""

from .attention import attention_explorer
from .compare import comparison_explorer
from .jamba import jamba_explorer
from .kv_cache import kv_cache_explorer
from .mamba import mamba_delta_explorer
from .roofline import roofline_explorer
from .rwkv import rwkv_decay_explorer

__all__ = ["attention_explorer", "comparison_explorer", "jamba_explorer", "kv_cache_explorer", "mamba_delta_explorer",
           "roofline_explorer", "rwkv_decay_explorer"]
