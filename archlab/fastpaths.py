"""Say what ran: which implementation each fast path of the course uses on this machine.

Every notebook calls :func:`show` in its setup cell (through :func:`archlab.course.setup`), so
an executed notebook states, for each fast path, whether the fast implementation or its plain
twin ran. The parity records of :mod:`archlab.parity` keep the same report, with the number of
calls each side served.

Glossary
--------
fast path
    An optimised implementation of a computation that has a plain twin computing the same
    function: mamba-ssm's selective-scan kernel and transformers' PyTorch scan, for example.
kernel
    Compiled GPU code: mamba-ssm's ``selective_scan_cuda``, causal-conv1d's convolution,
    the flash-attention kernel behind PyTorch's SDPA.
fallback / reference
    The plain twin used where the kernel is absent: transformers' PyTorch implementation.
SDPA
    ``torch.nn.functional.scaled_dot_product_attention``. For each call it picks a backend:
    flash, memory-efficient or cuDNN attention (fused kernels that never hold the n×n score
    matrix) or math (matmul, softmax, matmul: not fused). transformers' models call it when their
    ``attn_implementation`` is ``"sdpa"``.
CUDA graph
    A recorded sequence of GPU launches replayed by one call (it saves the launch overhead
    of many small kernels, which dominates batch-1 decoding on a GPU).

How transformers chooses (5.23): ``use_kernel_func_from_hub_with_fallback`` in
``transformers/integrations/hub_kernels.py`` decorates each Mamba function once, at import: if
``mamba_ssm`` (or ``causal_conv1d``) imports, the decorated function calls the package's
kernel, otherwise transformers' own PyTorch code; the wrapper keeps that choice in its
closure (``is_new_implementation``), which :func:`bound_implementation` reads. The choice then
holds for every tensor, CPU tensors included, and mamba-ssm's kernels reject CPU tensors. So on
a CUDA machine with the ``gpu`` extra, :func:`route_by_device` (called by :func:`show`) sends
tensors that are not on a GPU to the PyTorch reference and GPU tensors to the kernel, and
counts each.
"""

import collections
import functools
import importlib
import importlib.util
import sys

import torch

# transformers' module-level functions that bind a kernel at import, per model family
_MODULES = ("transformers.models.mamba.modeling_mamba", "transformers.models.jamba.modeling_jamba")
SCAN = ("mamba_selective_scan", "mamba_selective_state_update", "mamba_inner_fn")
CONV = ("causal_conv1d_fn", "causal_conv1d_update")

# {(function name, "kernel" | "pytorch"): calls} since route_by_device() wrapped them
CALLS = collections.Counter()
# CUDA graphs captured in this process since show() first ran
GRAPHS = collections.Counter()

_SDPA_NAMES = {
    "FLASH_ATTENTION": "fused: flash-attention kernel",
    "EFFICIENT_ATTENTION": "fused: memory-efficient kernel",
    "CUDNN_ATTENTION": "fused: cuDNN kernel",
    "OVERRIDEABLE": "fused: the device's own kernel",
    "MATH": "not fused: math backend (matmul, softmax, matmul)",
    "ERROR": "no SDPA backend accepts these inputs",
}


def bound_implementation(fn):
    """``(is_kernel, implementation, pytorch_reference)`` that transformers bound to ``fn`` at import.

    Reads the closure of the wrapper made by ``use_kernel_func_from_hub_with_fallback``
    (variables ``is_new_implementation``, ``implementation`` and ``torch_function``), looking
    through one outer decorator (the ``kernels`` package's) and through :func:`route_by_device`.
    Raises RuntimeError if transformers no longer builds its wrapper this way.
    """
    fn = getattr(fn, "_archlab_routed", fn)
    candidates = [fn] + [c.cell_contents for c in (getattr(fn, "__closure__", None) or ())
                         if callable(getattr(c, "cell_contents", None))]
    for f in candidates:
        code = getattr(f, "__code__", None)
        if code is not None and "is_new_implementation" in code.co_freevars:
            cells = dict(zip(code.co_freevars, f.__closure__))
            return (bool(cells["is_new_implementation"].cell_contents), cells["implementation"].cell_contents,
                    cells["torch_function"].cell_contents)
    raise RuntimeError(f"cannot tell which implementation {getattr(fn, '__qualname__', fn)!r} runs: transformers "
                       "no longer wraps it with use_kernel_func_from_hub_with_fallback (see archlab/fastpaths.py)")


def _first_tensor(args, kwargs):
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return None


def _routed(name, fn, reference):
    """``fn`` (a kernel binding) for GPU tensors, ``reference`` for all others; counts both."""
    @functools.wraps(reference)
    def dispatch(*args, **kwargs):
        t = _first_tensor(args, kwargs)
        if t is not None and t.device.type == "cuda":
            CALLS[name, "kernel"] += 1
            return fn(*args, **kwargs)
        CALLS[name, "pytorch"] += 1
        return reference(*args, **kwargs)

    dispatch._archlab_routed = fn
    return dispatch


