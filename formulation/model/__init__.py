"""The exact model: Timeloop's access counts, cycles, energy, power and area of a batch of mappings
of one layer on one architecture, in matrix form (axes, encoding, nest geometry, link transfers),
with the legality checks, the report records and an independent set-based simulator."""

from formulation.model.exact import BatchEvaluation, evaluate, evaluate_batch

__all__ = ["BatchEvaluation", "evaluate", "evaluate_batch"]
