"""Baseline co-design methods, all on the same evaluator, legal space, budget and result type."""
