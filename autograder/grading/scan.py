"""The static scan: what student code has no business doing in a course notebook.

A finding is a flag for an instructor to review, never a verdict: each says what, the cell
and the line. Two passes over every code cell the student wrote or changed:

1. Lines against patterns (`PATTERNS`): IPython internals, interpreter hooks, patched
   builtins or checking functions, paths outside its folder, process control, swallowed
   interrupts, spelled out in the source.
2. The cell's syntax tree (after IPython's own transformation of magics and `!` commands),
   which sees through spelling: module aliases (`import gc as g`), dynamic imports
   (`__import__`, `importlib.import_module`), attribute lookups by name (`getattr`,
   `setattr`, `delattr`, `hasattr`, `operator.attrgetter`, `vars(x)[...]`, `x.__dict__[...]`) and
   code run from strings (`eval`, `exec`, `compile`). Names are folded when they are built
   from constants ("g" + "c", f-strings of constants, "".join of constants, chr(103), slices,
   str methods, a name assigned a constant once in the cell); a folded name is judged like a
   written one, a string given to exec/eval is scanned as code. A name that cannot be folded
   (read from a file, decoded from bytes, returned by a function) is flagged as computed.

Limits, stated plainly: the scan reads code, it does not run it. It knows the sensitive names
listed here; code that reaches the grader's guard through some other object of an allowed
library, or through data deserialised by one, is not recognised as such. The guard and the jail
do not depend on it (autograder/README.md).
"""

import ast
import re

from autograder import contract

# Pass 1: (pattern, what) over each line of the source as written.
PATTERNS = [
    (r"\bget_ipython\b|\binput_transformers?\w*|\bast_transformers\b|\bset_custom_exc\b|\bevents\.register\b|\bregister_magic",
     "touches IPython's execution machinery"),
    (r"\bsys\.(settrace|setprofile|meta_path|path_hooks|excepthook|displayhook|modules)\b|\bctypes\b|\bgc\.get_referr|__closure__|__code__|_archlab_guard",
     "installs interpreter hooks or inspects the grader"),
    (r"\b__builtins__\b|\bimport\s+builtins\b|\bbuiltins\.",
     "patches builtins"),
    (r"\b(torch|np|numpy|math|F|checks|archlab\.checks|torch\.testing|np\.testing|numpy\.testing)\.[A-Za-z_][\w.]*\s*=(?!=)|\bsetattr\(\s*(torch|np|numpy|math|archlab|checks|F)\b",
     "patches library or checking functions"),
    (r"^\s*(assert_close|assert_shape|check_shape|no_fused_attention|allclose)\s*=(?!=)",
     "rebinds a checking function"),
    (r"\.\./|['\"]/(work|root|home|etc|tmp|proc|var|opt|srv|mnt|media|run)\b|\bsolutions\b|gradebook|\bos\.chdir\b|\bshutil\.(rmtree|copy|move)",
     "reaches for files outside its folder"),
    (r"\bos\._exit\b|\bos\.kill\b|\bos\.fork\b|\bsubprocess\b|\bos\.system\b|\bsignal\.",
     "controls processes or signals"),
    (r"\bexcept\s+(KeyboardInterrupt|BaseException)\b",
     "swallows interrupts"),
]

# Pass 2: modules a course notebook never needs; importing one (however spelled) is a flag.
MODULES = {
    "gc": "inspects the grader (the garbage collector's view of every object)",
    "ctypes": "installs interpreter hooks or inspects the grader (raw memory)",
    "inspect": "inspects the grader (frames and closures)",
    "builtins": "patches builtins",
    "marshal": "runs code built at run time (code objects)",
    "subprocess": "controls processes or signals",
    "signal": "controls processes or signals",
}
# Attribute names that reach the grader, frames or hooks on whatever object they are read from
# (no library a notebook uses has an attribute of these names for anything else).
ATTRIBUTES = {
    **{a: "inspects the grader" for a in (
        "get_referrers", "get_referents", "get_objects", "_getframe", "f_back", "f_globals", "f_locals",
        "f_builtins", "tb_frame", "gi_frame", "cr_frame", "__closure__", "__code__", "__globals__",
        "__subclasses__", "__builtins__")},
    **{a: "touches IPython's execution machinery" for a in (
        "input_transformers_cleanup", "input_transformers_post", "ast_transformers", "set_custom_exc")},
    **{a: "installs interpreter hooks" for a in (
        "settrace", "setprofile", "meta_path", "path_hooks", "excepthook", "displayhook")},
    "_exit": "controls processes or signals",
}
# Names that are only sensitive on their own module (torch.stack and json.loads are fine).
DOTTED = {
    **{f"sys.{a}": "installs interpreter hooks" for a in ("modules", "addaudithook")},
    **{f"os.{a}": "controls processes or signals" for a in (
        "kill", "killpg", "fork", "forkpty", "system", "popen", "execv", "execve", "execvp", "execl",
        "spawnv", "spawnl", "posix_spawn")},
    **{f"inspect.{a}": "inspects the grader" for a in ("stack", "currentframe", "getclosurevars")},
    **{f"{m}.{a}": "runs code built at run time" for m in ("pickle", "dill", "marshal") for a in ("loads", "load")},
    **{f"types.{a}": "runs code built at run time" for a in ("FunctionType", "CodeType", "LambdaType")},
    **{f"get_ipython.{a}": "touches IPython's execution machinery" for a in (
        "run_cell", "run_cell_async", "run_code", "run_ast_nodes", "transform_cell", "showtraceback",
        "events", "user_ns", "user_global_ns")},
    **{f"get_ipython.{a}": "controls processes or signals: runs a shell command" for a in ("system", "getoutput")},
}
GUARD_PREFIX = "_archlab_guard"
DYNAMIC_IMPORTS = {"__import__", "importlib.import_module", "importlib.__import__", "builtins.__import__"}
NAME_LOOKUPS = {"getattr", "setattr", "delattr", "hasattr", "builtins.getattr", "builtins.setattr",
                "operator.attrgetter", "object.__getattribute__", "object.__setattr__"}
