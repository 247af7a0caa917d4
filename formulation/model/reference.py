"""The NumPy reference of the exact model under the names of the public API (for tests and checks).

``reference.evaluate_batch`` / ``reference.evaluate`` are :func:`formulation.model.exact.reference_batch`
and :func:`formulation.model.exact.reference`: same signatures and results as the compiled
``formulation.model.evaluate_batch`` / ``evaluate``, computed by the readable NumPy model.
"""

from formulation.model.exact import reference as evaluate
from formulation.model.exact import reference_batch as evaluate_batch

__all__ = ["evaluate", "evaluate_batch"]
