"""Timeloop architectures as :class:`~formulation.specs.types.Architecture`.

Three layouts are read, all giving the storage levels outermost first and one compute unit:

* **tree** (Timeloop v0.2/v0.3, and the v0.4 front-end's dumps): ``architecture: {version,
  subtree: [{name, local: [...], subtree: [...]}]}``. A node's ``local`` components are outside
  (above) its ``subtree``; within ``local`` the first listed is the outermost. A name
  ``PE[0..255]`` (or ``[1..256]``) stands for ``b - a + 1`` copies; the copies multiply down the
  tree, so a component's instances are the product of the ranges on its path (its own name's
  range included), unless its ``instances`` attribute says otherwise.
* **flat** (Timeloop v0.2): ``arch: {arithmetic: {...}, storage: [...]}``, the storage list
  **innermost first**, attributes inline.
* **nodes** (Timeloop v0.4): ``architecture: {version: 0.4, nodes: [...]}``, a list of
  ``!Container`` / ``!Component`` nodes, each container's ``spatial: {meshX, meshY}`` multiplying the
  instances (and ``meshX``) of everything after it.

``meshX``: an explicit attribute wins; otherwise it is the product of the ``meshX`` of the v0.4
containers on the path, and in a tree all copies lie along X (``meshX = instances``), which is
what Timeloop assumes for a component without ``meshX``.

A component is **storage** when its class is ``DRAM``/``SRAM``/``regfile``/``storage``, **compute**
when it is ``intmac``/``fpmac``/``mac``/``compute``; any other class is an Accelergy compound
component, which is read only when the ERT has a table for it (compute if the table has a MAC
action and no read, storage otherwise). Storage attributes (``-`` and ``_`` are the same):
``depth`` (capacity ``depth x block-size`` words), ``entries`` (words) or ``sizeKB``;
``word-bits`` (or ``datawidth``; default 8); ``block-size`` (default ``width / word-bits``, else 1);
``width`` must be ``word-bits x block-size`` (a cluster of one block, so one action is one vector
access of ``block-size`` words); ``read_bandwidth`` / ``write_bandwidth`` in words per cycle per
instance. DRAM is unbounded whatever its depth. ``technology`` follows the class (DRAM, regfile,
else SRAM). Attributes that only feed Accelergy's estimates (``technology``, ``n_banks``,
``latency``, ...) are ignored; the ones below that change what Timeloop computes and that the
model does not have are rejected with one line. Energies come from the ERT (:mod:`.ert`), or from a
storage component's ``vector-access-energy`` attribute when there is no table for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from formulation.specs.timeloop_import.ert import (
    FILL_ACTIONS,
    MAC_ACTIONS,
    READ_ACTIONS,
    UPDATE_ACTIONS,
    base_name,
    first_action,
    is_compute_table,
)
from formulation.specs.types import Architecture, Mac, SpecError, StorageLevel, Technology

STORAGE_CLASSES = ("dram", "sram", "regfile", "storage")
COMPUTE_CLASSES = ("intmac", "fpmac", "mac", "compute")
#: Attributes Timeloop uses that the model does not have: rejected when set to a non-default value.
UNSUPPORTED_ATTRIBUTES = {
    "shared-bandwidth": "a bandwidth shared by reads and writes", "multiple-buffering": "multiple buffering",
    "metadata-storage-width": "sparse metadata", "metadata-datawidth": "sparse metadata",
    "metadata-block-size": "sparse metadata", "metadata-storage-depth": "sparse metadata",
    "concordant-compressed-tile-traversal": "sparse tiles", "tile-partition-supported": "sparse tiles",
    "decompression-supported": "compression", "compression-supported": "compression",
    "network-fill-latency": "network latencies", "network-drain-latency": "network latencies",
    "min-utilization": "a minimum utilization constraint",
}
_DEFAULT_OK = {"multiple-buffering": (1, 1.0), "min-utilization": (0, 0.0)}
_RANGE = re.compile(r"\[\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*\]$")


@dataclass(frozen=True)
class Component:
    """One leaf of the architecture: its name without range, class, attributes, copies and mesh width."""

    name: str
    cls: str
    attributes: dict
    instances: int
    mesh_x: int


def copies(name: str) -> int:
    """Copies named by a ``[a..b]`` range (``b - a + 1``), 1 without one."""
    m = _RANGE.search(str(name))
    if not m:
        return 1
    lo, hi = int(m.group(1)), int(m.group(2))
    if hi < lo:
        raise SpecError(f"architecture name = {name!r}: the range must not be empty")
    return hi - lo + 1


def _attrs(doc: dict, where: str) -> dict:
    raw = doc.get("attributes") or {}
    if not isinstance(raw, dict):
        raise SpecError(f"{where}.attributes = {str(raw)[:40]!r}: expected a mapping")
    return {str(k).replace("_", "-"): v for k, v in raw.items()}


def _component(doc: Any, multiplier: int, mesh_mult: int | None, where: str, inline: bool = False) -> Component:
    if not isinstance(doc, dict) or "name" not in doc:
        raise SpecError(f"{where} = {str(doc)[:40]!r}: a component needs a name")
    attrs = {str(k).replace("_", "-"): v for k, v in doc.items() if k not in ("name", "class", "!")} if inline \
        else _attrs(doc, f"{where}.{doc['name']}")
    if isinstance(doc.get("spatial"), dict):
        attrs.pop("spatial", None)
    name = base_name(doc["name"])
    n = multiplier * copies(doc["name"])
    spatial = doc.get("spatial") if isinstance(doc.get("spatial"), dict) else {}
    n *= int(spatial.get("meshX", 1)) * int(spatial.get("meshY", 1))
    default_mesh = n if mesh_mult is None else mesh_mult * int(spatial.get("meshX", 1))
    instances = attrs.pop("instances", n)
    mesh_x = attrs.pop("meshx", attrs.pop("meshX", None))
    if mesh_x is None:
        mesh_x = default_mesh if instances == n else instances
    cls = str(doc.get("class", attrs.pop("technology", "SRAM") if inline else "SRAM"))
    return Component(name=name, cls=cls, attributes=attrs, instances=instances, mesh_x=mesh_x)


def _walk_tree(node: dict, multiplier: int, where: str, out: list[Component]) -> None:
    for comp in node.get("local") or []:
        out.append(_component(comp, multiplier, None, where))
    for sub in node.get("subtree") or []:
        if not isinstance(sub, dict) or "name" not in sub:
            raise SpecError(f"{where}.subtree = {str(sub)[:40]!r}: a subtree node needs a name")
        _walk_tree(sub, multiplier * copies(sub["name"]), f"{where}.{base_name(sub['name'])}", out)


def _walk_nodes(nodes: list, where: str) -> list[Component]:
    out: list[Component] = []
    multiplier, mesh = 1, 1
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise SpecError(f"{where}.nodes[{i}] = {str(node)[:40]!r}: expected a node")
        tag = str(node.get("!", "Component" if "class" in node else "Container"))
        if node.get("enabled") is False:
            continue
        if tag == "Container":
            spatial = node.get("spatial") or {}
            mx, my = int(spatial.get("meshX", 1)), int(spatial.get("meshY", 1))
            multiplier *= mx * my * copies(node.get("name", ""))
            mesh *= mx
        elif tag == "Component":
            out.append(_component(node, multiplier, mesh, where))
        else:
            raise SpecError(f"{where}.nodes[{i}] = !{tag}: only !Container and !Component nodes map onto the model")
    return out


def components(doc: Any) -> list[Component]:
    """The architecture's leaves, outermost first, from any of the three layouts."""
    if not isinstance(doc, dict):
        raise SpecError(f"architecture = {str(doc)[:40]!r}: expected a mapping")
    if "nodes" in doc:
        return _walk_nodes(doc["nodes"], "architecture")
    if "storage" in doc or "arithmetic" in doc:
        storage = doc.get("storage") or []
        if not isinstance(storage, list) or not storage:
            raise SpecError(f"arch.storage = {str(storage)[:40]!r}: must list the storage levels, innermost first")
        arith = doc.get("arithmetic")
        if not isinstance(arith, dict):
            raise SpecError(f"arch.arithmetic = {str(arith)[:40]!r}: missing")
        comps = [_component(s, 1, None, "arch.storage", inline=True) for s in reversed(storage)]
        mac = _component(arith, 1, None, "arch.arithmetic", inline=True)
        return comps + [Component(mac.name, "intmac", mac.attributes, mac.instances, mac.mesh_x)]
    if "subtree" in doc or "local" in doc:
        out: list[Component] = []
        _walk_tree(doc, 1, "architecture", out)
        return out
    raise SpecError(f"architecture = {str(doc)[:40]!r}: expected subtree/local (v0.2/v0.3), nodes (v0.4) "
                    f"or storage/arithmetic (v0.2 flat)")


