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
        self.n = first.n
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
        self.output_deps = self._dependencies()
        self._steps = self._build_steps()

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
        """One closure per operation: ``step(V, G, ctx) -> (value, gradient or None)``.

        Which gradients are identically zero (constants) is settled here, not at every evaluation.
        """
        steps, has_grad = [], []
        for j, (op, a, b) in enumerate(self.ops):
            ga = has_grad[a] if a >= 0 and op not in ("exp", "var") else False
            gb = has_grad[b] if b >= 0 else False
            step = _step(op, a, b, self.consts[j], ga, gb)
            steps.append(step)
            has_grad.append(op in ("exp", "var") or ga or gb)
        return steps

    def run(self, Z: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Values ``[B]`` and gradients ``[B, n]`` (None when constant) of the outputs at the rows of ``Z``."""
        ev = np.exp(Z @ self._exp_t)
        ctx = (Z, ev, ev[:, :, None] * self.exp_coeffs[None], np.eye(self.n))
        V, G = [], []
        for step in self._steps:
            v, g = step(V, G, ctx)
            V.append(v)
            G.append(g)
        return [(np.broadcast_to(V[o], Z.shape[:1]), G[o]) for o in self.outputs]

    def listing(self) -> str:
        """The replayed operations, one a line (``v12 = mul v3 v11``)."""
        lines = []
        for j, (op, a, b) in enumerate(self.ops):
            args = [f"v{x}" for x in (a, b) if x >= 0] if op not in ("var", "exp") else [str(a)]
            lines.append(f"v{j} = {op} {' '.join(args)}" + (" c" if self.consts[j] is not None else ""))
        outs = ", ".join(f"v{o}" for o in self.outputs)
        return "\n".join(lines + [f"outputs: {outs}"])


def _step(op: str, a: int, b: int, c, ga: bool, gb: bool):
    """The closure of one operation (see :meth:`Program._build_steps`); ``c`` the constants ``[B]``."""
    cc = None if c is None else c[:, None]
    if op == "var":
        return lambda V, G, ctx: (ctx[0][:, a], np.broadcast_to(ctx[3][a], ctx[0].shape))
    if op == "exp":
        return lambda V, G, ctx: (ctx[1][:, a], ctx[2][:, a])
    if op == "const":
        return lambda V, G, ctx: (c, None)
    if op == "add":
        grad = _sum(a, b, ga, gb, 1.0)
        return lambda V, G, ctx: (V[a] + V[b], grad(G))
    if op == "sub":
        grad = _sum(a, b, ga, gb, -1.0)
        return lambda V, G, ctx: (V[a] + (-1.0) * V[b], grad(G))
    if op == "mul":
        def mul(V, G, ctx):
            terms = ([G[a] * V[b][:, None]] if ga else []) + ([G[b] * V[a][:, None]] if gb else [])
            return V[a] * V[b], (terms[0] + terms[1] if len(terms) == 2 else terms[0] if terms else None)
        return mul
    if op == "div":
        def div(V, G, ctx):
            terms = ([G[a] * V[b][:, None]] if ga else []) + ([G[b] * (-V[a])[:, None]] if gb else [])
            grad = (terms[0] + terms[1] if len(terms) == 2 else terms[0]) / (V[b] ** 2)[:, None] if terms else None
            return V[a] / V[b], grad
        return div
    if op == "addc":
        return lambda V, G, ctx: (V[a] + c, G[a] if ga else None)
    if op == "rsubc":
        return lambda V, G, ctx: ((-1.0) * V[a] + c, (-1.0) * G[a] if ga else None)
    if op == "mulc":
        return lambda V, G, ctx: (V[a] * c, G[a] * cc if ga else None)
    if op == "divc":
        return lambda V, G, ctx: (V[a] / c, G[a] / cc if ga else None)
    if op == "log":
        return lambda V, G, ctx: (np.log(V[a]), G[a] / V[a][:, None] if ga else None)
    if op == "pos":  # (x + sqrt(x^2 + eps^2)) / 2
        def pos(V, G, ctx):
            root = np.sqrt(V[a] ** 2 + POSITIVE_PART_EPS ** 2)
            return (V[a] + root) / 2, (G[a] * ((1 + V[a] / root) / 2)[:, None] if ga else None)
        return pos
    raise ValueError(f"tape operation {op!r}")


def _sum(a: int, b: int, ga: bool, gb: bool, sign: float):
    """The gradient of ``x_a + sign x_b`` as a function of the gradients ``G``."""
    if ga and gb:
        return lambda G: G[a] + sign * G[b]
    if ga:
        return lambda G: G[a]
    if gb:
        return (lambda G: G[b]) if sign == 1.0 else (lambda G: sign * G[b])
    return lambda G: None
