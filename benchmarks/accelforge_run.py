"""accelforge's FFM mapper (the Timeloop group's "Fast and Fusiest" mapper) on a few layers, re-scored exactly.

accelforge is not a dependency: it needs Python >= 3.12 and ~20 packages, so it runs in its own
interpreter (``--accelforge-python``) through :mod:`benchmarks.accelforge_worker`, on a spec file
written here:

**Architecture** (:func:`arch_spec`, one fanout only, as ``simple``): a ``Memory`` per storage
level, outermost first (``size`` in bits = size_words x word_bits, ``inf`` for DRAM), with ``read``
/ ``write`` actions of ``bits_per_action`` = block_size x word_bits costing our read / write energy
(pJ per vector access, given in J) and ``throughput`` = bandwidth / block_size actions per cycle
(x clock; unlimited without a bandwidth), ``total_latency`` the slower port; a ``Container`` for
the fanout with spatial ``X`` and ``Y`` of our fanout; a ``Compute`` ``MAC`` at one MAC per cycle
costing ``mac.energy_pJ``. ``may_keep`` is the level's ``keeps``. Its cost model differs from
Timeloop's (no multicast/reduction network model of ours, latency from action counts).

**Workload** (:func:`workload_spec`): one Einsum over the layer's non-unit dimensions, inputs
projected as ``H = Hstride q + Hdilation s``, ``W = Wstride p + Wdilation r``.

**Translation back** (:func:`mapping_from_loop_tree`): accelforge returns a loop tree, outermost
first. A temporal loop's factor is its parent tile over its ``tile_shape``; it belongs to the
storage level of the last storage node above it, a spatial loop to that level's fanout, on its
axis. That is a Timeloop mapping only when (a) no dimension sits on both mesh axes of one fanout
(Timeloop puts a dimension on one axis) and (b) the tensors a level holds are all placed above
the same loops. ``--accelforge-axes X=K,Y=C`` (:func:`restrict_axes`) makes (a) hold by
letting each axis iterate only the listed dimensions. Where (b) fails the translation still puts the loops at that level, so the
tensors placed below them get a tile spanning them in Timeloop's semantics (a different mapping,
flagged ``approximate``); where (a) fails, or the translated mapping does not fit, there is no
translation and the reason is stored.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from formulation.axes import DIMS, TENSORS, Dim, Tensor
from formulation.specs.types import Architecture, Layer, LevelMapping, Mapping, SpecError

WORKER = Path(__file__).resolve().parent / "accelforge_worker.py"
TENSOR_NAMES_AF = {Tensor.W: "Wt", Tensor.I: "I", Tensor.O: "O"}
RENAMES = {Tensor.W: "weight", Tensor.I: "input", Tensor.O: "output"}


def _fanouts(arch: Architecture) -> list[int]:
    return [i for i in range(len(arch.levels)) if math.prod(arch.fanout(i)) > 1]


def arch_spec(arch: Architecture) -> dict:
    """accelforge ``arch: nodes`` for ``arch`` (module docstring); one fanout at most."""
    fanouts = _fanouts(arch)
    if len(fanouts) > 1 or math.prod(arch.fanout(len(arch.levels) - 1)) > 1:
        raise SpecError(f"arch = {arch.name!r}: the accelforge translation handles one fanout between storage levels")
    hz = arch.clock_GHz * 1e9
    nodes: list[dict] = []
    for i, lv in enumerate(arch.levels):
        bits = lv.block_size * lv.word_bits

        def rate(bw):
            return "inf" if bw is None else bw / lv.block_size * hz

        keeps = " | ".join(RENAMES[t] for t in TENSORS if t in lv.keeps)
        nodes.append({"_tag": "Memory", "name": lv.name,
                      "size": "inf" if lv.size_words is None else lv.size_words * lv.word_bits,
                      "leak_power": 0, "area": 0,
                      "total_latency": "max(a.n_calls / a.throughput for a in actions)",
                      "actions": [{"name": "read", "energy": lv.read_energy_pJ * 1e-12, "bits_per_action": bits,
                                   "throughput": rate(lv.read_bw_words)},
                                  {"name": "write", "energy": lv.write_energy_pJ * 1e-12, "bits_per_action": bits,
                                   "throughput": rate(lv.write_bw_words)}],
                      "tensors": {"keep": "All" if i == 0 else f"~{arch.levels[0].name}",
                                  "may_keep": "All" if lv.keeps == frozenset(TENSORS) else keeps}})
        if i in fanouts:
            fx, fy = arch.fanout(i)
            nodes.append({"_tag": "Container", "name": "PE",
                          "spatial": [{"name": "X", "fanout": fx}, {"name": "Y", "fanout": fy}]})
    nodes.append({"_tag": "Compute", "name": arch.mac.name, "leak_power": 0, "area": 0,
                  "actions": [{"name": "compute", "energy": arch.mac.energy_pJ * 1e-12, "throughput": hz}]})
    return {"nodes": nodes}


def workload_spec(layer: Layer) -> dict:
    """One accelforge Einsum for ``layer`` (one group), over its non-unit dimensions."""
    dims = dict(zip(DIMS, layer.dims))
    used = {d: n for d, n in dims.items() if n > 1}
    var = {d: d.name.lower() for d in used}

    def term(*pairs):
        parts = [f"{coef}*{var[d]}" if coef != 1 else var[d] for coef, d in pairs if d in used]
        return " + ".join(parts) if parts else None

    width = (dims[Dim.P] - 1) * layer.Wstride + (dims[Dim.R] - 1) * layer.Wdilation + 1
    height = (dims[Dim.Q] - 1) * layer.Hstride + (dims[Dim.S] - 1) * layer.Hdilation + 1
    ranks = {d.name: n for d, n in used.items()}
    inputs = {"N": term((1, Dim.N)), "C": term((1, Dim.C)), "H": term((layer.Hstride, Dim.Q), (layer.Hdilation, Dim.S)),
              "W": term((layer.Wstride, Dim.P), (layer.Wdilation, Dim.R))}
    ranks.update({"H": height, "W": width})
    inputs = {k: v for k, v in inputs.items() if v is not None}
    ranks = {k: v for k, v in ranks.items() if v > 1}
    return {"rank_sizes": ranks, "bits_per_value": {"All": 8},
            "einsums": [{"name": "Layer", "tensor_accesses": [
                {"name": "I", "projection": inputs},
                {"name": "Wt", "projection": [var[d] for d in (Dim.K, Dim.C, Dim.R, Dim.S) if d in used]},
                {"name": "O", "projection": [var[d] for d in (Dim.N, Dim.K, Dim.Q, Dim.P) if d in used],
                 "output": True}],
                "renames": {RENAMES[t]: TENSOR_NAMES_AF[t] for t in TENSORS}}]}


def parse_axes(text: str) -> dict[str, tuple[Dim, ...]]:
    """``"X=K,Y=C"`` -> {"X": (K,), "Y": (C,)}: the dimensions each mesh axis may iterate ("X=KP" two)."""
    out: dict[str, tuple[Dim, ...]] = {}
    for part in filter(None, text.split(",")):
        axis, _, dims = part.partition("=")
        if axis not in ("X", "Y") or not dims or any(ch not in Dim.__members__ for ch in dims):
            raise SpecError(f"accelforge axes = {part!r}: expected X=DIMS or Y=DIMS (dimensions from NKCPQRS)")
        out[axis] = tuple(Dim[ch] for ch in dims)
    return out


def restrict_axes(arch_doc: dict, layer: Layer, axes: dict[str, tuple[Dim, ...]]) -> dict:
    """``loop_bounds`` on the fanout's X / Y: every non-unit dimension not allowed on an axis iterates once there.

    accelforge's mapspace lets one dimension span both mesh axes, which Timeloop's does not; with
    disjoint allowed sets every mapping it returns puts each dimension on one axis.
    """
    used = [d for d, n in zip(DIMS, layer.dims) if n > 1]
    for node in arch_doc["nodes"]:
        for spatial in node.get("spatial", []):
            allowed = axes.get(spatial["name"])
            if allowed is not None:
                spatial["loop_bounds"] = [{"expression": d.name.lower(), "operator": "==", "value": 1}
                                          for d in used if d not in allowed]
    return arch_doc


def spec_text(layer: Layer, arch: Architecture, axes: dict[str, tuple[Dim, ...]] | None = None) -> str:
    """The spec file: YAML with accelforge's ``!Memory`` / ``!Container`` / ``!Compute`` tags."""
    arch_doc = restrict_axes(arch_spec(arch), layer, axes or {})
    text = yaml.safe_dump({"arch": arch_doc, "workload": workload_spec(layer)}, sort_keys=False)
    for tag in ("Memory", "Container", "Compute"):
        text = text.replace(f"- _tag: {tag}\n", f"- !{tag}\n")
    return text


