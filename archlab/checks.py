"""Checks used by the exercises and their graded tests, with messages that say what differs.

Glossary
--------
shape
    The sizes of a tensor's dimensions, e.g. (B, L, D) = (batch, sequence
    length, model width). Written batch-first throughout the workbook.
named dimension
    A letter such as "B" in an expected shape: it may be any size, but every
    place the same letter appears must have the same size.
rtol, atol
    Relative and absolute tolerance. An element passes when
    ``|actual - expected| <= atol + rtol * |expected|`` (as in torch.isclose).
named mistake
    A wrong answer a check recognises, declared beside its hint as
    ``mistake("slug", "hint")``. The grader records its id,
    ``<assignment>/<exercise>/<slug>``, so the instructor's report can count it;
    the student reads only the hint.
fused attention
    PyTorch's one-call attention (``scaled_dot_product_attention``). Exercises
    that ask you to write attention yourself forbid it: see no_fused_attention.
"""

import numbers

import numpy as np
import torch
from torch.overrides import TorchFunctionMode


class mistake(str):
    """A hint that names a known mistake: ``mistake("softmax-queries", "softmax over the queries: ...")``.

    It is the hint text itself (a ``str``: messages read exactly as they would without it); the
    slug, a few lowercase words joined by hyphens, stays beside the hint in the notebook source,
    where the grader reads it (``autograder.contract.mistakes``) to record which mistake a failure
    was. Use it as a key of ``assert_close(..., mistakes=...)`` or as an assert's message.
    """

    def __new__(cls, slug, hint):
        if not isinstance(slug, str) or not slug or not all(w.isalnum() and w.islower() or w.isdigit()
                                                            for w in slug.split("-")):
            raise ValueError(f"a mistake's slug is lowercase words joined by hyphens, like 'softmax-queries'; "
                             f"got {slug!r}")
        made = super().__new__(cls, hint)
        made.slug = slug
        return made


def _fmt(dims):
    return "(" + ", ".join(str(d) for d in dims) + ")"


