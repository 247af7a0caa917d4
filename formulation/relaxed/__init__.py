"""The relaxed model and the NLP: the per-layer costs in log form with analytic gradients
(:mod:`~formulation.relaxed.sensitivity`), the network-level formulation stated once over an
algebra with named variable and row blocks (:mod:`~formulation.relaxed.formulation`,
:mod:`~formulation.relaxed.layout`), its renderings as NumPy callbacks
(:mod:`~formulation.relaxed.problem`, traced by :mod:`~formulation.relaxed.tape` and
:mod:`~formulation.relaxed.compiled`) and as a Pyomo model (:mod:`~formulation.relaxed.pyomo_model`),
user changes to that model (:mod:`~formulation.relaxed.hooks`), the solver backends by name
(:mod:`~formulation.relaxed.solvers`) and the ε-constraint and weighted-sum sweeps
(:mod:`~formulation.relaxed.sweep`). Pyomo and the solvers load on first use."""
