"""Export a (layer, architecture, mapping) triple as Timeloop v0.3 input files.

The files are meant for ``timeloop-model`` (NVlabs/timeloop; the reference cases were produced with
tag v3.0.3), so a user with Timeloop installed can check anything this project produces::

    cd OUT_DIR && timeloop-model arch.yaml problem.yaml mapping.yaml ERT.yaml

Four documents, each with one top-level key, which ``timeloop-model`` merges:

``arch.yaml`` -- ``architecture:`` in the v0.3 tree format (``version: 0.3``, nested ``subtree`` /
    ``local``). Consecutive storage levels with the same number of instances share one tree node;
    a node with more instances than its parent is named ``NAME[0..n-1]`` where ``n`` is the fanout
    from the parent. Storage levels use the classes ``DRAM`` / ``SRAM`` / ``regfile`` (our
    :class:`~formulation.specs.types.Technology`) and Timeloop's attribute names: ``word-bits``,
    ``block-size``, ``width`` (= word-bits x block-size, so one vector access is one block and the
    cluster size is 1), ``depth`` (= size / block-size; Timeloop's capacity is depth x block-size
    words; ``entries`` gives the size in words directly when it is not a multiple of the block
    size; DRAM has neither and is unbounded), ``instances``, ``meshX``, ``read_bandwidth`` and
    ``write_bandwidth`` (words/cycle per instance; absent = unlimited). The MAC array is an
    ``intmac`` with ``instances``, ``meshX`` and ``word-bits``. Level names are kept as they are.

``problem.yaml`` -- ``problem:`` with the CNN-layer shape written out (dimensions
    ``C M R S N P Q``, coefficients ``Wstride Hstride Wdilation Hdilation``, data-spaces
    ``Weights`` / ``Inputs`` / ``Outputs`` with their projections, Outputs read-write) and the
    ``instance``. Timeloop names the output-channel dimension ``M``; it is our ``K``. Timeloop's
    CNN layer has no groups, so for ``G > 1`` the problem is **one group** (``C/G``, ``K/G``), which
    is also what a :class:`~formulation.specs.types.Mapping` describes; the whole layer is ``G`` such runs
    one after another (energy and cycles x G). The file and README.txt say so.

``mapping.yaml`` -- ``mapping:``, a list of directives ``target`` / ``type``:
    * ``temporal`` for every level: ``factors: "C=.. M=.. R=.. S=.. N=.. P=.. Q=.."`` (all seven)
      and ``permutation`` (all seven, **innermost first**, as in our
      :attr:`~formulation.specs.types.LevelMapping.permutation`);
    * ``spatial`` for every level with a fanout to its child (the spatial factors sit on the
      parent, as in our mapping): the X factors then the Y factors in ``permutation`` (innermost
      first, each axis in our ``spatial_order``), then the unit dimensions; the first ``split``
      dimensions of the permutation go along mesh X, the rest along Y. A level without fanout gets
      no spatial directive (Timeloop rejects one there);
    * ``bypass`` for every level, with ``keep`` and ``bypass`` lists of data-spaces.

``ERT.yaml`` -- ``ERT:`` an energy reference table (Accelergy ERT format version 0.2: ``tables``
    keyed by the component's dotted path, each action a list of ``{arguments, energy}`` entries),
    which replaces Timeloop's internal energy model. Timeloop matches a table to the level whose
    name is the last path component. Our energies are pJ per vector access of ``block-size``
    words, which is what Timeloop charges per action (``width`` makes the cluster size 1):

    ===================  ==============================================================
    our field            ERT actions (Timeloop looks up ``random_*`` first)
    ===================  ==============================================================
    read_energy_pJ       ``read`` (Timeloop op ``random_read``)
    fill_energy_pJ       ``random_fill``, ``fill`` (op ``random_fill``)
    update_energy_pJ     ``random_update``, ``update`` (op ``random_update``)
    write_energy_pJ      ``write`` (fallback of both when the above are missing)
    mac.energy_pJ        ``mac_random``, ``mac`` (op ``random_compute``)
    ===================  ==============================================================

Address-generation, wire and adder energies come from Timeloop's internal (open-source PAT)
model, which charges 0 for them, as the project's model does.

The functions :func:`arch_document`, :func:`problem_document`, :func:`mapping_document` and
:func:`ert_document` are pure and return the documents as dicts; :func:`export_timeloop` validates
the mapping and writes the files (with explanatory YAML comments) plus ``README.txt``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from formulation.axes import DIMS, TENSOR_NAMES, TENSORS, Dim
from formulation.specs.types import Architecture, Layer, Mac, Mapping, SpecError, StorageLevel

#: Our dimension -> Timeloop's CNN-layer dimension name (Timeloop calls output channels ``M``).
TIMELOOP_DIM: dict[Dim, str] = {Dim.N: "N", Dim.K: "M", Dim.C: "C", Dim.P: "P", Dim.Q: "Q",
                                Dim.R: "R", Dim.S: "S"}
#: Timeloop's name -> our dimension.
DIM_FROM_TIMELOOP: dict[str, Dim] = {name: d for d, name in TIMELOOP_DIM.items()}
#: Dimension order of Timeloop's CNN-layer shape, used for ``dimensions`` and every ``factors`` string.
TIMELOOP_DIM_ORDER: tuple[str, ...] = ("C", "M", "R", "S", "N", "P", "Q")

ARCH_FILE = "arch.yaml"
PROBLEM_FILE = "problem.yaml"
MAPPING_FILE = "mapping.yaml"
ERT_FILE = "ERT.yaml"
README_FILE = "README.txt"
TIMELOOP_COMMAND = f"timeloop-model {ARCH_FILE} {PROBLEM_FILE} {MAPPING_FILE} {ERT_FILE}"

# Timeloop splits hierarchical names on '.', and reads "[a..b]" as an instance range.
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


# --------------------------------------------------------------------------------------------
# architecture
# --------------------------------------------------------------------------------------------

def _check_names(arch: Architecture) -> None:
    names = [lv.name for lv in arch.levels] + [arch.mac.name]
    for name in names:
        if not _SAFE_NAME.match(name):
            raise SpecError(f"level name = {name!r}: Timeloop needs letters, digits, '_' or '-' "
                            f"(it splits names on '.' and reads '[..]' as instance ranges)")
    if arch.mac.name in names[:-1]:
        raise SpecError(f"mac name = {arch.mac.name!r}: also the name of a storage level; Timeloop "
                        f"matches energy tables by name, so the names must differ")


def _storage_attributes(level: StorageLevel) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if level.size_words is not None:
        if level.size_words % level.block_size == 0:
            attrs["depth"] = level.size_words // level.block_size
        else:
            attrs["entries"] = level.size_words
    attrs["width"] = level.word_bits * level.block_size
    attrs["word-bits"] = level.word_bits
    attrs["block-size"] = level.block_size
    attrs["instances"] = level.instances
    attrs["meshX"] = level.mesh_x
    if level.read_bw_words is not None:
        attrs["read_bandwidth"] = _number(level.read_bw_words)
    if level.write_bw_words is not None:
        attrs["write_bandwidth"] = _number(level.write_bw_words)
    return attrs


def _mac_attributes(mac: Mac) -> dict[str, Any]:
    return {"instances": mac.instances, "meshX": mac.mesh_x, "word-bits": mac.word_bits}


def _number(value: float) -> int | float:
    """Integers stay integers in the YAML (``8`` rather than ``8.0``)."""
    return int(value) if float(value).is_integer() else float(value)


def _groups(arch: Architecture) -> list[dict[str, Any]]:
    """Tree nodes, outermost first: consecutive components with the same instances/meshX share one.

    Each node is ``{"name", "instances", "components": [(kind, obj), ...]}`` with kind
    ``"storage"`` or ``"mac"``; the MAC array joins the innermost node when it has as many
    instances, else it gets a node of its own.
    """
    comps: list[tuple[str, StorageLevel | Mac]] = [("storage", lv) for lv in arch.levels]
    comps.append(("mac", arch.mac))
    groups: list[dict[str, Any]] = []
    for kind, obj in comps:
        key = (obj.instances, obj.mesh_x)
        if groups and groups[-1]["key"] == key:
            groups[-1]["components"].append((kind, obj))
        else:
            groups.append({"key": key, "instances": obj.instances, "components": [(kind, obj)]})
    storage_groups = [g for g in groups if any(k == "storage" for k, _ in g["components"])]
    cluster = 0
    parent_instances = 1
    for i, group in enumerate(groups):
        if i == 0:
            base = "System"
        elif group is storage_groups[-1]:
            base = "PE"
        elif any(group is g for g in storage_groups):
            cluster += 1
            base = f"Cluster{cluster}"
        else:
            base = "MACArray"
        ratio = group["instances"] // parent_instances
        group["name"] = base if ratio == 1 else f"{base}[0..{ratio - 1}]"
        parent_instances = group["instances"]
    return groups


def arch_document(arch: Architecture) -> dict:
    """The ``architecture:`` document (Timeloop v0.3 tree format) for ``arch``."""
    _check_names(arch)
    root: dict[str, Any] = {"version": 0.3}
    holder = root
    for group in _groups(arch):
        local = []
        for kind, obj in group["components"]:
            if kind == "storage":
                local.append({"name": obj.name, "class": obj.technology.value,
                              "attributes": _storage_attributes(obj)})
            else:
                local.append({"name": obj.name, "class": "intmac", "attributes": _mac_attributes(obj)})
        node = {"name": group["name"], "local": local}
        holder["subtree"] = [node]
        holder = node
    return {"architecture": root}


def component_paths(arch: Architecture) -> dict[str, str]:
    """Dotted tree path of every component (``System.PE[0..255].RegisterFile``), keyed by name."""
    paths = {}
    prefix: list[str] = []
    for group in _groups(arch):
        prefix.append(group["name"])
        for _, obj in group["components"]:
            paths[obj.name] = ".".join(prefix + [obj.name])
    return paths


# --------------------------------------------------------------------------------------------
# energy reference table
# --------------------------------------------------------------------------------------------

def _action(energy: float) -> list[dict[str, Any]]:
    return [{"arguments": None, "energy": float(energy)}]


def ert_document(arch: Architecture) -> dict:
    """The ``ERT:`` energy reference table: per-action energies (pJ per vector access / per MAC)."""
    _check_names(arch)
    paths = component_paths(arch)
    tables: dict[str, Any] = {}
    for level in arch.levels:
        tables[paths[level.name]] = {
            "read": _action(level.read_energy_pJ),
            "write": _action(level.write_energy_pJ),
            "random_fill": _action(level.fill_energy_pJ),
            "fill": _action(level.fill_energy_pJ),
            "random_update": _action(level.update_energy_pJ),
            "update": _action(level.update_energy_pJ),
        }
    tables[paths[arch.mac.name]] = {"mac_random": _action(arch.mac.energy_pJ), "mac": _action(arch.mac.energy_pJ)}
    return {"ERT": {"version": 0.2, "tables": tables}}


# --------------------------------------------------------------------------------------------
# problem
# --------------------------------------------------------------------------------------------

def cnn_layer_shape() -> dict:
    """Timeloop's CNN-layer shape (dimensions, coefficients, data-spaces and projections)."""
    return {
        "name": "CNN-Layer",
        "dimensions": list(TIMELOOP_DIM_ORDER),
        "coefficients": [{"name": name, "default": 1} for name in ("Wstride", "Hstride", "Wdilation", "Hdilation")],
        "data-spaces": [
            {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
            {"name": "Inputs", "projection": [[["N"]], [["C"]], [["R", "Wdilation"], ["P", "Wstride"]],
                                              [["S", "Hdilation"], ["Q", "Hstride"]]]},
            {"name": "Outputs", "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]], "read-write": True},
        ],
    }


def problem_document(layer: Layer) -> dict:
    """The ``problem:`` document: Timeloop's CNN-layer shape and one group of ``layer``."""
    shape = cnn_layer_shape()
    dims = layer.dims  # one group: C/G and K/G
    instance: dict[str, int] = {TIMELOOP_DIM[d]: dims[d] for d in (Dim.C, Dim.K, Dim.R, Dim.S, Dim.N, Dim.P, Dim.Q)}
    instance.update(Wstride=layer.Wstride, Hstride=layer.Hstride, Wdilation=layer.Wdilation,
                    Hdilation=layer.Hdilation)
    return {"problem": {"shape": shape, "instance": instance}}


# --------------------------------------------------------------------------------------------
# mapping
# --------------------------------------------------------------------------------------------

def _factor_string(values: tuple[int, ...]) -> str:
    return " ".join(f"{name}={values[DIM_FROM_TIMELOOP[name]]}" for name in TIMELOOP_DIM_ORDER)


def _dim_string(dims) -> str:
    return "".join(TIMELOOP_DIM[d] for d in dims)


def mapping_document(arch: Architecture, mapping: Mapping) -> dict:
    """The ``mapping:`` document: temporal, spatial (where there is a fanout) and bypass directives."""
    if len(mapping.levels) != len(arch.levels):
        raise SpecError(f"mapping = {len(mapping.levels)} levels: architecture {arch.name} has "
                        f"{len(arch.levels)} storage levels")
    directives: list[dict[str, Any]] = []
    for i, (lm, level) in enumerate(zip(mapping.levels, arch.levels)):
        if lm.target != level.name:
            raise SpecError(f"mapping[{i}].target = {lm.target!r}: expected level {level.name!r} (outermost first)")
        directives.append({"target": level.name, "type": "temporal", "factors": _factor_string(lm.temporal),
                           "permutation": _dim_string(lm.permutation)})
        fan_x, fan_y = arch.fanout(i)
        x_dims = [d for d in lm.spatial_order if lm.spatial_x[d] > 1]
        y_dims = [d for d in lm.spatial_order if lm.spatial_y[d] > 1]
        both = sorted(set(x_dims) & set(y_dims))
        if both:
            raise SpecError(f"mapping[{lm.target}].spatial {both[0].name} = on X and Y: "
                            f"Timeloop puts a dimension on one mesh axis")
        if fan_x * fan_y > 1:
            rest = [d for d in lm.spatial_order if d not in x_dims and d not in y_dims]
            rest += [d for d in DIMS if d not in lm.spatial_order and d not in rest]
            directives.append({"target": level.name, "type": "spatial", "factors": _factor_string(lm.spatial),
                               "permutation": _dim_string(x_dims + y_dims + rest), "split": len(x_dims)})
        elif x_dims or y_dims:
            raise SpecError(f"mapping[{lm.target}].spatial = {_factor_string(lm.spatial)}: level {level.name} "
                            f"has no fanout to its child")
        directives.append({"target": level.name, "type": "bypass",
                           "keep": [TENSOR_NAMES[t] for t in TENSORS if t in lm.keep],
                           "bypass": [TENSOR_NAMES[t] for t in TENSORS if t not in lm.keep]})
    return {"mapping": directives}


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    """Block style, except short lists (of scalars, or of lists of scalars) on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    def depth(x: Any) -> int:
        if isinstance(x, dict):
            return 99
        if isinstance(x, list):
            return 1 + max((depth(v) for v in x), default=0)
        return 0

    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=depth(data) <= 2)


_Dumper.add_representer(list, _represent_list)


def to_yaml(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def _comment(lines: list[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def _group_note(layer: Layer) -> list[str]:
    if layer.G == 1:
        return []
    return [f"GROUPED CONVOLUTION: layer {layer.name} has G = {layer.G} groups (C = {layer.C}, K = {layer.K}).",
            "Timeloop's CNN-layer problem has no groups, so this problem is ONE group:",
            f"C = C/G = {layer.C // layer.G}, M = K/G = {layer.K // layer.G}. The whole layer is {layer.G} such runs",
            f"one after another: multiply Timeloop's energy and cycles by {layer.G}."]


def _readme(layer: Layer, arch: Architecture) -> str:
    lines = [
        f"Timeloop v0.3 inputs for layer {layer.name} on architecture {arch.name}, written by accel-codesign",
        "(formulation/specs/timeloop_export.py).",
        "",
        "Run (Timeloop's timeloop-model, e.g. NVlabs/timeloop v3.0.3) from this directory:",
        "",
        f"    {TIMELOOP_COMMAND}",
        "",
        "It writes timeloop-model.stats.txt, timeloop-model.map.txt and timeloop-model.map+stats.xml",
        "to the current directory. Pass ERT.yaml: it holds the energies (pJ per vector access of",
        "block-size words, pJ per MAC) and keeps Timeloop from calling Accelergy.",
        "",
        f"  {ARCH_FILE:<13} architecture (v0.3 subtree/local tree; level names as in the project)",
        f"  {PROBLEM_FILE:<13} CNN-layer problem; Timeloop's M is the project's K (output channels)",
        f"  {MAPPING_FILE:<13} temporal / spatial / bypass directives; permutations innermost first;",
        "                in a spatial directive the first `split` dims go along mesh X, the rest along Y",
        f"  {ERT_FILE:<13} energy reference table (read, random_fill/fill, random_update/update, write; mac)",
    ]
    if layer.G > 1:
        lines += ["", *_group_note(layer)]
    return "\n".join(lines) + "\n"


def export_timeloop(layer: Layer, arch: Architecture, mapping: Mapping, out_dir: str | Path) -> list[Path]:
    """Validate ``mapping`` and write arch.yaml, problem.yaml, mapping.yaml, ERT.yaml and README.txt.

    Returns the written paths (the YAML files first, in that order). ``out_dir`` is created if needed.
    """
    from formulation.model.validation import validate_mapping

    validate_mapping(layer, arch, mapping)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    head = f"Generated by accel-codesign for layer {layer.name} on architecture {arch.name}."
    files = [
        (ARCH_FILE, arch_document(arch),
         [head, "Timeloop v0.3 architecture. Storage levels outermost first; capacity = depth x block-size words",
          "(or entries); width = word-bits x block-size; bandwidths in words/cycle per instance.",
          f"Energies are in {ERT_FILE}."]),
        (PROBLEM_FILE, problem_document(layer),
         [head, "Timeloop CNN-layer problem. M is the project's K (output channels); R pairs with P",
          "(width), S with Q (height).", *_group_note(layer)]),
        (MAPPING_FILE, mapping_document(arch, mapping),
         [head, "Permutations list the loops innermost first. Spatial factors sit on the parent level;",
          "the first `split` dimensions of a spatial permutation go along mesh X, the rest along Y."]),
        (ERT_FILE, ert_document(arch),
         [head, "Energy reference table: pJ per vector access of block-size words (storage), pJ per MAC.",
          "Timeloop looks up random_fill / random_update first, then fill / update, then write."]),
    ]
    written = []
    for name, doc, comment in files:
        path = out / name
        path.write_text(_comment(comment) + to_yaml(doc))
        written.append(path)
    readme = out / README_FILE
    readme.write_text(_readme(layer, arch))
    written.append(readme)
    return written


__all__ = ["export_timeloop", "arch_document", "problem_document", "mapping_document", "ert_document",
           "component_paths", "to_yaml", "TIMELOOP_DIM", "DIM_FROM_TIMELOOP", "TIMELOOP_DIM_ORDER",
           "TIMELOOP_COMMAND"]
