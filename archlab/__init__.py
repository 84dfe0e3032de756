"""archlab: the small helper package the workbook's notebooks import.

One concept a module, each short enough to read in one sitting:

    device    pick "auto" / "cpu" / "cuda" and say which; describe the machine
    models    tiny and ~100M configs of the Hugging Face classes; save/load local folders
    measure   timing that warms up, synchronises and reports medians; peak memory; bytes of caches
    checks    strict shape checks and assert_close with messages a student can act on
    plots     log-log scaling plots with fitted exponents
    widgets   the ipywidgets explorers the notebooks show

Nothing here is imported eagerly: `import archlab` is cheap, `from archlab import models` loads
transformers.
"""

__version__ = "0.1.0"
