"""Backend ``pyomo-ipopt``: IPOPT through Pyomo's cyipopt interface, on the grey-box Pyomo model.

The model is :func:`~formulation.relaxed.pyomo_model.build_pyomo_model` in ``"greybox"`` mode
(its hooks applied): linear rows and totals as Pyomo expressions, each layer's costs as a
PyNumero grey box fed by the NumPy sensitivities. The grey boxes give first derivatives only, so
IPOPT runs with a limited-memory (L-BFGS) Hessian. Pyomo, PyNumero and cyipopt are imported on
first use.
"""

from __future__ import annotations

from formulation.relaxed.solvers.base import register
from formulation.relaxed.solvers.pyomo_any import PyomoSolverBackend


class PyomoIpoptBackend(PyomoSolverBackend):
    mode = "greybox"

    def __init__(self):
        super().__init__("cyipopt", name="pyomo-ipopt")
        self.description = "IPOPT via Pyomo's cyipopt interface on the grey-box model"

    def unavailable_reason(self) -> str | None:
        try:
            import cyipopt  # noqa: F401
        except ImportError as exc:
            return f"cyipopt is not importable ({exc})"
        try:
            from pyomo.contrib.pynumero.asl import AmplInterface
        except ImportError as exc:
            return f"Pyomo's pynumero is not importable ({exc})"
        if not AmplInterface.available():
            return "Pyomo's pynumero ASL library is not built (make install builds it)"
        return None

    def solver_options(self, max_iter, time_limit_s, tol, options) -> dict:
        return super().solver_options(max_iter, time_limit_s, tol, {"hessian_approximation": "limited-memory",
                                                                    **options})


register(PyomoIpoptBackend())
