"""Reading Timeloop/Accelergy input files: architecture, problem, mapping and energy reference table.

``read_timeloop(paths)`` merges the files' top-level documents as Timeloop does and returns a
:class:`TimeloopSpec` with whatever they hold: the :class:`~formulation.specs.types.Architecture`
(``architecture:`` v0.2/v0.3 tree, v0.4 ``nodes``, or v0.2 flat ``arch:``, with energies from the
``ERT:``), the :class:`~formulation.specs.types.Layer` (``problem:``) and the
:class:`~formulation.specs.types.Mapping` (``mapping:``). The submodules document each format and
what maps onto the model (:mod:`.arch`, :mod:`.ert`, :mod:`.problem`, :mod:`.mapping`); anything
that does not is a :class:`~formulation.specs.types.SpecError` of one line naming it.

A mapping needs the problem (its dimension and data-space names) and the architecture; when only
a mapping file is given with one of this project's layers, the names are those of Timeloop's
CNN-layer shape, as written by ``export-timeloop`` (``M`` for ``K``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from formulation.specs.numbers import check_arch_limits, check_layer_limits
from formulation.specs.timeloop_import.arch import arch_from_timeloop
from formulation.specs.timeloop_import.documents import is_timeloop_document, is_timeloop_file, read_documents
from formulation.specs.timeloop_import.ert import parse_ert
from formulation.specs.timeloop_import.mapping import mapping_from_timeloop
from formulation.specs.timeloop_import.problem import ProblemMap, problem_from_timeloop
from formulation.specs.types import Architecture, Layer, Mapping, SpecError


@dataclass(frozen=True)
class TimeloopSpec:
    """What a set of Timeloop files holds; absent parts are None. ``problem`` keeps the name maps."""

    name: str
    arch: Architecture | None
    problem: ProblemMap | None
    mapping: Mapping | None

    @property
    def layer(self) -> Layer | None:
        return None if self.problem is None else self.problem.layer


def _problem_dims(doc: dict) -> list[str]:
    shape = doc.get("shape")
    if isinstance(shape, dict):
        return [str(d) for d in shape.get("dimensions") or []]
    from formulation.specs.timeloop_export import TIMELOOP_DIM_ORDER

    return list(TIMELOOP_DIM_ORDER)


def problem_for_layer(layer: Layer) -> tuple[ProblemMap, list[str]]:
    """The name maps of Timeloop's CNN-layer shape for one of our layers (as ``export-timeloop`` writes it)."""
    from formulation.specs.timeloop_export import problem_document

    doc = problem_document(layer)["problem"]
    pm = problem_from_timeloop(doc, name=layer.name)
    return ProblemMap(layer=layer, dims=pm.dims, tensors=pm.tensors), _problem_dims(doc)


def read_timeloop(paths: list[str | Path], layer: Layer | None = None, arch: Architecture | None = None,
                  validate: bool = True) -> TimeloopSpec:
    """Read Timeloop files; ``layer``/``arch`` stand in for a problem/architecture the files lack.

    With both an architecture and a problem available, a mapping is validated against them
    (factors multiply to the problem, fanouts and capacities hold) unless ``validate`` is False.
    """
    if not paths:
        raise SpecError("--timeloop = []: give the Timeloop files (arch, problem, mapping, ERT)")
    docs = read_documents(paths)
    name = Path(paths[0]).parent.name or Path(paths[0]).stem
    ert = parse_ert(docs["ERT"]) if "ERT" in docs else {}
    if "architecture" in docs:
        arch = arch_from_timeloop(docs["architecture"], ert, name=name)
    problem, dims = None, []
    if "problem" in docs:
        problem = problem_from_timeloop(docs["problem"], name=name)
        dims = _problem_dims(docs["problem"])
    elif layer is not None:
        problem, dims = problem_for_layer(layer)
    # Timeloop files pass the limits of our own formats (formulation.specs.numbers): finite, int64-safe
    if arch is not None and "architecture" in docs:
        check_arch_limits(arch, "architecture")
    if problem is not None and "problem" in docs:
        check_layer_limits(problem.layer, "problem")
    mapping = None
    if "mapping" in docs:
        if arch is None or problem is None:
            missing = "architecture" if arch is None else "problem"
            raise SpecError(f"mapping = {Path(paths[0]).name}: a Timeloop mapping needs the {missing} too")
        mapping = mapping_from_timeloop(docs["mapping"], arch, problem, dims)
        if validate:
            from formulation.model.validation import validate_mapping

            validate_mapping(problem.layer, arch, mapping)
    return TimeloopSpec(name=name, arch=arch, problem=problem, mapping=mapping)


__all__ = ["TimeloopSpec", "read_timeloop", "problem_for_layer", "is_timeloop_document", "is_timeloop_file",
           "arch_from_timeloop", "problem_from_timeloop", "mapping_from_timeloop", "parse_ert", "read_documents"]
