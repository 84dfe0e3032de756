"""Interactive explorers the notebooks show (ipywidgets + matplotlib), one module a notebook.

Each explorer is an `ipywidgets.interactive`: its controls are `w.children[:-1]`, its output
area is `w.children[-1]`, and `w.result` holds what the last redraw computed, so a test (or a
curious student) can move a control and check what changed without a browser.

    attention_explorer   01: attention weights of a toy sentence: head, temperature, causal mask
"""

from .attention import attention_explorer

__all__ = ["attention_explorer"]