def route_by_device():
    """Send non-GPU tensors to transformers' PyTorch reference wherever a kernel is bound.

    Does nothing where no kernel is bound (every call already runs the reference), so on a CPU
    machine transformers is left exactly as it is. Safe to call twice. Returns the names routed.
    """
    routed = []
    for modname in _MODULES:
        module = importlib.import_module(modname)
        for name in SCAN + CONV:
            fn = getattr(module, name, None)
            if fn is None or hasattr(fn, "_archlab_routed"):
                continue
            is_kernel, _, reference = bound_implementation(fn)
            if is_kernel:
                setattr(module, name, _routed(name, fn, reference))
                routed.append(f"{modname.rsplit('.', 1)[-1]}.{name}")
    return routed


def _count_cuda_graphs():
    """Count CUDA graph captures from now on (torch.cuda.CUDAGraph.capture_begin). Once per process."""
    cls = torch.cuda.CUDAGraph
    if getattr(cls.capture_begin, "_archlab_counted", False):
        return
    original = cls.capture_begin

    @functools.wraps(original)
    def capture_begin(self, *args, **kwargs):
        GRAPHS["captured"] += 1
        return original(self, *args, **kwargs)

    capture_begin._archlab_counted = True
    cls.capture_begin = capture_begin


def _kernel_line(names, package, what, device):
    """One report line for a kernel family (the scan, or the causal conv) of transformers' Mamba mixers."""
    module = importlib.import_module(_MODULES[0])
    is_kernel, impl, _ = bound_implementation(getattr(module, names[0]))
    counts = {side: sum(CALLS[n, side] for n in names) for side in ("kernel", "pytorch")}
    ran = f" [calls so far: kernel {counts['kernel']}, PyTorch {counts['pytorch']}]" if any(counts.values()) else ""
    if is_kernel:
        kernel = f"{package}'s {what} kernel ({impl.__module__}.{impl.__name__})"
        if device.type == "cuda":
            return f"{kernel} for CUDA tensors; transformers' PyTorch reference for CPU tensors{ran}"
        return f"transformers' PyTorch reference (CPU tensors; {kernel} serves CUDA tensors){ran}"
    if importlib.util.find_spec(package) is None:
        why = f"{package} is not installed" + ("" if device.type == "cuda" else "; it needs CUDA")
    else:
        why = f"{package} is installed but did not import"
    return f"transformers' PyTorch reference ({why}){ran}"


def _attention_line(device):
    """What transformers' attention calls and which SDPA backend torch picks for the course's shapes."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tiny = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=8, n_positions=8,
                                      bos_token_id=0, eos_token_id=0))
    impl = tiny.config._attn_implementation
    if impl != "sdpa":
        return f"transformers' {impl!r} attention (not SDPA: not fused)"
    # a causal float32 prefill as the course's models run it: (B, heads, L, head_dim)
    q = torch.zeros(1, 12, 256, 64, device=device)
    backend = torch.nn.attention.SDPBackend(torch._fused_sdp_choice(q, q, q, None, 0.0, True)).name
    return f"transformers' SDPA attention; torch picks {backend} on {device.type} for float32: " \
           f"{_SDPA_NAMES.get(backend, backend)}"


def _graphs_line(device):
    compiled = 0
    if "torch._dynamo" in sys.modules:
        compiled = sys.modules["torch._dynamo"].utils.counters["stats"]["unique_graphs"]
    if device.type != "cuda":
        return "not used (CPU)" + (f"; torch.compile made {compiled} graph(s)" if compiled else "")
    return f"{GRAPHS['captured']} captured since the start" + (f"; torch.compile made {compiled} graph(s)"
                                                               if compiled else "")


def report(device="cpu"):
    """{fast path: the implementation it uses on ``device``, in words}. Prints nothing."""
    from archlab.mamba import mamba_block_class

    device = torch.device(device)
    from transformers.models.rwkv import modeling_rwkv

    rwkv = ("its CUDA kernel for prefill on CUDA (one-token steps use the PyTorch loop)"
            if modeling_rwkv.rwkv_cuda_kernel is not None and device.type == "cuda"
            else "transformers' PyTorch loop" + ("" if device.type == "cuda" else " (CPU)")
            + ("" if modeling_rwkv.rwkv_cuda_kernel is not None or device.type != "cuda"
               else ": its CUDA kernel comes from the model hub, which is offline here"))
    return {
        "Mamba selective scan": _kernel_line(SCAN, "mamba_ssm", "selective-scan", device),
        "Mamba causal conv1d": _kernel_line(CONV, "causal_conv1d", "causal-conv1d", device),
        "Mamba block (archlab.mamba)": mamba_block_class(device)[1],
        "RWKV WKV": rwkv,
        "attention": _attention_line(device),
        "CUDA graphs": _graphs_line(device),
    }


def show(device="cpu"):
    """Route the Mamba kernels by device, start counting CUDA graphs, print the report; return it."""
    device = torch.device(device)
    route_by_device()
    if device.type == "cuda":
        _count_cuda_graphs()
    rows = report(device)
    width = max(map(len, rows))
    print(f"archlab fast paths on {device}:")
    for name, how in rows.items():
        print(f"  {name:<{width}}  {how}")
    return rows
