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
:meth:`Program.listing` prints the replayed operations.
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
        # Outputs linear in the variables (the product and mesh rows) become constant coefficients.
        memo: dict[int, tuple | None] = {}
        forms = [_linear_form(first, traces, o, memo) for o in outputs]
        self.linear = [(k, form) for k, form in enumerate(forms) if form is not None]
        self.tape_outputs = [k for k, form in enumerate(forms) if form is None]
        self._compile_tape(first, traces, [outputs[k] for k in self.tape_outputs])
        deps = [None] * len(outputs)
        for k, form in self.linear:
            deps[k] = np.any(form[0] != 0, axis=0)
        for k, d in zip(self.tape_outputs, self._dependencies()):
            deps[k] = d
        self.output_deps = deps
        self._steps = self._build_steps()

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

    def _build_steps(self) -> list:
        """One closure per operation: ``step(V, G, ctx)`` sets the operation's value and gradient.

        Which gradients are identically zero (constants) is settled here, not at every evaluation.
        """
        steps, has_grad = [], []
        for j, (op, a, b) in enumerate(self.ops):
            ga = has_grad[a] if a >= 0 and op not in ("exp", "var") else False
            gb = has_grad[b] if b >= 0 else False
            step = _step(j, op, a, b, self.consts[j], ga, gb)
            steps.append(step)
            has_grad.append(op in ("exp", "var") or ga or gb)
        return steps

    def run(self, Z: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Values ``[B]`` and gradients ``[B, n]`` (None when constant) of the outputs at the rows of ``Z``."""
        ev = np.exp(Z @ self._exp_t)
        units = np.broadcast_to(np.eye(self.n), (len(Z), self.n, self.n))
        ctx = (Z, ev, ev[:, :, None] * self.exp_coeffs[None], units)
        V, G = [None] * len(self._steps), [None] * len(self._steps)
        for step in self._steps:
            step(V, G, ctx)
        out: list = [None] * (len(self.linear) + len(self.tape_outputs))
        for k, o in zip(self.tape_outputs, self.outputs):
            out[k] = (np.broadcast_to(V[o], Z.shape[:1]), G[o])
        for k, (coef, const) in self.linear:
            out[k] = (np.einsum("bn,bn->b", coef, Z) + const, coef)
        return out

    def listing(self) -> str:
        """The replayed operations, one a line (``v12 = mul v3 v11``)."""
        lines = []
        for j, (op, a, b) in enumerate(self.ops):
            args = [f"v{x}" for x in (a, b) if x >= 0] if op not in ("var", "exp") else [str(a)]
            lines.append(f"v{j} = {op} {' '.join(args)}" + (" c" if self.consts[j] is not None else ""))
        outs = ", ".join(f"v{o}" for o in self.outputs)
        return "\n".join(lines + [f"outputs: {outs}"])


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


def _step(j: int, op: str, a: int, b: int, c, ga: bool, gb: bool):
    """The closure of operation ``j``: it writes ``V[j]`` and ``G[j]`` (None when constant) from its operands.

    ``ctx`` is ``(Z, exp values, exp gradients, unit gradients)`` of the batch; ``c`` the constants ``[B]``.
    """
    cc = None if c is None else c[:, None]
    if op in ("var", "exp", "const"):
        def leaf(V, G, ctx):
            if op == "var":
                V[j], G[j] = ctx[0][:, a], ctx[3][:, a]
            elif op == "exp":
                V[j], G[j] = ctx[1][:, a], ctx[2][:, a]
            else:
                V[j] = c
        return leaf
    if op in _WITH_CONST or op == "log":
        value, grad = _unary(op, a, c, cc)
        if ga:
            def unary(V, G, ctx):
                V[j], G[j] = value(V), grad(V, G)
        else:
            def unary(V, G, ctx):
                V[j] = value(V)
        return unary
    if op in ("add", "sub"):
        sign = 1.0 if op == "add" else -1.0
        if ga and gb:
            def both(V, G, ctx):
                V[j], G[j] = V[a] + sign * V[b], G[a] + sign * G[b]
            return both

        def one(V, G, ctx):
            V[j] = V[a] + sign * V[b]
            G[j] = G[a] if ga else (None if not gb else G[b] if sign == 1.0 else -G[b])
        return one
    if op in ("mul", "div"):
        return _product(j, op, a, b, ga, gb)
    if op == "pos":  # (x + sqrt(x^2 + eps^2)) / 2
        def pos(V, G, ctx):
            root = np.sqrt(V[a] ** 2 + POSITIVE_PART_EPS ** 2)
            V[j], G[j] = (V[a] + root) / 2, (G[a] * ((1 + V[a] / root) / 2)[:, None] if ga else None)
        return pos
    raise ValueError(f"tape operation {op!r}")


def _unary(op: str, a: int, c, cc):
    """Value and gradient functions of an operation with one traced operand."""
    return {"addc": (lambda V: V[a] + c, lambda V, G: G[a]),
            "rsubc": (lambda V: (-1.0) * V[a] + c, lambda V, G: (-1.0) * G[a]),
            "mulc": (lambda V: V[a] * c, lambda V, G: G[a] * cc),
            "divc": (lambda V: V[a] / c, lambda V, G: G[a] / cc),
            "log": (lambda V: np.log(V[a]), lambda V, G: G[a] / V[a][:, None])}[op]


def _product(j: int, op: str, a: int, b: int, ga: bool, gb: bool):
    """``x_a * x_b`` or ``x_a / x_b`` with the product and quotient rules."""
    if op == "mul":
        def mul(V, G, ctx):
            va, vb = V[a], V[b]
            V[j] = va * vb
            G[j] = (G[a] * vb[:, None] + G[b] * va[:, None] if ga and gb else G[a] * vb[:, None] if ga
                    else G[b] * va[:, None] if gb else None)
        return mul

    def div(V, G, ctx):
        va, vb = V[a], V[b]
        V[j] = va / vb
        if ga or gb:
            num = (G[a] * vb[:, None] - G[b] * va[:, None] if ga and gb else G[a] * vb[:, None] if ga
                   else -(G[b] * va[:, None]))
            G[j] = num / (vb ** 2)[:, None]
    return div
