"""Networks as data-flow graphs: building them from occurrences, the networkx view, and drawing.

A :class:`~formulation.specs.types.Network` lists its distinct layers (with counts) and, in
``nodes``, every occurrence with the occurrences it reads. :func:`network_from_occurrences` is the
one place where occurrences become a network: occurrences whose layers have equal shapes (every
field but the name) share one distinct layer, named after the first of them, whose count is the
sum of their ``parallel`` runs; distinct layers are listed in order of first occurrence, so a
topological order of the occurrences also orders the layers. The ONNX import
(:mod:`formulation.specs.onnx_import`) and the YAML loader (``inputs:`` per layer) both use it.

:func:`network_graph` builds the ``networkx.DiGraph`` on demand (the network stays frozen):
nodes are occurrences with attributes ``layer`` (the distinct layer's name), ``parallel`` and
``macs``; an edge ``u -> v`` says ``v`` reads ``u``'s output. :func:`write_graph` writes it as
Graphviz DOT (``.dot``/``.gv``, plain text, no Graphviz needed) or draws it with matplotlib
(``.png``, ``.svg``, ``.pdf``), layer by layer in topological generations.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from formulation.specs.types import GraphNode, Layer, Network, NetworkLayer, SpecError

if TYPE_CHECKING:
    import networkx as nx

SHAPE_FIELDS = tuple(f.name for f in fields(Layer) if f.name != "name")
DOT_SUFFIXES = (".dot", ".gv")
IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def shape_key(layer: Layer) -> tuple[int, ...]:
    """Every field of a layer but its name: layers with equal keys are the same computation."""
    return tuple(getattr(layer, f) for f in SHAPE_FIELDS)


def network_from_occurrences(name: str, occurrences: list[tuple[Layer, tuple[str, ...], int]]) -> Network:
    """A network from ``(layer, inputs, parallel)`` occurrences in a topological order.

    Each occurrence's node is named ``layer.name``; equal shapes are merged (module docstring).
    """
    first: dict[tuple, Layer] = {}
    counts: dict[tuple, int] = {}
    nodes = []
    for layer, inputs, parallel in occurrences:
        key = shape_key(layer)
        first.setdefault(key, layer)
        counts[key] = counts.get(key, 0) + parallel
        nodes.append(GraphNode(layer.name, first[key].name, tuple(inputs), parallel))
    layers = tuple(NetworkLayer(first[key], counts[key]) for key in first)
    return Network(name=name, layers=layers, nodes=tuple(nodes))


def network_graph(network: Network) -> nx.DiGraph:
    """The occurrences of ``network`` and their data dependencies as a ``networkx.DiGraph``."""
    import networkx as nx

    layers = {entry.layer.name: entry.layer for entry in network.layers}
    graph = nx.DiGraph(name=network.name)
    for node in network.graph_nodes:
        graph.add_node(node.name, layer=node.layer, parallel=node.repeat, macs=layers[node.layer].macs * node.repeat)
        graph.add_edges_from((src, node.name) for src in node.inputs)
    return graph


def evaluation_order(network: Network) -> list[str]:
    """Occurrence names in evaluation order: the listed order, which is topological (checked on construction)."""
    return [node.name for node in network.graph_nodes]


def consumers(network: Network) -> dict[str, list[str]]:
    """For every occurrence, the occurrences that read its output, in evaluation order."""
    out: dict[str, list[str]] = {node.name: [] for node in network.graph_nodes}
    for node in network.graph_nodes:
        for src in node.inputs:
            out[src].append(node.name)
    return out


def _label(network: Network, node: GraphNode) -> str:
    layer = next(e.layer for e in network.layers if e.layer.name == node.layer)
    shape = f"{layer.C}->{layer.K} {layer.P}x{layer.Q}"
    if layer.R * layer.S > 1:
        shape += f" k{layer.R}x{layer.S}"
    if layer.Wstride * layer.Hstride > 1:
        shape += f" s{layer.Wstride}"
    if layer.G > 1:
        shape += f" g{layer.G}"
    parallel = f" x{node.repeat}" if node.repeat > 1 else ""
    same = f"\\n= {node.layer}" if node.layer != node.name else ""
    return f"{node.name}{parallel}\\n{shape}{same}"


def _q(text: str) -> str:
    """``text`` as the inside of a DOT string: a name with ``"`` or ``\\`` cannot end the string early."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(network: Network) -> str:
    """Graphviz DOT text of the network's graph (labels: name, shape, the distinct layer it shares)."""
    lines = [f'digraph "{_q(network.name)}" {{', "  rankdir=TB;", '  node [shape=box, fontsize=10];']
    for node in network.graph_nodes:
        label = _label(network, node).replace('"', '\\"')  # the label's own \n line breaks stay
        lines.append(f'  "{_q(node.name)}" [label="{label}"];')
    for node in network.graph_nodes:
        lines.extend(f'  "{_q(src)}" -> "{_q(node.name)}";' for src in node.inputs)
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(network: Network, path: str | Path) -> Path:
    """Write the graph as DOT (``.dot``/``.gv``) or an image drawn by matplotlib (``.png``/``.svg``/``.pdf``)."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix in DOT_SUFFIXES:
        out.write_text(to_dot(network))
        return out
    if suffix not in IMAGE_SUFFIXES:
        raise SpecError(f"--graph = {str(path)!r}: the suffix must be one of {', '.join(DOT_SUFFIXES + IMAGE_SUFFIXES)}")
    _draw(network, out)
    return out


def _draw(network: Network, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    graph = network_graph(network)
    for depth, generation in enumerate(nx.topological_generations(graph)):
        for name in generation:
            graph.nodes[name]["depth"] = depth
    layout = nx.multipartite_layout(graph, subset_key="depth", align="horizontal")
    pos = {n: (x, -y) for n, (x, y) in layout.items()}  # first layers at the top
    depth = max((d["depth"] for _, d in graph.nodes(data=True)), default=0) + 1
    fig, ax = plt.subplots(figsize=(6, max(4, 0.45 * depth)))
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, arrowsize=8, width=0.8, edge_color="#555555")
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=60, node_color="#4477aa")
    nx.draw_networkx_labels(graph, {n: (x + 0.02, y) for n, (x, y) in pos.items()}, ax=ax, font_size=6,
                            horizontalalignment="left")
    xs = [x for x, _ in pos.values()]
    ax.set_xlim(min(xs) - 0.1, max(xs) + 0.5)  # room for the labels right of the nodes
    ax.set_title(f"{network.name}: {graph.number_of_nodes()} layer occurrences, {len(network.layers)} distinct")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)
