"""Timeloop mappings (``mapping:`` directive lists) as a :class:`~formulation.specs.types.Mapping`.

Each directive has a ``target`` (a storage level, by name without instance range) and a ``type``:

* ``temporal``: ``factors`` (a string ``"R=3 P=1 K=2"``, or ``"R3 P1 K2"`` as timeloop-mapper writes
  its ``timeloop-mapper.map.yaml`` (Timeloop's own parser takes the ``=`` as optional), a list of
  such strings or a mapping of dimension to factor; dimensions not given have factor 1) and ``permutation`` (loops
  **innermost first**, a string of one-letter dimensions, a space-separated string or a list);
* ``spatial``: ``factors``, ``permutation`` and ``split``: the first ``split`` dimensions of the
  permutation go along mesh X, the rest along Y (all along X without ``split``); spatial factors
  sit on the parent of the fanout, as in this project;
* ``bypass`` (also spelt ``datatype`` or ``dataspace``): ``keep`` and ``bypass`` lists of
  data-space names. A data-space a level's directives do not bypass is kept there.

Dimensions a permutation leaves out follow the listed ones (outer) in the problem's dimension
order (Timeloop pads "with arbitrary order" and warns; the two agree whenever the padded loops'
order does not change the counts, as for unit factors). Factors and permutations use the problem's dimension names, translated through
:class:`~formulation.specs.timeloop_import.problem.ProblemMap`. The group dimension of a depthwise
or grouped problem must be the outermost non-unit temporal loop of the outermost level: the model
runs groups one after another, so any other placement is rejected with one line. A level no
directive names has unit factors and keeps everything. Factor 0 (left for a mapper to choose) is
not a mapping the model can evaluate and is rejected.
"""

from __future__ import annotations

import re
from typing import Any

from formulation.axes import DIMS, TENSORS, Dim
from formulation.specs.timeloop_import.ert import base_name
from formulation.specs.timeloop_import.problem import GROUP, ProblemMap
from formulation.specs.types import Architecture, LevelMapping, Mapping, SpecError

BYPASS_TYPES = ("bypass", "datatype", "dataspace")
# NAME=FACTOR, or Timeloop's compact NAME FACTOR form ("C16": letters, then digits, as its own parser reads it)
_FACTOR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(-?\d+)|\b([A-Za-z]+)(\d+)\b")


def _factors(value: Any, problem_dims: list[str], where: str) -> dict[str, int]:
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    else:
        text = " ".join(value) if isinstance(value, list) else str(value or "")
        items = [(m.group(1), int(m.group(2))) if m.group(1) else (m.group(3), int(m.group(4)))
                 for m in _FACTOR.finditer(text)]
        leftover = _FACTOR.sub("", text).replace(",", " ").strip()
        if leftover:
            raise SpecError(f"{where}.factors = {text!r}: expected DIM=FACTOR (or DIMFACTOR) entries")
    out: dict[str, int] = {}
    for name, factor in items:
        if name not in problem_dims:
            raise SpecError(f"{where}.factors {name} = {factor!r}: not a problem dimension ({' '.join(problem_dims)})")
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise SpecError(f"{where}.factors {name} = {factor!r}: must be a positive integer (0 is for the mapper)")
        out[name] = factor
    return out


def _permutation(value: Any, problem_dims: list[str], where: str) -> list[str]:
    if value is None:
        names: list[str] = []
    elif isinstance(value, list):
        names = [str(v) for v in value]
    elif all(len(d) == 1 for d in problem_dims) and " " not in str(value).strip():
        names = list(str(value).strip())
    else:
        names = str(value).replace(",", " ").split()
    bad = [n for n in names if n not in problem_dims]
    if bad or len(set(names)) != len(names):
        raise SpecError(f"{where}.permutation = {value!r}: must list distinct problem dimensions "
                        f"({' '.join(problem_dims)}), innermost first")
    return names + [d for d in problem_dims if d not in names]


def _directives(doc: Any, arch: Architecture) -> dict[str, list[dict]]:
    if isinstance(doc, dict) and "mapping" in doc:
        doc = doc["mapping"]
    if not isinstance(doc, list):
        raise SpecError(f"mapping = {str(doc)[:40]!r}: expected a list of directives (target, type, ...)")
    by_level: dict[str, list[dict]] = {lv.name: [] for lv in arch.levels}
    for i, d in enumerate(doc):
        if not isinstance(d, dict) or "target" not in d:
            raise SpecError(f"mapping[{i}] = {str(d)[:40]!r}: each directive needs a target and a type")
        target = base_name(d["target"])
        if target not in by_level:
            raise SpecError(f"mapping[{i}].target = {d['target']!r}: not a storage level "
                            f"({', '.join(by_level)})")
        kind = str(d.get("type", "temporal"))
        if kind not in ("temporal", "spatial", *BYPASS_TYPES):
            raise SpecError(f"mapping[{i}].type = {kind!r}: not supported (temporal, spatial, bypass)")
        by_level[target].append({**d, "type": "bypass" if kind in BYPASS_TYPES else kind})
    return by_level


