"""A tape of a layer's statement, replayed for many layers at once with NumPy.

:func:`~formulation.relaxed.formulation.layer_statement` is written once, over an algebra.
Running it with :class:`TraceAlgebra` records its arithmetic as a list of operations (a tape);
layers whose tapes differ only in their constants are then evaluated together by
:class:`Program`, one NumPy operation per tape entry over all of them, with the value and
gradient formulas of :class:`~formulation.relaxed.sensitivity.Smooth` (forward mode). On
ResNet-18 that replaces some 7,000 ``Smooth`` objects per evaluation by a few hundred vectorized
operations.

A tape entry is ``(op, a, b, coeffs)`` with ``a``, ``b`` the operand entries: ``var`` (local
variable ``a``), ``const``, ``exp`` (of the linear form ``coeffs`` over the local variables),
``add``, ``sub``, ``mul``, ``div``, the same with a constant right operand (``addc``, ``mulc``,
``divc``) or left operand (``rsubc``), ``pos`` (the smoothed ``max(0, x)``) and ``log``.
Linear outputs (the product and mesh rows) become constant coefficients; the rest is replayed by
straight-line NumPy code generated from the tape (:attr:`Program.source`, see :meth:`Program._generate`).
"""

from __future__ import annotations

import numpy as np

from formulation.relaxed.sensitivity import POSITIVE_PART_EPS

_BINARY = ("add", "sub", "mul", "div")
_WITH_CONST = ("addc", "rsubc", "mulc", "divc")


class Sym:
    """A traced value: an index into its tape."""

    __slots__ = ("tape", "id")

    def __init__(self, tape: TraceAlgebra, index: int):
        self.tape = tape
        self.id = index

    def _binary(self, op: str, other, const_op: str, const_of=float):
        if isinstance(other, Sym):
            return self.tape.op(op, self.id, other.id)
        return self.tape.op(const_op, self.id, const=const_of(other))

    def __add__(self, other):
        return self._binary("add", other, "addc")

    __radd__ = __add__

    def __sub__(self, other):
        return self._binary("sub", other, "addc", lambda c: -float(c))

    def __rsub__(self, other):
        return self.tape.op("rsubc", self.id, const=float(other))

    def __mul__(self, other):
        return self._binary("mul", other, "mulc")

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self._binary("div", other, "divc")


class TraceAlgebra:
    """Records the statement's arithmetic over ``n`` local variables. Operations on constants are folded."""

    def __init__(self, n: int):
        self.n = n
        self.ops: list[tuple] = []      # (op, a, b, coeffs)
        self.consts: list[float | None] = []

    def op(self, op: str, a: int = -1, b: int = -1, coeffs=None, const=None) -> Sym:
        ops = self.ops
        if op in _BINARY and ops[a][0] == "const" and ops[b][0] == "const":
            return self.constant(_fold(op, self.consts[a], self.consts[b]))
        if op in _WITH_CONST and ops[a][0] == "const":
            return self.constant(_fold(op, self.consts[a], const))
        self.ops.append((op, a, b, coeffs))
        self.consts.append(const)
        return Sym(self, len(self.ops) - 1)

    def variables(self, values) -> list[Sym]:
        return [self.op("var", j) for j in range(self.n)]

    def exp_linear(self, coeffs: np.ndarray, z) -> Sym:
        c = np.zeros(self.n)
        c[:len(coeffs)] = coeffs
        return self.op("exp", coeffs=c)

    def exp(self, x: Sym) -> Sym:
        raise NotImplementedError("the layer statement takes exp of linear forms only (exp_linear)")

    def log(self, x: Sym) -> Sym:
        return self.op("log", x.id)

    def constant(self, value: float) -> Sym:
        self.ops.append(("const", -1, -1, None))
        self.consts.append(float(value))
        return Sym(self, len(self.ops) - 1)

    def positive_part(self, x: Sym) -> Sym:
        return self.op("pos", x.id)

    def signature(self, outputs: list[int]) -> tuple:
        """What two layers must share to be replayed together: every operation, constants aside."""
        return (tuple((op, a, b, None if c is None else c.tobytes()) for op, a, b, c in self.ops), tuple(outputs))


def _fold(op: str, a: float, b: float) -> float:
    """Constant folding, with Smooth's arithmetic."""
    if op in ("add", "addc"):
        return a + b
    if op == "sub":
        return a + (-1.0) * b
    if op == "rsubc":
        return (-1.0) * a + b
    if op in ("mul", "mulc"):
        return a * b
    return a / b


