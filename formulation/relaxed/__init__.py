"""The relaxed model and the NLP: the per-layer costs in log form with analytic gradients
(:mod:`~formulation.relaxed.sensitivity`), the network-level formulation
(:mod:`~formulation.relaxed.problem`), its Pyomo rendering (:mod:`~formulation.relaxed.pyomo_model`),
the solver backends by name (:mod:`~formulation.relaxed.solvers`) and the ε-constraint and
weighted-sum sweeps (:mod:`~formulation.relaxed.sweep`). Pyomo and the solvers load on first use."""
