"""Changes a user makes to the Pyomo model, seen by every solver backend.

A *model hook* is a function ``hook(model, problem)`` that receives the built Pyomo model
(:func:`~formulation.relaxed.pyomo_model.build_pyomo_model`, its components named as in that
module's docstring) and the :class:`~formulation.relaxed.problem.RelaxedProblem`, and adds
constraints to the model or tightens its variables' bounds. Give it as the function itself or as
``"path/to/file.py:function"`` / ``"package.module:function"`` (what ``codesign optimize
--model-hook`` and ``codesign solve --model-hook`` take; a string also reaches worker processes).

* The Pyomo backends (``pyomo-ipopt``, ``scip``, ``pyomo:NAME``) solve the hooked model as it is.
* The NumPy callbacks (``cyipopt``) get the same changes from :func:`user_rows`: the algebraic
  model is built with the hooks applied, every active constraint the formulation did not write
  becomes an extra row after the formulation's rows (named by its Pyomo name, evaluated by Pyomo:
  its value, and its gradient by reverse-mode differentiation of its expression), and changed
  variable bounds replace the formulation's.

Deactivating the formulation's own rows or replacing its objective would leave the backends
disagreeing about the problem, so a hook that does either is rejected with a :class:`SpecError`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from formulation.specs.types import SpecError

OPTION = "--model-hook"


def load_hook(spec) -> Callable:
    """The hook function of ``spec``: a callable, ``"file.py:function"`` or ``"package.module:function"``."""
    if callable(spec):
        return spec
    where, sep, name = str(spec).rpartition(":")
    if not sep or not where or not name:
        raise SpecError(f"{OPTION} = {spec!r}: expected FILE.py:FUNCTION or MODULE:FUNCTION")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise SpecError(f"{OPTION} = {spec!r}: no file {where}")
            module_spec = importlib.util.spec_from_file_location(f"codesign_hook_{path.stem}", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except SpecError:
        raise
    except Exception as exc:  # the user's file failed to import: say which and why, in one line
        raise SpecError(f"{OPTION} = {spec!r}: importing {where} failed: {exc!r}") from None
    hook = getattr(module, name, None)
    if not callable(hook):
        raise SpecError(f"{OPTION} = {spec!r}: {where} has no function {name}")
    return hook


def apply_hooks(model, problem) -> None:
    """Run ``problem.model_hooks`` on ``model``, in order."""
    for spec in problem.model_hooks:
        try:
            load_hook(spec)(model, problem)
        except SpecError:
            raise
        except Exception as exc:
            raise SpecError(f"{OPTION} = {spec!r}: the hook failed on the model: {exc!r}") from None


@dataclass(frozen=True, eq=False)
class UserRows:
    """The rows and bounds the hooks add, evaluated through Pyomo (module docstring)."""

    names: tuple[str, ...]
    cl: np.ndarray
    cu: np.ndarray
    lower: np.ndarray          # the variables' bounds after the hooks
    upper: np.ndarray
    patterns: list             # per row: the columns it depends on
    bodies: list               # per row: its Pyomo expression
    linear: list               # per row: (constant, coefficients in pattern order) if linear, else None
    columns: np.ndarray        # the columns of every variable the nonlinear rows use
    pyomo_vars: list           # ... and those variables

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values of the rows and their Jacobian values (row by row, in ``patterns`` order) at ``x``.

        A linear row is ``constant + coefficients . x``; a nonlinear one is evaluated by Pyomo at
        ``x`` and differentiated in reverse mode.
        """
        import pyomo.environ as pyo
        from pyomo.core.expr.calculus.derivatives import Modes, differentiate

        for var, j in zip(self.pyomo_vars, self.columns):
            var.set_value(float(x[j]), skip_validation=True)
        values, jac = [], []
        for body, pattern, lin in zip(self.bodies, self.patterns, self.linear):
            if lin is not None:
                values.append(lin[0] + float(lin[1] @ x[pattern]))
                jac.append(lin[1])
            else:
                values.append(pyo.value(body))
                jac.append(np.array(differentiate(body, wrt_list=self._wrt(pattern), mode=Modes.reverse_numeric),
                                    dtype=float))
        return np.array(values, dtype=float), (np.concatenate(jac) if jac else np.zeros(0))

    def _wrt(self, pattern: np.ndarray) -> list:
        where = {int(j): var for var, j in zip(self.pyomo_vars, self.columns)}
        return [where[int(j)] for j in pattern]


def user_rows(problem) -> UserRows:
    """Build the hooked algebraic model and read back what the hooks changed (module docstring)."""
    import pyomo.environ as pyo
    from pyomo.core.expr.visitor import identify_variables
    from pyomo.repn import generate_standard_repn

    from formulation.relaxed.pyomo_model import build_pyomo_model, relaxed_constraints, relaxed_variables

    model = build_pyomo_model(problem, "algebraic")
    own = relaxed_constraints(model, problem)
    inactive = [name for name, con in own if not con.active]
    if inactive:
        raise SpecError(f"{OPTION}: the hook deactivated the formulation's row {inactive[0]}; a hook may add "
                        f"constraints and tighten bounds only")
    objectives = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objectives) != 1 or objectives[0] is not model.objective:
        raise SpecError(f"{OPTION}: the hook changed the objective; a hook may add constraints and tighten bounds only")
    variables = relaxed_variables(model, problem)
    column = {id(var): j for j, var in enumerate(variables)}
    known = {id(con) for _, con in own}
    names, cl, cu, patterns, bodies, linear = [], [], [], [], [], []
    for con in model.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        if id(con) in known:
            continue
        used = [column.get(id(v)) for v in identify_variables(con.body, include_fixed=False)]
        if None in used:
            raise SpecError(f"{OPTION}: constraint {con.name} uses a variable that is not in the formulation")
        names.append(con.name)
        cl.append(-np.inf if con.lower is None else float(pyo.value(con.lower)))
        cu.append(np.inf if con.upper is None else float(pyo.value(con.upper)))
        pattern = np.array(sorted(set(used)), dtype=np.int64)
        patterns.append(pattern)
        bodies.append(con.body)
        repn = generate_standard_repn(con.body, compute_values=True)
        if repn.is_linear():
            coef = dict(zip((column[id(v)] for v in repn.linear_vars), repn.linear_coefs))
            linear.append((float(repn.constant), np.array([float(coef.get(int(j), 0.0)) for j in pattern])))
        else:
            linear.append(None)
    lower = np.array([-np.inf if v.lb is None else float(v.lb) for v in variables])
    upper = np.array([np.inf if v.ub is None else float(v.ub) for v in variables])
    nonlinear = [p for p, lin in zip(patterns, linear) if lin is None]
    columns = np.unique(np.concatenate(nonlinear)) if nonlinear else np.zeros(0, dtype=np.int64)
    return UserRows(tuple(names), np.array(cl), np.array(cu), np.maximum(lower, problem.variables.lower),
                    np.minimum(upper, problem.variables.upper), patterns, bodies, linear, columns,
                    [variables[j] for j in columns])