def _kind(comp: Component, ert: dict[str, dict[str, float]]) -> str:
    cls = comp.cls.lower()
    if cls in COMPUTE_CLASSES:
        return "compute"
    if cls in STORAGE_CLASSES or cls.upper() in ("DRAM", "SRAM"):
        return "storage"
    if cls in ("xy_noc", "legacy", "simplemulticast", "referencenetwork") or "noc" in cls:
        raise SpecError(f"component {comp.name}: class = {comp.cls!r}: explicit networks are not modeled")
    if comp.name not in ert:
        raise SpecError(f"component {comp.name}: class = {comp.cls!r}: a compound component needs an ERT "
                        f"entry (pass the Accelergy ERT.yaml)")
    return "compute" if is_compute_table(ert[comp.name]) else "storage"


def _num(attrs: dict, key: str, where: str, default: Any = None, positive: bool = True) -> Any:
    value = attrs.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (positive and value <= 0) or value < 0:
        raise SpecError(f"{where}.{key} = {value!r}: must be a {'positive' if positive else 'non-negative'} number")
    return value


def _int(attrs: dict, key: str, where: str, default: Any = None) -> int | None:
    value = _num(attrs, key, where, default)
    if value is None:
        return None
    if float(value) != int(value):
        raise SpecError(f"{where}.{key} = {value!r}: must be an integer")
    return int(value)


