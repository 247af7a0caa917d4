"""Frozen specification types: Layer, Network, Architecture, Mapping.

Types are plain frozen dataclasses. Cheap invariants of a single object (positive sizes, known
names) are checked in ``__post_init__``; checks that relate objects to each other (a mapping
against its layer and architecture) live in :mod:`formulation.model.validation`. Loading from files,
where user input enters, is in :mod:`formulation.specs.loading`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from formulation.axes import DIMS, N_DIMS, TENSORS, Dim, Tensor


class SpecError(ValueError):
    """A user-facing input error; its message is one line naming the field and the value.

    The message is kept to one line whatever user text it quotes: line breaks and other control
    characters in it (a key or a name read from a file) are shown escaped, as ``repr`` would.
    """

    def __init__(self, message: object = "", *args: object):
        text = str(message)
        if any(ch < " " or ch == "\x7f" for ch in text):
            text = "".join(ch if ch >= " " and ch != "\x7f" else repr(ch)[1:-1] for ch in text)
        super().__init__(text, *args)


def _require(ok: bool, field_name: str, value: object, why: str) -> None:
    if not ok:
        raise SpecError(f"{field_name} = {value!r}: {why}")


def _positive_int(field_name: str, value: object) -> None:
    _require(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
             field_name, value, "must be a positive integer")


@dataclass(frozen=True)
class Layer:
    """One convolution (or GEMM) layer.

    ``P``/``Q`` are the output width/height, ``R``/``S`` the filter width/height; ``R`` pairs with
    ``P`` and ``S`` with ``Q``. A fully-connected layer or GEMM has ``P = Q = R = S = 1``.
    ``G`` groups split ``C`` and ``K`` into ``G`` independent convolutions (``G = C = K`` is a
    depthwise convolution); the mapping then describes one group, whose loop bounds are
    :attr:`dims`, and the model runs the ``G`` groups one after the other.
    """

    name: str
    N: int
    C: int
    K: int
    P: int
    Q: int
    R: int = 1
    S: int = 1
    Wstride: int = 1
    Hstride: int = 1
    Wdilation: int = 1
    Hdilation: int = 1
    G: int = 1

    def __post_init__(self) -> None:
        for key in ("N", "C", "K", "P", "Q", "R", "S", "Wstride", "Hstride", "Wdilation", "Hdilation", "G"):
            _positive_int(f"layer {self.name}: {key}", getattr(self, key))
        _require(self.C % self.G == 0, f"layer {self.name}: C", self.C, f"must be divisible by G = {self.G}")
        _require(self.K % self.G == 0, f"layer {self.name}: K", self.K, f"must be divisible by G = {self.G}")

    @property
    def dims(self) -> tuple[int, ...]:
        """Loop bounds of one group, indexed by :class:`Dim`."""
        sizes = {Dim.N: self.N, Dim.K: self.K // self.G, Dim.C: self.C // self.G,
                 Dim.P: self.P, Dim.Q: self.Q, Dim.R: self.R, Dim.S: self.S}
        return tuple(sizes[d] for d in DIMS)

    @property
    def macs(self) -> int:
        return self.G * math.prod(self.dims)

    @property
    def input_width(self) -> int:
        return (self.P - 1) * self.Wstride + (self.R - 1) * self.Wdilation + 1

    @property
    def input_height(self) -> int:
        return (self.Q - 1) * self.Hstride + (self.S - 1) * self.Hdilation + 1


@dataclass(frozen=True)
class NetworkLayer:
    layer: Layer
    count: int = 1

    def __post_init__(self) -> None:
        _positive_int(f"layer {self.layer.name}: count", self.count)


@dataclass(frozen=True)
class GraphNode:
    """One occurrence of a layer in a network's data-flow graph.

    ``layer`` names the distinct :class:`NetworkLayer` it computes (occurrences with equal shapes
    share one); ``inputs`` names the occurrences whose outputs it reads (none: it reads the
    network's input), through any MAC-free operators in between (additions, concatenations,
    pooling, activations). ``repeat`` > 1 stands for that many independent runs side by side (the
    heads of an attention layer), which read the same inputs.
    """

    name: str
    layer: str
    inputs: tuple[str, ...] = ()
    repeat: int = 1

    def __post_init__(self) -> None:
        _positive_int(f"node {self.name}: repeat", self.repeat)


@dataclass(frozen=True)
class Network:
    """A workload: named distinct layers, each with the number of times it occurs, and their graph.

    ``nodes`` lists the occurrences in a topological order (every input names an earlier node),
    which is the evaluation order; a layer's ``count`` is the sum of its nodes' ``repeat``. Without
    nodes the network is a chain: each layer's ``count`` occurrences follow one another, in the
    order of ``layers`` (:attr:`graph_nodes`). The graph itself, a ``networkx.DiGraph``, is built on
    demand by :func:`formulation.specs.graph.network_graph` (a graph is mutable; this stays frozen).
    """

    name: str
    layers: tuple[NetworkLayer, ...]
    nodes: tuple[GraphNode, ...] = ()

    def __post_init__(self) -> None:
        _require(len(self.layers) > 0, f"network {self.name}: layers", [], "must not be empty")
        names = [entry.layer.name for entry in self.layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        _require(not dup, f"network {self.name}: layer name", dup[0] if dup else "", "is used twice")
        if self.nodes:
            self._check_nodes(names)

    def _check_nodes(self, layer_names: list[str]) -> None:
        seen: set[str] = set()
        counts = dict.fromkeys(layer_names, 0)
        for node in self.nodes:
            _require(node.name not in seen, f"network {self.name}: node name", node.name, "is used twice")
            _require(node.layer in counts, f"network {self.name}: node {node.name}.layer", node.layer,
                     "is not a layer of the network")
            for src in node.inputs:
                _require(src in seen, f"network {self.name}: node {node.name}.inputs", src,
                         "must name an earlier node (nodes are listed in a topological order)")
            seen.add(node.name)
            counts[node.layer] += node.repeat
        for entry in self.layers:
            _require(counts[entry.layer.name] == entry.count, f"network {self.name}: layer {entry.layer.name}.count",
                     entry.count, f"its graph nodes repeat it {counts[entry.layer.name]} times")

    @property
    def graph_nodes(self) -> tuple[GraphNode, ...]:
        """The occurrences in evaluation order: :attr:`nodes`, or the chain of the layers and their counts."""
        if self.nodes:
            return self.nodes
        out: list[GraphNode] = []
        for entry in self.layers:
            for k in range(entry.count):
                name = entry.layer.name if k == 0 else f"{entry.layer.name}#{k + 1}"
                out.append(GraphNode(name, entry.layer.name, (out[-1].name,) if out else ()))
        return tuple(out)

    @property
    def macs(self) -> int:
        return sum(entry.layer.macs * entry.count for entry in self.layers)


class Technology(str, Enum):
    DRAM = "DRAM"
    SRAM = "SRAM"
    REGFILE = "regfile"


@dataclass(frozen=True)
class StorageLevel:
    """One storage level of the hierarchy; energies are pJ per vector access of ``block_size`` words.

    ``instances`` copies are laid out on a mesh ``mesh_x`` wide. ``size_words`` is ``None`` for an
    unbounded level (DRAM); a bandwidth of ``None`` is unlimited. ``keeps`` lists the tensors the
    hardware can hold here (a mapping may bypass more of them, never fewer).
    """

    name: str
    technology: Technology
    size_words: int | None
    word_bits: int
    block_size: int
    instances: int
    mesh_x: int
    read_energy_pJ: float
    write_energy_pJ: float
    fill_energy_pJ: float
    update_energy_pJ: float
    read_bw_words: float | None = None
    write_bw_words: float | None = None
    keeps: frozenset[Tensor] = frozenset(TENSORS)

    def __post_init__(self) -> None:
        where = f"level {self.name}"
        if self.size_words is not None:
            _positive_int(f"{where}: size", self.size_words)
        for key in ("word_bits", "block_size", "instances", "mesh_x"):
            _positive_int(f"{where}: {key}", getattr(self, key))
        _require(self.instances % self.mesh_x == 0, f"{where}: meshX", self.mesh_x,
                 f"must divide instances = {self.instances}")
        for key in ("read_energy_pJ", "write_energy_pJ", "fill_energy_pJ", "update_energy_pJ"):
            value = getattr(self, key)
            _require(isinstance(value, (int, float)) and value >= 0, f"{where}: {key}", value,
                     "must be a non-negative number")
        for key in ("read_bw_words", "write_bw_words"):
            value = getattr(self, key)
            _require(value is None or (isinstance(value, (int, float)) and value > 0), f"{where}: {key}",
                     value, "must be a positive number")

    @property
    def mesh_y(self) -> int:
        return self.instances // self.mesh_x


@dataclass(frozen=True)
class Mac:
    instances: int
    mesh_x: int
    energy_pJ: float
    word_bits: int = 8
    name: str = "MACC"

    def __post_init__(self) -> None:
        _positive_int("mac: instances", self.instances)
        _positive_int("mac: meshX", self.mesh_x)
        _require(self.instances % self.mesh_x == 0, "mac: meshX", self.mesh_x,
                 f"must divide instances = {self.instances}")
        _require(self.energy_pJ >= 0, "mac: energy", self.energy_pJ, "must be non-negative")

    @property
    def mesh_y(self) -> int:
        return self.instances // self.mesh_x


@dataclass(frozen=True)
class Architecture:
    """Storage levels, outermost first, above an array of MAC units, clocked at ``clock_GHz``."""

    name: str
    levels: tuple[StorageLevel, ...]
    mac: Mac
    clock_GHz: float = 1.0

    def __post_init__(self) -> None:
        _require(len(self.levels) >= 1, f"arch {self.name}: levels", [], "must not be empty")
        names = [lv.name for lv in self.levels]
        dup = sorted({n for n in names if names.count(n) > 1})
        _require(not dup, f"arch {self.name}: level name", dup[0] if dup else "", "is used twice")
        _require(self.clock_GHz > 0, f"arch {self.name}: clock_GHz", self.clock_GHz, "must be positive")
        outer = self.levels[0]
        _require(outer.keeps == frozenset(TENSORS), f"arch {self.name}: {outer.name}.keeps",
                 sorted(t.name for t in outer.keeps), "the outermost level must keep all tensors")
        chain = [(lv.name, lv.instances, lv.mesh_x, lv.mesh_y) for lv in self.levels]
        chain.append((self.mac.name, self.mac.instances, self.mac.mesh_x, self.mac.mesh_y))
        for (pname, pi, px, py), (cname, ci, cx, cy) in zip(chain, chain[1:]):
            _require(ci % pi == 0 and cx % px == 0 and cy % py == 0, f"arch {self.name}: {cname}.instances",
                     ci, f"mesh {cx}x{cy} must be a multiple of its parent {pname}'s mesh {px}x{py}")

    def level_index(self, name: str) -> int:
        for i, lv in enumerate(self.levels):
            if lv.name == name:
                return i
        raise SpecError(f"level = {name!r}: not a level of architecture {self.name}")

    def fanout(self, index: int) -> tuple[int, int]:
        """(X, Y) fanout from storage level ``index`` to its child (the next level or the MACs)."""
        parent = self.levels[index]
        child = self.levels[index + 1] if index + 1 < len(self.levels) else self.mac
        return child.mesh_x // parent.mesh_x, child.mesh_y // parent.mesh_y


def _dim_tuple(values: tuple[int, ...], what: str) -> tuple[int, ...]:
    if len(values) != N_DIMS:
        raise SpecError(f"{what} = {values!r}: needs one factor per dimension {''.join(d.name for d in DIMS)}")
    return tuple(values)


@dataclass(frozen=True)
class LevelMapping:
    """The loops of one storage level.

    ``temporal[d]`` is the temporal factor of dimension ``d`` (indexed by :class:`Dim`) and
    ``permutation`` lists all seven dimensions **innermost first**. ``spatial_x``/``spatial_y``
    are the fanout factors from this level to its child along mesh X and Y (spatial factors sit
    on the parent). ``spatial_order`` lists the spatial dimensions innermost first, X ones first.
    ``keep`` is the set of tensors this level holds; the others bypass it.
    """

    target: str
    temporal: tuple[int, ...]
    permutation: tuple[Dim, ...]
    spatial_x: tuple[int, ...] = (1,) * N_DIMS
    spatial_y: tuple[int, ...] = (1,) * N_DIMS
    keep: frozenset[Tensor] = frozenset(TENSORS)
    spatial_order: tuple[Dim, ...] = field(default=DIMS)

    def __post_init__(self) -> None:
        _dim_tuple(self.temporal, f"{self.target}: temporal")
        _dim_tuple(self.spatial_x, f"{self.target}: spatial X")
        _dim_tuple(self.spatial_y, f"{self.target}: spatial Y")
        if len(self.permutation) != N_DIMS or set(self.permutation) != set(DIMS):
            _require(False, f"{self.target}: permutation", "".join(d.name for d in self.permutation),
                     "must list each of NKCPQRS once")

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(x * y for x, y in zip(self.spatial_x, self.spatial_y))


@dataclass(frozen=True)
class Mapping:
    """A complete mapping: one :class:`LevelMapping` per storage level, outermost first."""

    levels: tuple[LevelMapping, ...]