CODE_FROM_STRINGS = {"eval", "exec", "compile", "builtins.eval", "builtins.exec"}
SHELL_MAGICS = {"bash", "sh", "script", "system", "sx", "perl", "ruby"}


def scan(nb, locked_ids, course_sources=()):
    """Flags for every code cell of nb the student wrote (not locked, not as shipped)."""
    flags = []
    for i, c in enumerate(nb.cells):
        grade_id = contract.grade_id(c)
        if c.cell_type != "code" or grade_id in locked_ids or c.source in course_sources:
            continue
        flags += scan_source(c.source, grade_id or f"cell {i}")
    return flags


def scan_source(src, where):
    flags = []
    for pattern, what in PATTERNS:
        for n, line in enumerate(src.splitlines(), 1):
            if re.search(pattern, line):
                flags.append(f"{what}: {where} line {n}: {line.strip()[:120]}")
                break
    lines = src.splitlines()
    seen = set()
    for n, what in Tree(src).findings():
        if what not in seen and not any(f.startswith(what) for f in flags):
            seen.add(what)
            line = lines[n - 1].strip()[:120] if 0 < n <= len(lines) else ""
            flags.append(f"{what}: {where} line {n}: {line}")
    return flags


def _python(src):
    """The cell as Python (IPython magics and ! commands made into calls), or None."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        src = TransformerManager().transform_cell(src)
    except Exception:   # the kernel will report a cell it cannot run; nothing to scan here
        pass
    try:
        return ast.parse(src)
    except (SyntaxError, ValueError):
        return None


class Tree:
    """The findings of one cell's syntax tree: [(line, what)]."""

    def __init__(self, src, depth=0):
        self.tree, self.depth = _python(src), depth
        self.aliases = {}      # local name -> dotted module or object path ("g" -> "gc")
        self.constants = {}    # local name -> the one constant string it is ever assigned
        self.out = []

    def findings(self):
        if self.tree is None:
            return []
        self._bindings()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.Attribute):
                self._name(node, node.attr, self.dotted(node.value))
            elif isinstance(node, ast.Subscript) and self._is_namespace(node.value):
                self._looked_up(node, node.slice, "reads a namespace by a computed key",
                                self.dotted(node.value.value) if isinstance(node.value, ast.Attribute)
                                else self.dotted(node.value.args[0]) if getattr(node.value, "args", None) else None)
        return self.out

    # -- what names stand for -------------------------------------------------------------
    def _bindings(self):
        assigned = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self._module(node, a.name)
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                self._module(node, node.module)
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                    self._name(node, a.name, node.module)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        assigned.setdefault(t.id, []).append(node.value)
            elif isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, ast.Name):
                assigned.setdefault(node.target.id, []).append(None)   # many values: not a constant
        for name, values in assigned.items():   # one assignment of a constant: the name is that constant
            if len(values) == 1 and values[0] is not None:
                value = self.fold(values[0])
                if value is not None:
                    self.constants[name] = value
        for name, values in assigned.items():   # x = __import__("gc"), x = gc, x = getattr(gc, "...")
            if len(values) == 1 and values[0] is not None:
                target = self._imported(values[0]) or self.dotted(values[0])
                if target:
                    self.aliases[name] = target

    def fold(self, node):
        """The string a node always evaluates to, when it is built from constants; else None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            a, b = self.fold(node.left), self.fold(node.right)
            return a + b if a is not None and b is not None else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            s, k = self.fold(node.left), node.right
            if s is not None and isinstance(k, ast.Constant) and isinstance(k.value, int) and 0 <= k.value < 100:
                return s * k.value
        if isinstance(node, ast.JoinedStr):
            parts = [self.fold(v.value if isinstance(v, ast.FormattedValue) else v) for v in node.values]
            return "".join(parts) if all(p is not None for p in parts) else None
        if isinstance(node, ast.Subscript):
            s = self.fold(node.value)
            if s is not None and isinstance(node.slice, ast.Slice):
                bounds = [None if b is None else _int(b) for b in (node.slice.lower, node.slice.upper, node.slice.step)]
                if all(b is None or isinstance(b, int) for b in bounds) and _bad not in bounds and bounds[2] != 0:
                    return s[slice(*bounds)]
            index = _int(node.slice)
            if s is not None and isinstance(index, int) and -len(s) <= index < len(s):
                return s[index]
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id == "chr" and len(node.args) == 1:
                k = _int(node.args[0])
                if isinstance(k, int) and 0 <= k < 0x110000:
                    return chr(k)
            if isinstance(f, ast.Name) and f.id == "str" and len(node.args) == 1:
                return self.fold(node.args[0])
            if isinstance(f, ast.Attribute):
                base = self.fold(f.value)
                if base is not None and f.attr == "join" and len(node.args) == 1:
                    items = node.args[0]
                    if isinstance(items, (ast.List, ast.Tuple)):
                        parts = [self.fold(e) for e in items.elts]
                        return base.join(parts) if all(p is not None for p in parts) else None
                    inner = self.fold(items)
                    return base.join(inner) if inner is not None else None
                args = [self.fold(a) for a in node.args]
                if base is not None and f.attr in ("lower", "upper", "strip", "lstrip", "rstrip", "replace",
                                                   "format", "removeprefix", "removesuffix", "title") \
                        and all(a is not None for a in args) and not node.keywords:
                    try:
                        return getattr(base, f.attr)(*args)
                    except (TypeError, ValueError, IndexError, KeyError):
                        return None
        return None

    def dotted(self, node):
        """"gc.get_referrers" for `g.get_referrers` after `g = __import__("gc")`; None if not a path."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call) and self.dotted(node.func) == "get_ipython" and not node.args:
            return "get_ipython"
        if (isinstance(node, ast.Call) and self.dotted(node.func) in ("getattr", "builtins.getattr")
                and len(node.args) >= 2):
            base, name = self.dotted(node.args[0]), self.fold(node.args[1])
            return f"{base}.{name}" if base and name else None
        return self._imported(node)

    def _imported(self, node):
        """The module a dynamic import call imports, when its name folds to a constant."""
        if isinstance(node, ast.Call) and node.args and self.dotted(node.func) in DYNAMIC_IMPORTS:
            return self.fold(node.args[0])
        return None

    # -- findings ------------------------------------------------------------------------
    def _flag(self, node, what):
        self.out.append((getattr(node, "lineno", 0), what))

    def _module(self, node, module):
        top = module.split(".")[0]
        if top in MODULES:
            self._flag(node, f"{MODULES[top]}: imports {module}")

    def _name(self, node, name, owner=None):
        """An attribute `name` read from `owner` (a dotted path, or None when unknown)."""
        if name in ATTRIBUTES:
            self._flag(node, f"{ATTRIBUTES[name]}: uses {name}")
        elif name.startswith(GUARD_PREFIX):
            self._flag(node, f"inspects the grader: uses {name}")
        elif owner and f"{owner}.{name}" in DOTTED:
            self._flag(node, f"{DOTTED[owner + '.' + name]}: uses {owner}.{name}")

    def _is_namespace(self, node):
        """vars(x), globals(), x.__dict__: a namespace read with [key]."""
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return True
        return isinstance(node, ast.Call) and self.dotted(node.func) in ("vars", "globals", "locals")

    def _looked_up(self, node, name_node, computed_what, owner=None):
        name = self.fold(name_node)
        if name is None:
            self._flag(node, computed_what)
        else:
            self._name(node, name, owner)

    def _call(self, node):
        func = self.dotted(node.func)
        if func in DYNAMIC_IMPORTS:
            name = self.fold(node.args[0]) if node.args else None
            if name is None:
                self._flag(node, "imports a module by a computed name")
            else:
                self._module(node, name)
        elif func == "operator.attrgetter" and node.args:
            self._looked_up(node, node.args[0], "looks up an attribute by a computed name")
        elif func in NAME_LOOKUPS and len(node.args) >= 2:
            self._looked_up(node, node.args[1], "looks up an attribute by a computed name", self.dotted(node.args[0]))
        elif func in CODE_FROM_STRINGS and node.args:
            code = self.fold(node.args[0])
            if code is None or self.depth > 3:
                self._flag(node, "runs code built at run time (eval/exec/compile)")
            else:   # a constant string of code: scan it as code
                self.out += [(node.lineno, what) for _, what in Tree(code, self.depth + 1).findings()]
        elif func == "get_ipython.run_cell_magic" and node.args and self.fold(node.args[0]) in SHELL_MAGICS:
            self._flag(node, "controls processes or signals: runs a shell command")


_bad = object()


def _int(node):
    """The int a node is (a literal, possibly negated), else _bad."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int(node.operand)
        return -inner if inner is not _bad else _bad
    return _bad