def _check_unsupported(attrs: dict, where: str) -> None:
    for key, what in UNSUPPORTED_ATTRIBUTES.items():
        if key in attrs and attrs[key] is not None and attrs[key] not in _DEFAULT_OK.get(key, ()):
            raise SpecError(f"{where}.{key} = {attrs[key]!r}: not supported ({what})")
    for key in attrs:
        if key.startswith("metadata") or key.startswith("sparse"):
            raise SpecError(f"{where}.{key} = {attrs[key]!r}: not supported (sparse-tensor attribute)")
    cluster = attrs.get("cluster-size")
    if cluster not in (None, 1):
        raise SpecError(f"{where}.cluster-size = {cluster!r}: only a cluster of one block is modeled")


def _energies(comp: Component, ert: dict, where: str) -> tuple[float, float, float, float]:
    """(read, write, fill, update) pJ per vector access."""
    actions = ert.get(comp.name)
    if actions is not None:
        read = first_action(actions, READ_ACTIONS)
        fill = first_action(actions, FILL_ACTIONS)
        update = first_action(actions, UPDATE_ACTIONS)
        if read is None or (fill is None and update is None):
            missing = "read" if read is None else "write"
            raise SpecError(f"ERT {comp.name} = {sorted(actions)!r}: has no {missing} action")
        fill = update if fill is None else fill
        update = fill if update is None else update
        return read, actions.get("write", fill), fill, update
    vae = _num(comp.attributes, "vector-access-energy", where, positive=False)
    if vae is None:
        raise SpecError(f"component {comp.name}: energy = None: give an ERT table for it (pass the Accelergy "
                        f"ERT.yaml too: --timeloop ARCH.yaml ERT.yaml) or a vector-access-energy attribute")
    return float(vae), float(vae), float(vae), float(vae)


