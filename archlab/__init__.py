"""archlab: the small helper package the workbook's notebooks import.

One concept a module, each short enough to read in one sitting:

    course      a notebook's setup cell in one call (device, QUICK while grading, fast paths, seed);
                where the course's files are (figures, benchmark results) in the repository or the edition
    device      pick "auto" / "cpu" / "cuda" and say which; describe the machine
    models      tiny and ~100M configs of the Hugging Face classes; parameter counts; cache bytes
                measured on the meta device; save/load local folders
    llms        the one registry of published configurations: Llama 2 and 3, Mixtral, Qwen2, Jamba
    measure     timing that warms up, synchronises and reports medians; peak memory; bytes of caches
    checks      strict shape checks and assert_close with messages a student can act on; no_reference
    mamba       the reading's `Mamba(d_model, d_state, d_conv, expand)` on any machine (a library's block)
    moe         the library expert MLP, weight copying to and from Hugging Face MoE blocks, router load
    equal_size  the four families at about equal size, one cache-aware forward, random ids (05, 07, bench)
    cost        bytes a decode step reads: cache/state from the configuration, weights, active
                parameters, memory bandwidth (the roofline)
    fits        the one power-law fit (exponent, prefactor) behind every fitted exponent (01 teaches it)
    verdicts    the verdicts on the reading's §5 table from a set of measurements (05 and bench)
    plots       log-log scaling plots with fitted exponents
    widgets     the ipywidgets explorers the notebooks show, one module each
    fastpaths   which fast kernels (mamba-ssm, causal-conv1d, SDPA backends) a device uses, said in every setup cell
    parity      a notebook's key numbers recorded per run, compared across CPU and CUDA (scripts/parity.py)

Nothing here is imported eagerly: `import archlab` is cheap, `from archlab import models` loads
transformers.

No helper here implements an exercise of a notebook that uses it: students receive this
package (the student edition, `python -m autograder bundle`). A helper that an *earlier*
exercise taught is allowed, so that a later notebook can use it without a copy of the answer
(`fits.fit_power_law` is notebook 01's `fit_scaling_exponent`, used by 05, 07, the plots and the
verdicts); that exercise's hidden tests run the student's code inside
`archlab.checks.no_reference(...)` covering the helper, so an answer that merely calls it
fails. The course's own working versions of the other exercises live in the instructor-only
package `archref`.
"""

__version__ = "0.1.0"