class Program:
    """The tape shared by a group of layers, over their stacked constants, pruned to what the outputs need."""

    def __init__(self, traces: list[TraceAlgebra], outputs: list[int]):
        first = traces[0]
        self.n = first.n
        # Outputs linear in the variables (the product and mesh rows) have constant gradients: the
        # tape computes their values only (in the statement's order of summation).
        memo: dict[int, tuple | None] = {}
        self.linear = {k: form for k, form in enumerate(_linear_form(first, traces, o, memo) for o in outputs)
                       if form is not None}
        self.linear_columns = {k: _leaves(first, outputs[k]) for k in self.linear}
        self._compile_tape(first, traces, outputs)
        deps = self._dependencies()
        self.output_deps = [np.any(self.linear[k][0] != 0, axis=0) if k in self.linear else d
                            for k, d in enumerate(deps)]
        self.source = self._generate()
        self._run = self._compile_source()

    def _compile_tape(self, first: TraceAlgebra, traces: list[TraceAlgebra], outputs: list[int]) -> None:
        """Keep what ``outputs`` need, renumbered; exponents stacked into one matrix."""
        keep = np.zeros(len(first.ops), dtype=bool)
        stack = list(outputs)
        while stack:
            j = stack.pop()
            if not keep[j]:
                keep[j] = True
                _, a, b, _ = first.ops[j]
                stack += [k for k in (a, b) if k >= 0 and first.ops[j][0] != "var"]
        index = np.flatnonzero(keep)
        renumber = -np.ones(len(first.ops), dtype=int)
        renumber[index] = np.arange(len(index))
        self.ops, self.consts, exp_rows = [], [], []
        for j in index:
            op, a, b, coeffs = first.ops[j]
            if op == "exp":
                exp_rows.append(coeffs)
                self.ops.append((op, len(exp_rows) - 1, -1))
            elif op == "var":
                self.ops.append((op, a, -1))
            else:
                self.ops.append((op, renumber[a] if a >= 0 else -1, renumber[b] if b >= 0 else -1))
            const = op == "const" or op in _WITH_CONST
            self.consts.append(np.array([t.consts[j] for t in traces]) if const else None)
        self.exp_coeffs = np.array(exp_rows).reshape(len(exp_rows), self.n)
        self._exp_t = np.ascontiguousarray(self.exp_coeffs.T)
        self.outputs = [int(renumber[o]) for o in outputs]

    def _dependencies(self) -> list[np.ndarray]:
        """Which local variables every output depends on structurally."""
        deps = []
        for op, a, b in self.ops:
            if op == "exp":
                deps.append(self.exp_coeffs[a] != 0)
            elif op == "var":
                deps.append(np.arange(self.n) == a)
            elif op == "const":
                deps.append(np.zeros(self.n, dtype=bool))
            else:
                deps.append(deps[a] | deps[b] if b >= 0 else deps[a].copy())
        return [deps[o] for o in self.outputs]

    def _generate(self) -> str:
        """Straight-line NumPy source for the tape: one line per value and per nonzero gradient.

        Generated, not interpreted: on MobileNetV2's 31-layer group a closure per operation took
        twice as long per evaluation (Python call overhead on ~400 small array operations), which
        made a whole relaxation solve about a quarter slower. Which gradients are identically zero
        is settled here, not at every evaluation. Read the result in :attr:`source`.
        """
        lines = ["def run(Z, ev, eg, U):"]
        has_grad = []
        wanted = self._needs_gradient()
        for j, (op, a, b) in enumerate(self.ops):
            ga = has_grad[a] if a >= 0 and op not in ("exp", "var") else False
            gb = has_grad[b] if b >= 0 else False
            value, grad = _formulas(op, j, a, b, ga, gb)
            grad = grad if wanted[j] else None
            lines.append(f"    v{j} = {value}")
            if grad is not None:
                lines.append(f"    g{j} = {grad}")
            has_grad.append(grad is not None)
        outs = ", ".join(f"(v{o}, {f'g{o}' if has_grad[o] else 'None'})" for o in self.outputs)
        return "\n".join(lines + [f"    return [{outs}]"])

    def _needs_gradient(self) -> np.ndarray:
        """The operations some nonlinear output depends on (the others feed linear rows only)."""
        wanted = np.zeros(len(self.ops), dtype=bool)
        stack = [o for k, o in enumerate(self.outputs) if k not in self.linear]
        while stack:
            j = stack.pop()
            if not wanted[j]:
                wanted[j] = True
                op, a, b = self.ops[j]
                stack += [k for k in (a, b) if k >= 0 and op not in ("var", "exp")]
        return wanted

    def _compile_source(self):
        env = {"np": np, "EPS2": POSITIVE_PART_EPS ** 2}
        for j, c in enumerate(self.consts):
            if c is not None:
                env[f"c{j}"], env[f"cc{j}"] = c, c[:, None]
        exec(compile(self.source, "<relaxation tape>", "exec"), env)
        return env["run"]

    def run(self, Z: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Values ``[B]`` and gradients ``[B, n]`` (None when constant) of the outputs at the rows of ``Z``."""
        ev = np.exp(Z @ self._exp_t)
        units = np.broadcast_to(np.eye(self.n), (len(Z), self.n, self.n))
        tape = self._run(Z, ev, ev[:, :, None] * self.exp_coeffs[None], units)
        return [(np.broadcast_to(v, Z.shape[:1]), self.linear[k][0] if k in self.linear else g)
                for k, (v, g) in enumerate(tape)]


def _leaves(trace: TraceAlgebra, j: int) -> list[int]:
    """The variables entry ``j`` reads, in the order the statement writes them (left to right, once each)."""
    op, a, b, _ = trace.ops[j]
    if op == "var":
        return [a]
    out = []
    for k in (a, b):
        if k >= 0 and op != "exp":
            out += [v for v in _leaves(trace, k) if v not in out]
    return out


def _linear_form(trace: TraceAlgebra, traces: list[TraceAlgebra], j: int, memo: dict) -> tuple | None:
    """Entry ``j`` as ``(coefficients [B, n], constant [B])`` over the batch if it is linear in the
    variables, else None (constants from every layer's trace)."""
    if j in memo:
        return memo[j]
    op, a, b, _ = trace.ops[j]
    batch = len(traces)
    c = np.array([t.consts[j] for t in traces]) if trace.consts[j] is not None else None
    form = None
    if op == "var":
        coef = np.zeros((batch, trace.n))
        coef[:, a] = 1.0
        form = (coef, np.zeros(batch))
    elif op == "const":
        form = (np.zeros((batch, trace.n)), c)
    elif op in ("add", "sub"):
        fa, fb = _linear_form(trace, traces, a, memo), _linear_form(trace, traces, b, memo)
        if fa is not None and fb is not None:
            sign = 1.0 if op == "add" else -1.0
            form = (fa[0] + sign * fb[0], fa[1] + sign * fb[1])
    elif op in _WITH_CONST:
        fa = _linear_form(trace, traces, a, memo)
        if fa is not None:
            form = {"addc": lambda: (fa[0], fa[1] + c), "rsubc": lambda: (-fa[0], c - fa[1]),
                    "mulc": lambda: (fa[0] * c[:, None], fa[1] * c),
                    "divc": lambda: (fa[0] / c[:, None], fa[1] / c)}[op]()
    memo[j] = form
    return form


def _formulas(op: str, j: int, a: int, b: int, ga: bool, gb: bool) -> tuple[str, str | None]:
    """Value and gradient (None when identically zero) of operation ``j``, in Smooth's arithmetic."""
    va, vb, gra, grb = f"v{a}", f"v{b}", f"g{a}", f"g{b}"
    if op == "var":
        return f"Z[:, {a}]", f"U[:, {a}]"
    if op == "exp":
        return f"ev[:, {a}]", f"eg[:, {a}]"
    if op == "const":
        return f"c{j}", None
    if op == "add":
        return f"{va} + {vb}", (f"{gra} + {grb}" if ga and gb else gra if ga else grb if gb else None)
    if op == "sub":
        return f"{va} + (-1.0) * {vb}", (f"{gra} + (-1.0) * {grb}" if ga and gb else gra if ga
                                         else f"(-1.0) * {grb}" if gb else None)
    if op in ("mul", "div"):
        other = va if op == "mul" else f"(-{va})"
        terms = ([f"{gra} * {vb}[:, None]"] if ga else []) + ([f"{grb} * {other}[:, None]"] if gb else [])
        grad = " + ".join(terms) or None
        if grad is not None and op == "div":
            grad = f"({grad}) / ({vb} ** 2)[:, None]"
        return (f"{va} * {vb}" if op == "mul" else f"{va} / {vb}"), grad
    if op == "pos":  # (x + sqrt(x^2 + eps^2)) / 2
        root = f"np.sqrt({va} ** 2 + EPS2)"
        return f"({va} + {root}) / 2", (f"{gra} * ((1 + {va} / {root}) / 2)[:, None]" if ga else None)
    unary = {"addc": (f"{va} + c{j}", gra), "rsubc": (f"(-1.0) * {va} + c{j}", f"(-1.0) * {gra}"),
             "mulc": (f"{va} * c{j}", f"{gra} * cc{j}"), "divc": (f"{va} / c{j}", f"{gra} / cc{j}"),
             "log": (f"np.log({va})", f"{gra} / {va}[:, None]")}
    value, grad = unary[op]
    return value, (grad if ga else None)
