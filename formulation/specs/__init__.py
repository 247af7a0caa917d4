"""Specs: the frozen, validated types of layers, networks, architectures and mappings, their loading
from YAML/JSON (validated once, here at the edge), the built-in catalog, architecture templates,
ONNX import and Timeloop export."""

from formulation.specs.catalog import arch_names, load_arch, load_network, load_template, network_names
from formulation.specs.loading import (
    arch_from_dict,
    case_from_dict,
    layer_from_dict,
    mapping_from_list,
    network_from_dict,
    read_cases,
    read_document,
)
from formulation.specs.types import (
    Architecture,
    GraphNode,
    Layer,
    LevelMapping,
    Mac,
    Mapping,
    Network,
    NetworkLayer,
    SpecError,
    StorageLevel,
    Technology,
)

__all__ = [
    "Architecture", "GraphNode", "Layer", "LevelMapping", "Mac", "Mapping", "Network", "NetworkLayer", "SpecError",
    "StorageLevel", "Technology", "arch_from_dict", "arch_names", "case_from_dict", "layer_from_dict",
    "load_arch", "load_network", "load_template", "mapping_from_list", "network_from_dict", "network_names",
    "read_cases", "read_document",
]
