"""accel-codesign's formulation: specs, the exact (Timeloop-equivalent) model and the relaxed NLP.

The public API for notebooks and scripts::

    from formulation import load_network, load_arch, evaluate
    net = load_network("resnet18")

Subpackages: :mod:`formulation.specs` (types, loading, catalog, templates, import/export),
:mod:`formulation.model` (the exact model), :mod:`formulation.relaxed` (the NLP; imported on demand,
it loads Pyomo). Shared vocabulary: :mod:`formulation.axes` (named dimensions and tensors),
:mod:`formulation.goals` (objectives, caps, units), :mod:`formulation.technology` (energy and area
versus size).
"""

from formulation.axes import Dim, Tensor
from formulation.goals import Caps, Objective
from formulation.model import BatchEvaluation, evaluate, evaluate_batch
from formulation.specs import (
    Architecture,
    Layer,
    Mapping,
    Network,
    NetworkLayer,
    SpecError,
    load_arch,
    load_network,
    load_template,
    mapping_from_list,
    read_cases,
)

__all__ = [
    "Architecture", "BatchEvaluation", "Caps", "Dim", "Layer", "Mapping", "Network", "NetworkLayer", "Objective",
    "SpecError", "Tensor", "evaluate", "evaluate_batch", "load_arch", "load_network", "load_template",
    "mapping_from_list", "read_cases",
]