class NotExpressible(Exception):
    """A loop tree that is no Timeloop mapping of this architecture (the message says why)."""


def mapping_from_loop_tree(nodes: list[dict], layer: Layer, arch: Architecture) -> tuple[Mapping, list[str]]:
    """The project's mapping for an accelforge loop tree, and the approximations made (module docstring)."""
    dim_of = {d.name.lower(): d for d in DIMS}
    tensor_of = {v: t for t, v in TENSOR_NAMES_AF.items()}
    names = [lv.name for lv in arch.levels]
    levels = len(names)
    temporal = [[1] * len(DIMS) for _ in range(levels)]
    sx, sy = [[1] * len(DIMS) for _ in range(levels)], [[1] * len(DIMS) for _ in range(levels)]
    order = [[] for _ in range(levels)]          # outermost first
    spatial_order = [[] for _ in range(levels)]  # outermost first
    keep = [set() for _ in range(levels)]
    tile = dict(zip(DIMS, layer.dims))
    level, notes, loops_since = -1, [], 0
    for node in nodes:
        kind = node["type"]
        if kind == "storage":
            idx = names.index(node["component"])
            if idx == level and loops_since:
                notes.append(f"{'/'.join(node['tensors'])} placed below {loops_since} loop(s) of {names[idx]}: "
                             f"its Timeloop tile spans them")
            if idx != level:
                loops_since = 0
            level = idx
            keep[idx] |= {tensor_of[t] for t in node["tensors"]}
        elif kind in ("temporal", "spatial"):
            if level < 0 or (kind == "spatial" and math.prod(arch.fanout(level)) == 1):
                raise NotExpressible(f"{kind} loop over {node['rank']} where {'no level holds data' if level < 0 else names[level] + ' has no fanout'}")
            d = dim_of[node["rank"]]
            factor, rest = divmod(tile[d], node["tile_shape"])
            if rest:
                raise NotExpressible(f"{d.name} tile {node['tile_shape']} does not divide {tile[d]} (imperfect factor)")
            tile[d] = node["tile_shape"]
            loops_since += 1
            if kind == "temporal":
                temporal[level][d] *= factor
                order[level].append(d)
            else:
                mine, other = (sx, sy) if node["axis"] == "X" else (sy, sx)
                if other[level][d] > 1:
                    raise NotExpressible(f"{d.name} on both mesh axes of the {names[level]} fanout "
                                         f"(Timeloop puts a dimension on one axis)")
                mine[level][d] *= factor
                spatial_order[level].append(d)
    out = []
    for i in range(levels):
        perm = list(dict.fromkeys(reversed(order[i])))
        perm += [d for d in DIMS if d not in perm]
        xs = [d for d in dict.fromkeys(reversed(spatial_order[i])) if sx[i][d] > 1]
        ys = [d for d in dict.fromkeys(reversed(spatial_order[i])) if sy[i][d] > 1]
        out.append(LevelMapping(target=names[i], temporal=tuple(temporal[i]), permutation=tuple(perm),
                                spatial_x=tuple(sx[i]), spatial_y=tuple(sy[i]),
                                keep=frozenset(TENSORS) if i == 0 else frozenset(keep[i]),
                                spatial_order=tuple(xs + ys + [d for d in DIMS if d not in xs and d not in ys])))
    return Mapping(levels=tuple(out)), notes