def _keep(directives: list[dict], problem: ProblemMap, where: str) -> frozenset:
    keep = set(TENSORS)
    for d in directives:
        if d["type"] != "bypass":
            continue
        listed = {}
        for key in ("keep", "bypass"):
            for name in d.get(key) or []:
                t = problem.tensor(str(name))
                if t is None:
                    raise SpecError(f"{where}.{key} = {name!r}: not a data-space of the problem")
                if listed.get(t, key) != key:
                    raise SpecError(f"{where}.bypass = {name!r}: also listed under keep")
                listed[t] = key
        keep -= {t for t, key in listed.items() if key == "bypass"}
        keep |= {t for t, key in listed.items() if key == "keep"}
    return frozenset(keep)


def _level(level_name: str, directives: list[dict], problem: ProblemMap, dims: list[str],
           groups: dict[str, int], outermost: bool) -> LevelMapping:
    where = f"mapping[{level_name}]"
    temporal = {d: 1 for d in DIMS}
    spatial = {d: 1 for d in DIMS}
    perm = list(dims)
    spatial_perm: list[str] = list(dims)
    split = None
    seen = set()
    for d in directives:
        kind = d["type"]
        if kind in seen:
            raise SpecError(f"{where}.type = {kind!r}: given twice for this level")
        seen.add(kind)
        if kind == "bypass":
            continue
        factors = _factors(d.get("factors"), dims, f"{where}.{kind}")
        for name, f in factors.items():
            role = problem.dim(name)
            if role == GROUP:
                groups[f"{level_name}.{kind}"] = groups.get(f"{level_name}.{kind}", 1) * f
            elif role is not None:
                (temporal if kind == "temporal" else spatial)[role] = f
        names = _permutation(d.get("permutation"), dims, f"{where}.{kind}")
        if kind == "temporal":
            perm = names
        else:
            spatial_perm = names
            split = d.get("split", len(names))
            if isinstance(split, bool) or not isinstance(split, int) or not 0 <= split <= len(names):
                raise SpecError(f"{where}.spatial.split = {split!r}: must be an integer from 0 to {len(names)}")
    if outermost:
        _check_group_outermost(perm, problem, temporal, where)
    order = [problem.dim(n) for n in perm if isinstance(problem.dim(n), Dim)]
    order += [d for d in DIMS if d not in order]
    split = len(spatial_perm) if split is None else split
    x_dims = [problem.dim(n) for n in spatial_perm[:split] if isinstance(problem.dim(n), Dim)]
    y_dims = [problem.dim(n) for n in spatial_perm[split:] if isinstance(problem.dim(n), Dim)]
    x_dims = [d for d in x_dims if spatial[d] > 1]
    y_dims = [d for d in y_dims if spatial[d] > 1]
    spatial_order = x_dims + y_dims + [d for d in DIMS if d not in x_dims and d not in y_dims]
    return LevelMapping(target=level_name, temporal=tuple(temporal[d] for d in DIMS), permutation=tuple(order),
                        spatial_x=tuple(spatial[d] if d in x_dims else 1 for d in DIMS),
                        spatial_y=tuple(spatial[d] if d in y_dims else 1 for d in DIMS),
                        keep=_keep(directives, problem, where), spatial_order=tuple(spatial_order))


def _check_group_outermost(perm: list[str], problem: ProblemMap, temporal: dict, where: str) -> None:
    """Outside the group loop (later in the innermost-first permutation) only unit loops may sit."""
    group = [n for n in perm if problem.dim(n) == GROUP]
    if not group:
        return
    outside = perm[perm.index(group[0]) + 1:]
    busy = [n for n in outside if isinstance(problem.dim(n), Dim) and temporal[problem.dim(n)] > 1]
    if busy:
        raise SpecError(f"{where}.permutation = {''.join(perm)!r}: the group dimension {group[0]} must be the "
                        f"outermost loop with a factor > 1 (the model runs groups one after another; {busy[0]} is "
                        f"outside it)")


def mapping_from_timeloop(doc: Any, arch: Architecture, problem: ProblemMap, problem_dims: list[str]) -> Mapping:
    """A :class:`Mapping` from a Timeloop ``mapping:`` list (module docstring); not yet validated."""
    by_level = _directives(doc, arch)
    groups: dict[str, int] = {}
    levels = tuple(_level(lv.name, by_level[lv.name], problem, problem_dims, groups, outermost=i == 0)
                   for i, lv in enumerate(arch.levels))
    g = problem.layer.G
    group_dims = [n for n, role in problem.dims if role == GROUP]
    # without a group dimension (one of our layers with its export's one-group problem) the
    # mapping describes one group, as a Mapping does
    if g > 1 and group_dims:
        outer = f"{arch.levels[0].name}.temporal"
        misplaced = [k for k, f in groups.items() if k != outer and f > 1]
        name = group_dims[0]
        if misplaced:
            raise SpecError(f"mapping[{misplaced[0].replace('.', '].')} {name} = {groups[misplaced[0]]}: the group "
                            f"dimension may only be split by the outermost level's temporal loop (the model runs "
                            f"groups one after another)")
        if groups.get(outer, 1) != g:
            raise SpecError(f"mapping factors of {name} = {groups.get(outer, 1)}: must multiply to {g}")
    if levels[0].keep != frozenset(TENSORS):
        raise SpecError(f"mapping[{levels[0].target}].bypass = {sorted(set(TENSORS) - levels[0].keep)!r}: the "
                        f"outermost level keeps every data-space")
    return Mapping(levels=levels)
