"""A proven lower bound on network co-design over a hardware template (Timeloop v3.0.3 semantics).

* :mod:`formulation.bound.layer_terms`: per-layer quantities every legal mapping must pay
  (compulsory DRAM traffic, operand delivery to the MACs, spatial utilization, the energy a
  mapping needs to be that fast), each with its argument;
* :mod:`formulation.bound.reuse`: capacity-limited reuse (a Loomis-Whitney bound on the MACs a
  set of data feeds, and red-blue-pebble segments per PE and for the chip against DRAM);
* :mod:`formulation.bound.orders`: DRAM traffic the loop orders above the chip force (runs of a
  tile, sweeps of inputs, tensors resident in the register files) and the cycles it takes;
* :mod:`formulation.bound.model`: the node relaxation over a box of hardware, a convex problem in
  the log variables written once as a Pyomo model and solved with IPOPT (Pyomo's ``cyipopt``).

The branch-and-bound over the hardware box that uses it lives in :mod:`search.bnb`.
"""

from formulation.bound.layer_terms import HardwareBox, LayerBoundTerms, layer_terms
from formulation.bound.model import NodeBound, NodeModel

__all__ = ["HardwareBox", "LayerBoundTerms", "layer_terms", "NodeBound", "NodeModel"]