def _storage(comp: Component, ert: dict) -> StorageLevel:
    where = f"component {comp.name}"
    attrs = comp.attributes
    _check_unsupported(attrs, where)
    word_bits = _int(attrs, "word-bits", where, default=attrs.get("datawidth", 8))
    width = _int(attrs, "width", where)
    block = _int(attrs, "block-size", where, default=width // word_bits if width else 1)
    if width is not None and width != word_bits * block:
        raise SpecError(f"{where}.width = {width}: must be word-bits x block-size = {word_bits * block} "
                        f"(a cluster of one block; energies are per vector access of block-size words)")
    cls = comp.cls.lower()
    tech = Technology.DRAM if "dram" in cls else Technology.REGFILE if ("regfile" in cls or cls.endswith("rf")) \
        else Technology.SRAM
    size = None
    if tech is not Technology.DRAM:
        entries = _int(attrs, "entries", where)
        depth = _int(attrs, "depth", where)
        size_kb = _num(attrs, "sizekb", where, default=attrs.get("sizeKB"))
        if entries is not None:
            size = entries
        elif depth is not None:
            size = depth * block
        elif size_kb is not None:
            size = int(size_kb * 1024 * 8 // word_bits)
        else:
            raise SpecError(f"{where}.depth = None: give depth, entries or sizeKB (only DRAM is unbounded)")
    read, write, fill, update = _energies(comp, ert, where)
    for key in ("addr-gen-energy", "energy-per-hop"):
        if attrs.get(key) not in (None, 0, 0.0):
            raise SpecError(f"{where}.{key} = {attrs[key]!r}: only 0 is modeled (Timeloop's default)")
    return StorageLevel(
        name=comp.name, technology=tech, size_words=size, word_bits=word_bits, block_size=block,
        instances=comp.instances, mesh_x=comp.mesh_x, read_energy_pJ=read, write_energy_pJ=write,
        fill_energy_pJ=fill, update_energy_pJ=update,
        read_bw_words=_num(attrs, "read-bandwidth", where), write_bw_words=_num(attrs, "write-bandwidth", where))


def _mac(comp: Component, ert: dict) -> Mac:
    where = f"component {comp.name}"
    actions = ert.get(comp.name, {})
    energy = first_action(actions, MAC_ACTIONS)
    if energy is None:
        energy = _num(comp.attributes, "energy", where, positive=False)
    if energy is None:
        raise SpecError(f"component {comp.name}: energy = None: give an ERT table with a mac_random action")
    word_bits = _int(comp.attributes, "word-bits", where, default=comp.attributes.get("datawidth", 8))
    return Mac(instances=comp.instances, mesh_x=comp.mesh_x, energy_pJ=float(energy), word_bits=word_bits,
               name=comp.name)


def arch_from_timeloop(doc: Any, ert: dict[str, dict[str, float]], name: str = "timeloop") -> Architecture:
    """An :class:`Architecture` from a Timeloop ``architecture:`` (or ``arch:``) document and a parsed ERT."""
    comps = components(doc)
    kinds = [_kind(c, ert) for c in comps]
    computes = [c for c, k in zip(comps, kinds) if k == "compute"]
    if len(computes) != 1:
        raise SpecError(f"architecture compute units = {[c.name for c in computes]!r}: exactly one is modeled")
    if kinds[-1] != "compute":
        raise SpecError(f"component {comps[-1].name} = after the compute unit: storage must be above the MACs")
    levels = tuple(_storage(c, ert) for c, k in zip(comps, kinds) if k == "storage")
    if not levels:
        raise SpecError("architecture storage = []: at least one storage level is needed")
    return Architecture(name=name, levels=levels, mac=_mac(computes[0], ert), clock_GHz=_clock_GHz(doc))


def _clock_GHz(doc: dict) -> float:
    """``1e-9 / global_cycle_seconds`` of the root or its first node (v0.4), else 1 GHz."""
    first = (doc.get("subtree") or doc.get("nodes") or [{}])[0]
    for node in (doc, first if isinstance(first, dict) else {}):
        attrs = node.get("attributes")
        seconds = attrs.get("global_cycle_seconds") if isinstance(attrs, dict) else None
        if isinstance(seconds, str):
            try:
                seconds = float(seconds)
            except ValueError:
                raise SpecError(f"global_cycle_seconds = {seconds!r}: must be a number of seconds") from None
        if isinstance(seconds, (int, float)) and seconds > 0:
            return 1e-9 / seconds
    return 1.0

