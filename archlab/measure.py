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
    The largest amount of tensor memory alive at any moment while a function
    ran, counted above what was already allocated before it started.
storage
    The memory block behind a tensor. Views (slices, ``.view``, ``.T``) share
    their base's storage, so :func:`tensor_bytes` counts each storage once.
"""

import statistics
import time
import timeit
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


def peak_memory(fn, device=None):
    """Run ``fn()``; return ``(result, peak_bytes)`` of torch memory above the starting level.

    CUDA: the allocator's own peak counter. CPU: the PyTorch profiler records
    every allocation (+bytes) and free (-bytes) made by torch's CPU allocator;
    we replay them in time order and keep the largest running total. Memory
    used outside torch tensors (Python objects, numpy arrays) is not counted.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        result = fn()
        synchronize(device)
        return result, max(0, torch.cuda.max_memory_allocated(device) - baseline)

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
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
    return result, peak


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
