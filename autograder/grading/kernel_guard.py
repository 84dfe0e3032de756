"""Runs INSIDE a grading kernel, injected by the grader as the first cell (this file is read as
text, never imported by the grader). Before student code runs, `snapshot` records the pristine
state of what the test cells rely on; before every graded test cell, `check` puts back what
student code changed and returns what it repaired. The grader calls both through the
`user_expressions` of an empty request, which IPython evaluates without input or AST
transformers, so student code cannot rewrite the calls on their way in.

Libraries legitimately add import hooks, event callbacks and threads (matplotlib, tqdm), so
only those defined by notebook code (module `__main__`) count as tampering.
"""


def _archlab_guard_install():
    import builtins
    import importlib
    import sys
    import threading

    ip = get_ipython()  # noqa: F821  (IPython provides it in the kernel)
    watched_modules = {}
    for name in ("torch", "torch.testing", "torch.nn.functional", "numpy", "numpy.testing", "math",
                 "archlab.checks"):
        try:
            watched_modules[name] = importlib.import_module(name)
        except Exception:
            pass
    watched_attrs = {
        "torch": ["allclose", "equal", "isclose", "testing"],
        "torch.testing": ["assert_close"],
        "torch.nn.functional": ["scaled_dot_product_attention"],
        "numpy": ["allclose", "isclose", "array_equal", "testing"],
        "numpy.testing": ["assert_allclose", "assert_array_equal", "assert_equal"],
        "math": ["isclose"],
        "archlab.checks": ["assert_close", "assert_shape", "check_shape", "no_fused_attention"],
    }
    snap = {}

    def student_made(obj):
        """Defined by code run in the notebook (module __main__), not by a library."""
        owner = getattr(obj, "__func__", obj)
        return getattr(owner, "__module__", None) == "__main__" or type(obj).__module__ == "__main__"

    def snapshot():
        """Called by the grader through user_expressions before any student code runs."""
        snap.update(_take())
        return True

    def _take():
        return {
        "builtins": dict(vars(builtins)),
        "modules": {n: sys.modules.get(n) for n in watched_modules},
        "attrs": attrs,
        "tensor": {a: getattr(watched_modules["torch"].Tensor, a)
                   for a in ("__eq__", "allclose", "equal", "item", "tolist")}
        if "torch" in watched_modules else {},
        "cleanup": list(ip.input_transformers_cleanup),
        "post": list(ip.input_transformers_post),
        "ast": list(ip.ast_transformers),
        "shell_methods": {m: vars(ip)[m] for m in shell_methods if m in vars(ip)},
        "custom_exceptions": ip.custom_exceptions,
        "globals": {},
        "code": {(m, a): f.__code__ for (m, a), f in attrs.items() if hasattr(f, "__code__")},
        }
    attrs = {(m, a): getattr(watched_modules[m], a) for m in watched_attrs if m in watched_modules
             for a in watched_attrs[m] if hasattr(watched_modules[m], a)}
    shell_methods = ("run_cell", "run_cell_async", "run_code", "run_ast_nodes", "transform_cell",
                     "transform_ast", "showtraceback", "_showtraceback", "showsyntaxerror")

    def remember(names):
        """Record the values given (locked) cells defined; tests rely on them."""
        g = ip.user_ns
        for n in names:
            if n in g:
                snap["globals"][n] = g[n]

    def check(grade_id):
        repaired = []
        # IPython's own machinery: transformers, hooks, patched shell methods
        for key, live in (("cleanup", ip.input_transformers_cleanup), ("post", ip.input_transformers_post),
                          ("ast", ip.ast_transformers)):
            if list(live) != snap[key]:
                repaired.append(f"IPython {key} transformers changed")
                live[:] = snap[key]
        for event, cbs in ip.events.callbacks.items():
            mine = [cb for cb in cbs if student_made(cb)]
            if mine:
                repaired.append(f"IPython event hook added on {event}")
                cbs[:] = [cb for cb in cbs if cb not in mine]
        for m in shell_methods:
            if vars(ip).get(m) is not snap["shell_methods"].get(m):
                repaired.append(f"IPython shell method {m} replaced")
                if m in snap["shell_methods"]:
                    setattr(ip, m, snap["shell_methods"][m])
                else:
                    delattr(ip, m)
        if ip.custom_exceptions != snap["custom_exceptions"]:
            repaired.append("custom exception handler installed")
            ip.set_custom_exc((), None)
        if sys.gettrace() is not None or sys.getprofile() is not None:
            repaired.append("trace/profile function installed")
            sys.settrace(None)
            sys.setprofile(None)
        for hooks, what in ((sys.meta_path, "import hook"), (sys.path_hooks, "import path hook")):
            mine = [h for h in hooks if student_made(h)]
            if mine:
                repaired.append(f"{what} installed")
                hooks[:] = [h for h in hooks if h not in mine]
        # builtins and the comparison functions tests call
        live_b = vars(builtins)
        for k, v in snap["builtins"].items():
            if live_b.get(k, None) is not v and not k.startswith("_"):
                repaired.append(f"builtin {k} replaced")
                live_b[k] = v
        for n, mod in snap["modules"].items():
            if sys.modules.get(n) is not mod:
                repaired.append(f"module {n} replaced in sys.modules")
                sys.modules[n] = mod
        for (m, a), f in snap["attrs"].items():
            mod = snap["modules"][m]
            if getattr(mod, a, None) is not f:
                repaired.append(f"{m}.{a} replaced")
                setattr(mod, a, f)
            if (m, a) in snap["code"] and f.__code__ is not snap["code"][(m, a)]:
                repaired.append(f"{m}.{a}.__code__ replaced")
                f.__code__ = snap["code"][(m, a)]
        if "torch" in watched_modules:
            T = watched_modules["torch"].Tensor
            for a, f in snap["tensor"].items():
                if getattr(T, a) is not f:
                    repaired.append(f"torch.Tensor.{a} replaced")
                    setattr(T, a, f)
        g = ip.user_ns
        for n, v in snap["globals"].items():
            if g.get(n, None) is not v:
                repaired.append(f"given name {n} rebound")
                g[n] = v
        extra = [t.name for t in threading.enumerate()
                 if t.is_alive() and (student_made(t) or student_made(getattr(t, "_target", None)))]
        if extra:
            repaired.append(f"background threads started by the notebook are running: {extra} (not stopped)")
        return {"grade_id": grade_id, "repaired": repaired}

    return snapshot, remember, check


_archlab_guard_snapshot, _archlab_guard_remember, _archlab_guard_check = _archlab_guard_install()
del _archlab_guard_install
