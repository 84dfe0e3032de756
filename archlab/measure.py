"""Measuring time and memory honestly: warm-up, synchronisation, medians, peaks.

Glossary
--------
warm-up
    The first calls of a function are slow (memory pools fill, kernels are
    chosen, caches warm up). They are run but not timed.
median
    The middle of the sorted timings: unlike the mean, one slow run caused by
    the operating system does not move it.
synchronize
    GPU calls return before the GPU has finished; we wait (``synchronize``)
    before starting and before stopping the clock. On the CPU this is a no-op.
peak memory
    The largest amount of memory alive at any moment while a function ran,
    counted above what was already allocated before it started: torch's
    allocator and numpy's arrays (which :mod:`tracemalloc` sees) both count.
storage
    The memory block behind a tensor. Views (slices, ``.view``, ``.T``) share
    their base's storage, so :func:`tensor_bytes` counts each storage once.
"""

import statistics
import time
import timeit
import tracemalloc
import types
from dataclasses import dataclass, field

import torch
from torch.profiler import ProfilerActivity, profile

from archlab.device import synchronize


@dataclass
class Timing:
    """Result of :func:`time_fn`. All times are in seconds."""

    median: float
    times: list = field(default_factory=list)
    warmup: int = 0
    repeat: int = 0
    what: str = ""

    def __str__(self):
        prefix = f"{self.what}: " if self.what else ""
        return f"{prefix}median {_human_seconds(self.median)} over {self.repeat} runs ({self.warmup} warm-up)"


def _human_seconds(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def time_fn(fn, *, warmup=2, repeat=5, device=None, what=""):
    """Call ``fn()`` ``warmup`` times untimed, then ``repeat`` times timed; return a Timing.

    The timing is the standard library's ``timeit.Timer`` (one call per run, garbage collection
    paused while timing), given a clock that first waits for ``device``'s queued work, so a GPU
    run is charged for the work it really did.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1; got {repeat}")

    def clock():
        synchronize(device)            # no-op on the CPU
        return time.perf_counter()

    timer = timeit.Timer(fn, timer=clock)
    if warmup:
        timer.timeit(number=warmup)    # memory pools, kernel choice, numba compilation
    times = timer.repeat(repeat=repeat, number=1)
    return Timing(median=statistics.median(times), times=times, warmup=warmup, repeat=repeat, what=what)


def memory_peaks(fn, device=None):
    """Run ``fn()``; return ``(result, {"torch": bytes, "numpy": bytes})``, each peak above its start.

    ``torch``: CUDA: the allocator's own peak counter. CPU: the PyTorch profiler records every
    allocation (+bytes) and free (-bytes) of torch's CPU allocator; we replay them in time order
    and keep the largest running total.
    ``numpy``: :mod:`tracemalloc`'s peak, which sees numpy's array buffers (numpy reports them to
    it) and Python objects, but not torch's allocator; on CUDA it is host memory. Memory that a
    compiled kernel (numba) allocates for itself is seen by neither.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        result, numpy_peak = _traced(fn)
        synchronize(device)
        torch_peak = max(0, torch.cuda.max_memory_allocated(device) - baseline)
    else:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            result, numpy_peak = _traced(fn)   # the profiler's own bookkeeping stays outside
        torch_peak = _replayed_cpu_peak(prof)
    return result, {"torch": torch_peak, "numpy": numpy_peak}


def _traced(fn):
    """(fn(), peak bytes tracemalloc saw while fn ran, above the level when it started)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        return result, max(0, tracemalloc.get_traced_memory()[1] - start)
    finally:
        if not was_tracing:
            tracemalloc.stop()


def _replayed_cpu_peak(prof):
    # The raw "[memory]" records: one per allocation or free, with a signed size.
    # (FunctionEvent.cpu_memory_usage cannot be summed: an allocation is counted
    # again in every enclosing op, and order inside an op is lost.)
    records = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    records.sort(key=lambda e: e.start_ns())
    cpu_kinds = (torch.autograd.DeviceType.CPU, torch.autograd.DeviceType.MKLDNN)
    running = peak = 0
    for rec in records:
        if rec.device_type() in cpu_kinds:
            running += rec.nbytes()  # negative for a free
            peak = max(peak, running)
    return peak


def peak_memory(fn, device=None):
    """Run ``fn()``; return ``(result, peak_bytes)``: torch's peak plus numpy's (:func:`memory_peaks`).

    Both counts start at zero when ``fn`` starts. They are measured apart, so their sum is an
    upper bound on the joint peak, exact when one of them is zero (a pure-torch function, or a
    kernel whose work arrays are numpy's, such as a numba scan). A function that computes its
    result as a numpy array is charged for it: counting torch alone would call it free.
    """
    result, peaks = memory_peaks(fn, device)
    return result, peaks["torch"] + peaks["numpy"]


# Objects whose attributes are code, not data: walking into them could reach all of torch.
_DO_NOT_ENTER = (type, types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def tensor_bytes(obj):
    """Total bytes of all tensors reachable from ``obj``, each storage counted once.

    Looks inside tensors, lists, tuples, sets, dicts and objects with a
    ``__dict__`` (for example transformers caches such as ``DynamicCache``).
    """
    seen_storages, seen_objects = set(), set()
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, (str, bytes, int, float, bool, torch.dtype, torch.device)):
            continue
        if id(item) in seen_objects:
            continue
        seen_objects.add(id(item))
        if isinstance(item, torch.Tensor):
            if item.device.type == "meta":
                continue
            storage = item.untyped_storage()
            key = (item.device.type, item.device.index, storage.data_ptr())
            if key not in seen_storages:
                seen_storages.add(key)
                total += storage.nbytes()
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, _DO_NOT_ENTER):
            stack.extend(vars(item).values())
    return total