def check_shape(x, expected, name="x", sizes=None):
    """Validate an input's shape; raise ValueError/TypeError that says exactly what is wrong.

    ``expected`` holds ints (exact sizes), strings (named sizes, e.g. "B") or
    None (any size). Pass the same dict as ``sizes`` to several calls to make
    a name mean the same size across them; it is filled in on success.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    expected = tuple(expected)
    known = dict(sizes) if sizes is not None else {}
    origin = {k: "from an earlier check" for k in known}
    got = tuple(x.shape)
    problem = None
    for i, (want, have) in enumerate(zip(expected, got)):
        if isinstance(want, str):
            if want not in known:
                known[want], origin[want] = have, f"from dim {i} of {name}"
            elif known[want] != have and problem is None:
                problem = f"dim {i} ({want}) is {have} but {want} = {known[want]} ({origin[want]})"
        elif want is not None and want != have and problem is None:
            problem = f"dim {i} is {have} but must be {want}"

    if len(got) != len(expected):
        problem = f"with {len(got)} dims (expected {len(expected)})"
    elif problem is not None:
        problem = f": {problem}"
    if problem is not None:
        names = _fmt("?" if w is None else w for w in expected)
        values = _fmt(known.get(w, "?") if isinstance(w, str) else ("?" if w is None else w) for w in expected)
        shown = names if names == values else f"{names} = {values}"
        sep = " " if problem.startswith("with") else ""
        raise ValueError(f"{name} must have shape {shown}; got {_fmt(got)}{sep}{problem}")
    if sizes is not None:
        sizes.update(known)


def _shape_of(value, name):
    if not hasattr(value, "shape"):
        raise AssertionError(f"{name} should be a tensor; got {type(value).__name__}")
    return tuple(value.shape)


def assert_shape(actual, expected, name="output"):
    """Assert ``actual.shape == expected`` exactly (no broadcasting)."""
    shape, expected = _shape_of(actual, name), tuple(expected)
    if shape != expected:
        raise AssertionError(f"{name} has shape {_fmt(shape)} but expected {_fmt(expected)}")


def _to_tensor(value, name):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic, numbers.Number)):
        return torch.as_tensor(np.asarray(value))
    if isinstance(value, (list, tuple)) and name == "expected":   # literal expected values
        return torch.as_tensor(value)
    raise AssertionError(f"{name} should be a torch.Tensor; got {type(value).__name__}")


def _nonfinite_mismatch(a, e):
    """Elements where actual is NaN/inf and expected is not the same NaN/inf."""
    same_special = (a.isnan() & e.isnan()) | (a.isinf() & e.isinf() & (a.sign() == e.sign()))
    return ~torch.isfinite(a) & ~same_special


def assert_close(actual, expected, *, rtol=1e-5, atol=1e-6, name="output", mistakes=None):
    """Assert two tensors have the same shape and dtype and are elementwise close.

    numpy arrays and Python numbers are converted; when only one side was a
    tensor, the converted side takes its dtype (so 0.5 vs a float32 tensor works).

    ``mistakes`` maps a hint to what a known mistake would have produced, e.g.
    ``{"softmax over the wrong dimension: rows must sum to 1 over keys": [[1.0, 1.0]]}``.
    When ``actual`` is not close to ``expected`` but is close to one of those values, the
    error's first line says which mistake it looks like (see :func:`diagnose`).
    """
    try:
        _assert_close(actual, expected, rtol=rtol, atol=atol, name=name)
    except AssertionError as err:
        hint = diagnose(actual, mistakes or {}, rtol=rtol, atol=atol)
        if hint is None:
            raise
        raise AssertionError(f"{name}: this looks like a known mistake: {hint}\n{err}") from None


def diagnose(actual, mistakes, *, rtol=1e-5, atol=1e-6):
    """The hint of the first mistake ``actual`` matches, or None.

    Each value of ``mistakes`` is what the mistake produces (``actual`` matches when it has the
    same shape and is close) or a predicate ``f(actual) -> bool`` for a mistake seen some other
    way (for instance weights that sum to 1 over the wrong dimension)."""
    for hint, wrong in mistakes.items():
        if callable(wrong):
            try:
                if wrong(actual):
                    return hint
            except Exception:   # a predicate that cannot judge this answer does not match it
                pass
            continue
        try:
            _assert_close(actual, wrong, rtol=rtol, atol=atol, name="answer")
        except (AssertionError, TypeError, RuntimeError, ValueError):
            continue
        return hint
    return None


def _assert_close(actual, expected, *, rtol, atol, name):
    both_tensors = isinstance(actual, torch.Tensor) and isinstance(expected, torch.Tensor)
    a, e = _to_tensor(actual, name), _to_tensor(expected, "expected")
    if not both_tensors:
        if isinstance(actual, torch.Tensor):
            e = e.to(a.dtype)
        elif isinstance(expected, torch.Tensor):
            a = a.to(e.dtype)
    assert_shape(a, tuple(e.shape), name)
    if a.dtype != e.dtype:
        raise AssertionError(f"{name} has dtype {a.dtype} but expected {e.dtype}")

    wide = torch.complex128 if (a.is_complex() or e.is_complex()) else torch.float64
    a, e = a.detach().cpu().to(wide), e.detach().cpu().to(wide)
    bad_special = _nonfinite_mismatch(a, e)
    if bad_special.any():
        first = tuple(torch.nonzero(bad_special)[0].tolist())
        raise AssertionError(
            f"{name} contains {int(a.isnan().sum())} NaN and {int(a.isinf().sum())} inf values "
            f"where expected is finite or different; first at index {first}: "
            f"actual {a[first].item()}, expected {e[first].item()}"
        )

    finite = torch.isfinite(a) & torch.isfinite(e)
    err = torch.where(finite, (a - e).abs(), torch.zeros_like(a.real))
    bad = finite & (err > atol + rtol * e.abs())
    if not bad.any():
        return None
    rel = torch.where(finite & (err > 0), err / e.abs(), torch.zeros_like(err))  # inf where expected is 0
    first = tuple(torch.nonzero(bad)[0].tolist())
    n_bad, n_all = int(bad.sum()), a.numel()
    raise AssertionError(
        f"{name} is not close to expected: {n_bad} of {n_all} elements differ "
        f"({100.0 * n_bad / n_all:.1f}%).\n"
        f"  max abs error {err.max().item():.3g}, max rel error {rel.max().item():.3g}\n"
        f"  first mismatch at index {first}: actual {a[first].item():.8g}, expected {e[first].item():.8g}\n"
        f"  tolerances: rtol={rtol:g}, atol={atol:g} "
        f"(an element passes if |actual - expected| <= atol + rtol * |expected|)"
    )


# Calls that do the whole attention computation in one step.
_FUSED = {
    torch.nn.functional.scaled_dot_product_attention: "torch.nn.functional.scaled_dot_product_attention",
    torch.nn.functional.multi_head_attention_forward: "torch.nn.functional.multi_head_attention_forward",
    torch._native_multi_head_attention: "torch._native_multi_head_attention (nn.MultiheadAttention fast path)",
}


class no_fused_attention(TorchFunctionMode):
    """Context manager: fail if fused attention is called inside it, however it was imported.

    >>> with no_fused_attention():
    ...     out = my_attention(q, k, v)   # AssertionError if it calls F.scaled_dot_product_attention
    """

    def __init__(self, who="The code under test"):
        super().__init__()
        self.who = who

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _FUSED:
            raise AssertionError(f"{self.who} must compute attention itself: it called {_FUSED[func]}")
        return func(*args, **(kwargs or {}))


# ---------------------------------------------------------------------------------------------
# Checkpoint questions
# ---------------------------------------------------------------------------------------------
def check_choice(answer, name, letters="ABCD"):
    """A multiple-choice answer must be ONE capital letter among ``letters``; say what is wrong.

    Only the form is checked here (a visible test); whether it is the right letter is a hidden test.
    """
    if not isinstance(answer, str):
        raise AssertionError(f"{name} must be a string holding one letter, like \"{letters[0]}\"; "
                             f"got {type(answer).__name__} {answer!r}")
    letter = answer.strip().rstrip(".)").strip()
    if answer not in letters:
        if letter.upper() in letters and len(letter) == 1:
            raise AssertionError(f"{name} must be exactly one of {', '.join(repr(c) for c in letters)}: "
                                 f"write {letter.upper()!r}, not {answer!r}")
        raise AssertionError(f"{name} must be one of {', '.join(repr(c) for c in letters)}; got {answer!r}")


# ---------------------------------------------------------------------------------------------
# No shortcut through a reference
# ---------------------------------------------------------------------------------------------
class no_reference:
    """Context manager for tests: fail if the code under test calls a reference implementation.

    An exercise asks you to write something that a library (or the course's instructor-only
    reference) already has. Inside ``with no_reference(...)``, a call into any of the targets
    is recorded, and leaving the block raises an AssertionError that names the call:

    >>> with no_reference("transformers.models.mamba", who="MambaBlock"):
    ...     y = block(x)          # AssertionError if block called transformers' Mamba code

    Targets are module or package names (any function defined in them counts), functions,
    or classes (any function defined in the class counts). Names that cannot be imported here
    are skipped: what does not exist cannot be called. Python-level calls are watched with
    ``sys.setprofile``; torch's C functions (such as fused attention) need
    :class:`no_fused_attention` instead.
    """

    def __init__(self, *targets, who="The code under test"):
        self.who = who
        self.codes, self.files, self.prefixes = {}, {}, {}
        for t in targets:
            self._add(t)
        self.hits = []

    def _add(self, target):
        import importlib
        import inspect
        import os
        import types

        if isinstance(target, str):
            try:
                mod = importlib.import_module(target)
            except ImportError:
                return
            path = getattr(mod, "__file__", None)
            if path is None:
                return
            if os.path.basename(path) == "__init__.py":   # a package: everything under it
                self.prefixes[os.path.dirname(path) + os.sep] = target
            else:
                self.files[path] = target
        elif isinstance(target, type):
            for name, attr in vars(target).items():
                func = getattr(attr, "__func__", attr)
                if isinstance(func, types.FunctionType):
                    self.codes[func.__code__] = f"{target.__module__}.{target.__qualname__}.{name}"
        else:
            func = inspect.unwrap(getattr(target, "__func__", target))
            code = getattr(func, "__code__", None)
            if code is not None:
                self.codes[code] = f"{func.__module__}.{func.__qualname__}"

    def _watch(self, frame, event, arg):
        if event != "call" or self.hits:
            return
        code = frame.f_code
        where = self.codes.get(code) or self.files.get(code.co_filename)
        if where is None and self.prefixes:
            for prefix, name in self.prefixes.items():
                if code.co_filename.startswith(prefix):
                    where = name
                    break
        if where is not None:
            self.hits.append(f"{where} ({code.co_name})" if where != code.co_name else where)

    def __enter__(self):
        import sys

        self._previous = sys.getprofile()
        sys.setprofile(self._watch)
        return self

    def __exit__(self, exc_type, exc, tb):
        import sys

        sys.setprofile(self._previous)
        if self.hits:
            raise AssertionError(f"{self.who} must be your own code: it called the reference "
                                 f"implementation {self.hits[0]}. Write it yourself (the reference is "
                                 f"what the tests compare you with).")
        return False