def run_accelforge(network, arch: Architecture, layer_names: list[str], python: str, time_limit_s: float,
                   axes: str = "") -> dict:
    """accelforge on the named layers: its mappings, their translation and exact re-scoring, or why not.

    ``axes`` (``"X=K,Y=C"``, :func:`parse_axes`) restricts the dimensions each mesh axis may iterate.
    """
    from benchmarks.external import rescore
    from formulation.model.validation import validate_mapping

    layers = {e.layer.name: e.layer for e in network.layers}
    allowed = parse_axes(axes)
    out = {"python": python, "time_limit_s": time_limit_s, "axes": axes, "layers": []}
    for name in layer_names:
        if name not in layers:
            raise SpecError(f"accelforge layers = {name!r}: not a layer of {network.name}")
        layer, row = layers[name], {"layer": name}
        with tempfile.TemporaryDirectory(prefix="accelforge-") as tmp:
            spec = Path(tmp) / "spec.yaml"
            spec.write_text(spec_text(layer, arch, allowed))
            row["spec"] = spec.read_text()
            t0 = time.perf_counter()
            try:
                proc = subprocess.run([python, str(WORKER), str(spec)], capture_output=True, text=True,
                                      timeout=time_limit_s, cwd=tmp)
            except subprocess.TimeoutExpired:
                row.update({"ok": False, "wall_s": time.perf_counter() - t0,
                            "error": f"no answer within {time_limit_s:.0f} s"})
                out["layers"].append(row)
                continue
        row["wall_s"] = time.perf_counter() - t0
        if proc.returncode != 0:
            row.update({"ok": False, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"})
            out["layers"].append(row)
            continue
        found = json.loads(proc.stdout)
        row.update({"ok": True, "accelforge_version": found["accelforge"], "mapper_wall_s": found["wall_s"],
                    "mappings": []})
        for m in found["mappings"]:
            entry = {"accelforge_energy_pJ": m["energy_J"] * 1e12, "accelforge_latency_s": m["latency_s"],
                     "accelforge_edp": m["energy_J"] * 1e12 * m["latency_s"], "loop_tree": m["nodes"]}
            try:
                mapping, notes = mapping_from_loop_tree(m["nodes"], layer, arch)
                validate_mapping(layer, arch, mapping)
            except (NotExpressible, SpecError) as err:
                entry.update({"translated": False, "reason": str(err)})
            else:
                from search.results import mapping_list

                entry.update({"translated": True, "approximate": notes, "mapping": mapping_list(arch, mapping),
                              **rescore(layer, arch, mapping)})
            row["mappings"].append(entry)
        scored = [e["edp"] for e in row["mappings"] if e.get("translated")]
        row["edp"] = min(scored) if scored else None
        out["layers"].append(row)
        print(f"  accelforge {name}: {row['wall_s']:.1f} s, {len(row['mappings'])} mapping(s), "
              f"{len(scored)} re-scored" + (f", best EDP {row['edp']:.5g} pJ s" if scored else ""), file=sys.stderr)
    return out
