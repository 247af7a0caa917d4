"""Reading specs from YAML/JSON documents: the one place where user input is checked.

The formats are those of the Timeloop reference cases (``layer``, ``arch``, ``mapping``), with a few
optional extras (``G``, dilations, ``keeps``, ``fill_energy``/``update_energy``). Every problem is
reported as a :class:`~formulation.specs.types.SpecError` whose message names the field and the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from formulation.axes import DIMS, TENSOR_BY_NAME, TENSOR_NAMES, TENSORS, Dim
from formulation.specs.numbers import (
    BANDWIDTH_RANGE,
    CLOCK_GHZ_RANGE,
    MAX_DIM,
    MAX_ENERGY_PJ,
    MAX_INSTANCES,
    MAX_BLOCK_SIZE,
    MAX_NETWORK_MACS,
    MAX_OCCURRENCES,
    MAX_REPEAT,
    MAX_SIZE_WORDS,
    MAX_WORD_BITS,
    check_int,
    check_layer_counts,
    check_name,
    check_real,
    show,
)
from formulation.specs.safe_load import load_file, parse_json, read_text
from formulation.specs.types import (
    Architecture,
    Layer,
    LevelMapping,
    Mac,
    Mapping,
    Network,
    SpecError,
    StorageLevel,
    Technology,
)

LAYER_KEYS = ("N", "C", "K", "P", "Q", "R", "S", "Wstride", "Hstride", "Wdilation", "Hdilation", "G")


def read_document(path: str | Path) -> Any:
    """Parse a YAML 1.2 or JSON file, bounded and strict (:mod:`formulation.specs.safe_load`)."""
    return load_file(path)


def _mapping_doc(doc: Any, what: str) -> MappingABC:
    if type(doc) is not dict and not isinstance(doc, MappingABC):  # a dict is the common case: no ABC check
        raise SpecError(f"{what} = {show(doc)}: expected a mapping of keys to values")
    return doc


def _check_keys(doc: MappingABC, allowed: tuple[str, ...] | set[str], what: str) -> None:
    for key in doc:
        if key not in allowed:
            raise SpecError(f"{what}.{key} = {show(doc[key])}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _int(doc: MappingABC, key: str, what: str, default: int | None = None, hi: int = MAX_DIM) -> int:
    value = doc.get(key, default)
    if value is None:
        raise SpecError(f"{what}.{key} = None: missing")
    return check_int(value, f"{what}.{key}", 1, hi)


def _number(doc: MappingABC, key: str, what: str, default: float | None = None,
            hi: float = MAX_ENERGY_PJ) -> float | None:
    value = doc.get(key, default)
    if value is None:
        return None
    return check_real(value, f"{what}.{key}", 0.0, hi)


def layer_from_dict(doc: Any, name: str | None = None) -> Layer:
    what = f"layer {name}" if name else "layer"
    doc = _mapping_doc(doc, what)
    _check_keys(doc, set(LAYER_KEYS) | {"name"}, what)
    layer_name = check_name(doc.get("name", name or "layer"), f"{what}.name")
    values = {k: _int(doc, k, what, default=1 if k not in "NCKPQ" else None) for k in LAYER_KEYS}
    layer = Layer(name=layer_name, **values)
    check_layer_counts(layer, what)
    return layer


def network_from_dict(doc: Any, default_name: str = "network") -> Network:
    """A network from ``{name, layers}``; each entry a layer with optional ``count``, ``parallel``, ``inputs``.

    The entries are the graph's occurrences in a topological order. ``inputs`` names the earlier
    occurrences an entry reads (``[]``: the network input); without it an entry reads the entry
    before it (the first reads the network input), so a plain list is a chain. ``count: n`` is ``n``
    copies one after another (named ``NAME``, ``NAME#2``, ...; only the first reads ``inputs``);
    ``parallel: n`` is ``n`` independent runs side by side that read the same inputs (attention
    heads). Entries with equal shapes are merged into one distinct layer, named after the first,
    with their counts summed (:func:`formulation.specs.graph.network_from_occurrences`).
    """
    from formulation.specs.graph import network_from_occurrences

    doc = _mapping_doc(doc, "network")
    _check_keys(doc, {"name", "layers"}, "network")
    name = check_name(doc.get("name", default_name), "network.name")
    raw = doc.get("layers")
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"network.layers = {show(raw)}: must be a non-empty list")
    occurrences: list[tuple[Layer, tuple[str, ...], int]] = []
    for i, item in enumerate(raw):
        item = _mapping_doc(item, f"network.layers[{i}]")
        layer_doc = {k: v for k, v in item.items() if k not in ("count", "repeat", "parallel", "inputs")}
        what = f"network.layers[{i}]"
        count = _int(item, "count", what, default=item.get("repeat", 1), hi=MAX_OCCURRENCES)
        parallel = _int(item, "parallel", what, default=1, hi=MAX_REPEAT)
        if len(occurrences) + count > MAX_OCCURRENCES:
            raise SpecError(f"{what}.count = {count}: the network would list more than {MAX_OCCURRENCES:,} layer "
                            f"occurrences")
        layer = layer_from_dict(layer_doc, name=check_name(item.get("name", f"layer{i}"), f"{what}.name"))
        if "inputs" in item:
            inputs = item["inputs"]
            if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
                raise SpecError(f"{what}.inputs = {show(inputs)}: must be a list of earlier layer names")
        else:
            inputs = [occurrences[-1][0].name] if occurrences else []
        for k in range(count):
            copy = layer if k == 0 else replace(layer, name=f"{layer.name}#{k + 1}")
            occurrences.append((copy, tuple(inputs) if k == 0 else (occurrences[-1][0].name,), parallel))
    network = network_from_occurrences(name, occurrences)
    if network.macs > MAX_NETWORK_MACS:
        raise SpecError(f"network {name} MACs = {network.macs:,}: must be at most {MAX_NETWORK_MACS:,} (2^56)")
    return network


LEVEL_KEYS = {"name", "technology", "size", "word_bits", "block_size", "instances", "meshX", "read_energy",
              "write_energy", "fill_energy", "update_energy", "read_bw", "write_bw", "keeps"}
MAC_KEYS = {"name", "instances", "meshX", "word_bits", "energy"}


ONES = (1,) * len(DIMS)
ALL_TENSORS = frozenset(TENSORS)
# Pure functions of hashable values, memoized: a file of cases repeats the same few strings. The
# dimension strings are bounded (at most 13,700 strings of distinct letters), the tensor lists capped.
_DIM_STRINGS: dict[str, tuple[Dim, ...]] = {}
_COMPLETED: dict[tuple[Dim, ...], tuple[Dim, ...]] = {}
_TENSOR_SETS: dict[tuple, frozenset] = {}


def _tensor_list(value: Any, what: str) -> frozenset:
    if not isinstance(value, list):
        raise SpecError(f"{what} = {show(value)}: must be a list of tensor names (Weights, Inputs, Outputs)")
    key = tuple(value) if all(type(item) is str for item in value) else None
    got = _TENSOR_SETS.get(key) if key is not None else None
    if got is not None:
        return got
    out = set()
    for item in value:
        if not isinstance(item, str) or item not in TENSOR_BY_NAME:
            raise SpecError(f"{what} = {show(item)}: unknown tensor (use Weights, Inputs, Outputs)")
        out.add(TENSOR_BY_NAME[item])
    got = frozenset(out)
    if key is not None and len(_TENSOR_SETS) < 1024:
        _TENSOR_SETS[key] = got
    return got


def level_from_dict(doc: Any, index: int) -> StorageLevel:
    what = f"arch.levels[{index}]"
    doc = _mapping_doc(doc, what)
    _check_keys(doc, LEVEL_KEYS, what)
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{what}.name = {show(name)}: must be a non-empty string")
    name = check_name(name, f"{what}.name")
    what = f"arch level {name}"
    tech_raw = doc.get("technology", "SRAM")
    try:
        tech = Technology(tech_raw)
    except (TypeError, ValueError):
        raise SpecError(f"{what}.technology = {show(tech_raw)}: must be DRAM, SRAM or regfile") from None
    size = None if doc.get("size") is None else _int(doc, "size", what, hi=MAX_SIZE_WORDS)
    if size is None and tech is not Technology.DRAM:
        raise SpecError(f"{what}.size = None: only a DRAM level may be unbounded")
    instances = _int(doc, "instances", what, default=1, hi=MAX_INSTANCES)
    write = _number(doc, "write_energy", what)
    read = _number(doc, "read_energy", what)
    if read is None or write is None:
        raise SpecError(f"{what}.{'read_energy' if read is None else 'write_energy'} = None: missing")
    keeps = _tensor_list(doc["keeps"], f"{what}.keeps") if "keeps" in doc else frozenset(TENSORS)
    read_bw = doc.get("read_bw")
    write_bw = doc.get("write_bw")
    for key, value in (("read_bw", read_bw), ("write_bw", write_bw)):
        if value is not None:
            check_real(value, f"{what}.{key}", *BANDWIDTH_RANGE)
    return StorageLevel(
        name=name, technology=tech, size_words=size,
        word_bits=_int(doc, "word_bits", what, default=8, hi=MAX_WORD_BITS),
        block_size=_int(doc, "block_size", what, default=1, hi=MAX_BLOCK_SIZE),
        instances=instances, mesh_x=_int(doc, "meshX", what, default=instances, hi=MAX_INSTANCES),
        read_energy_pJ=read, write_energy_pJ=write,
        fill_energy_pJ=_number(doc, "fill_energy", what, default=write),
        update_energy_pJ=_number(doc, "update_energy", what, default=write),
        read_bw_words=read_bw, write_bw_words=write_bw, keeps=keeps)


def arch_from_dict(doc: Any) -> Architecture:
    doc = _mapping_doc(doc, "arch")
    _check_keys(doc, {"name", "levels", "mac", "clock_GHz"}, "arch")
    levels = doc.get("levels")
    if not isinstance(levels, list) or not levels:
        raise SpecError(f"arch.levels = {show(levels)}: must be a non-empty list, outermost level first")
    mac_doc = _mapping_doc(doc.get("mac"), "arch.mac")
    _check_keys(mac_doc, MAC_KEYS, "arch.mac")
    mac_instances = _int(mac_doc, "instances", "arch.mac", hi=MAX_INSTANCES)
    energy = _number(mac_doc, "energy", "arch.mac")
    if energy is None:
        raise SpecError("arch.mac.energy = None: missing")
    mac = Mac(instances=mac_instances, mesh_x=_int(mac_doc, "meshX", "arch.mac", default=mac_instances,
                                                   hi=MAX_INSTANCES),
              energy_pJ=energy, word_bits=_int(mac_doc, "word_bits", "arch.mac", default=8, hi=MAX_WORD_BITS),
              name=check_name(mac_doc.get("name", "MACC"), "arch.mac.name"))
    clock = check_real(doc.get("clock_GHz", 1.0), "arch.clock_GHz", *CLOCK_GHZ_RANGE)
    return Architecture(name=check_name(doc.get("name", "arch"), "arch.name"),
                        levels=tuple(level_from_dict(lv, i) for i, lv in enumerate(levels)), mac=mac, clock_GHz=clock)


MAPPING_KEYS = {"target", "temporal", "permutation", "spatial", "spatial_permutation", "split", "keep", "bypass"}


_DIM_BY_NAME = {d.name: d for d in DIMS}


def _dim_factors(value: Any, what: str) -> dict[Dim, int]:
    if value is None:
        return {}
    value = _mapping_doc(value, what)
    out = {}
    for key, factor in value.items():
        dim = _DIM_BY_NAME.get(key) if type(key) is str else None
        if dim is None:
            raise SpecError(f"{what}.{key} = {show(factor)}: unknown dimension (use N K C P Q R S)")
        out[dim] = factor if type(factor) is int and 1 <= factor <= MAX_DIM else _int(value, key, what)
    return out


def _dim_string(value: Any, what: str) -> tuple[Dim, ...]:
    got = _DIM_STRINGS.get(value) if type(value) is str else None
    if got is not None:
        return got
    if not isinstance(value, str) or not set(value) <= _DIM_BY_NAME.keys() or len(set(value)) != len(value):
        raise SpecError(f"{what} = {show(value)}: must be a string of distinct letters from NKCPQRS")
    got = tuple(_DIM_BY_NAME[ch] for ch in value)
    if type(value) is str:
        _DIM_STRINGS[value] = got
    return got


def _completed(listed: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """``listed`` followed by the dimensions it leaves out, in canonical order."""
    got = _COMPLETED.get(listed)
    if got is None:
        got = _COMPLETED[listed] = listed + tuple(d for d in DIMS if d not in listed)
    return got


def level_mapping_from_dict(doc: Any, level: StorageLevel, outermost: bool) -> LevelMapping:
    return LevelMapping(level.name, *level_fields_from_dict(doc, level, outermost))


def level_fields_from_dict(doc: Any, level: StorageLevel, outermost: bool) -> tuple:
    """The fields of a :class:`LevelMapping` after ``target`` (``temporal, permutation, spatial_x,
    spatial_y, keep, spatial_order``) from one level of the mapping format: the format's one parser
    and checker (``evaluate --cases`` encodes these tuples without building the objects)."""
    what = f"mapping[{level.name}]"
    doc = _mapping_doc(doc, what)
    _check_keys(doc, MAPPING_KEYS, what)
    temporal = _dim_factors(doc.get("temporal"), f"{what}.temporal")
    spatial = _dim_factors(doc.get("spatial"), f"{what}.spatial")
    # Dimensions the permutation leaves out go outermost, in canonical order.
    perm = _completed(_dim_string(doc.get("permutation", ""), f"{what}.permutation"))
    sperm_doc = doc["spatial_permutation"] if "spatial_permutation" in doc else "".join(d.name for d in spatial)
    if isinstance(sperm_doc, str) and sperm_doc not in _DIM_STRINGS and len(set(sperm_doc)) < len(sperm_doc):
        twice = next(ch for ch in sperm_doc if sperm_doc.count(ch) > 1)
        raise SpecError(f"{what}.spatial_permutation = {sperm_doc!r}: {twice} on both mesh axes of one fanout "
                        f"is not supported (give each dimension one axis)")
    sperm = _dim_string(sperm_doc, f"{what}.spatial_permutation")
    for d in spatial:
        if d not in sperm:
            raise SpecError(f"{what}.spatial_permutation = {''.join(x.name for x in sperm)!r}: "
                            f"does not list spatial dimension {d.name}")
    split = check_int(doc.get("split", len(sperm)), f"{what}.split", 0, len(sperm))
    if spatial:  # sperm lists each dimension once: the X ones first, then the Y ones
        sx, sy = list(ONES), list(ONES)
        for k, d in enumerate(sperm):
            (sx if k < split else sy)[d] = spatial.get(d, 1)
        spatial_x, spatial_y = tuple(sx), tuple(sy)
    else:
        spatial_x = spatial_y = ONES
    if "keep" in doc:
        keep = _tensor_list(doc["keep"], f"{what}.keep")
    else:
        keep = ALL_TENSORS
    if "bypass" in doc:
        bypass = _tensor_list(doc["bypass"], f"{what}.bypass")
        clash = keep & bypass if "keep" in doc else frozenset()
        if clash:
            raise SpecError(f"{what}.bypass = {TENSOR_NAMES[min(clash)]!r}: also listed under keep")
        keep = keep - bypass
    if outermost and keep != ALL_TENSORS:
        raise SpecError(f"{what}.bypass = {sorted(TENSOR_NAMES[t] for t in set(TENSORS) - keep)!r}: "
                        f"the outermost level keeps every tensor")
    extra = keep - level.keeps
    if extra:
        raise SpecError(f"{what}.keep = {TENSOR_NAMES[min(extra)]!r}: level {level.name} cannot hold it "
                        f"(it keeps {sorted(TENSOR_NAMES[t] for t in level.keeps)})")
    # the spatial loops, X ones first (sperm[:split] + sperm[split:]), then the others
    return tuple(map(temporal.get, DIMS, ONES)), perm, spatial_x, spatial_y, keep, _completed(sperm)


def mapping_from_list(doc: Any, arch: Architecture) -> Mapping:
    return mapping_from_fields(mapping_fields_from_list(doc, arch), arch)


def mapping_from_fields(fields: tuple[tuple, ...], arch: Architecture) -> Mapping:
    """The :class:`Mapping` of :func:`mapping_fields_from_list`'s tuples."""
    return Mapping(levels=tuple(LevelMapping(lv.name, *f) for f, lv in zip(fields, arch.levels)))


def mapping_fields_from_list(doc: Any, arch: Architecture) -> tuple[tuple, ...]:
    """:func:`level_fields_from_dict` of every level of a mapping document, outermost first."""
    if isinstance(doc, MappingABC) and "mapping" in doc:
        doc = doc["mapping"]
    if not isinstance(doc, list):
        raise SpecError(f"mapping = {show(doc)}: must be a list with one entry per storage level, outermost first")
    if len(doc) != len(arch.levels):
        raise SpecError(f"mapping = {len(doc)} levels: architecture {arch.name} has {len(arch.levels)} storage levels "
                        f"({', '.join(lv.name for lv in arch.levels)})")
    levels = []
    for i, (entry, level) in enumerate(zip(doc, arch.levels)):
        entry = _mapping_doc(entry, f"mapping[{i}]")
        target = entry.get("target", level.name)
        if target != level.name:
            raise SpecError(f"mapping[{i}].target = {show(target)}: expected level {level.name!r} (outermost first)")
        levels.append(level_fields_from_dict(entry, level, outermost=i == 0))
    return tuple(levels)


@dataclass(frozen=True)
class Case:
    """One evaluation request in the reference-case format, with the reference results if present."""

    id: str
    layer: Layer
    arch: Architecture
    mapping: Mapping
    reference: dict | None = None


CASE_KEYS = {"id", "set", "layer_name", "arch_name", "seed", "sampler", "layer", "arch", "mapping", "tags",
             "timeloop"}


def case_from_dict(doc: Any, index: int = 0, *, validate: bool = True,
                   specs: dict[tuple[str, str, str], tuple[Layer, Architecture]] | None = None) -> Case:
    """A :class:`Case` from one parsed case line; errors name ``case ID`` and the field.

    With ``validate=False`` the mapping's legality (:func:`formulation.model.validation.validate_mapping`)
    is left to the caller (``evaluate --cases`` checks whole groups at once). ``specs`` caches the
    layer and architecture of lines whose ``layer``/``arch`` objects are textually identical.
    """
    from formulation.model.validation import validate_mapping

    case_id, layer, arch, fields, reference = case_parts_from_dict(doc, index, specs)
    mapping = mapping_from_fields(fields, arch)
    if validate:
        try:
            validate_mapping(layer, arch, mapping)
        except SpecError as exc:
            raise SpecError(f"case {case_id}: {exc}") from None
    return Case(id=case_id, layer=layer, arch=arch, mapping=mapping, reference=reference)


def _key_text(doc: Any) -> bytes | str:
    """A JSON text of ``doc`` for keying the cache of parsed specs (orjson when it can, else ``json``)."""
    import orjson

    try:
        return orjson.dumps(doc)
    except TypeError:  # e.g. integers beyond 64 bits: left to the spec checks
        return json.dumps(doc)


def case_parts_from_dict(doc: Any, index: int = 0,
                         specs: dict[tuple[str, str, str], tuple[Layer, Architecture]] | None = None) -> tuple:
    """``(id, layer, arch, mapping fields, reference)`` of one case line, the mapping as
    :func:`mapping_fields_from_list` tuples (not checked for legality); see :func:`case_from_dict`."""
    doc = _mapping_doc(doc, f"case {index}")
    _check_keys(doc, CASE_KEYS, f"case {doc.get('id', index)}")
    case_id = check_name(doc.get("id", f"case-{index}"), f"case {index}.id", max_chars=1024)
    for key in ("layer", "arch", "mapping"):
        if key not in doc:
            raise SpecError(f"case {case_id}.{key} = None: missing")
    try:
        layer_name = check_name(doc.get("layer_name", "layer"), "layer_name")
        key = (layer_name, _key_text(doc["layer"]), _key_text(doc["arch"])) if specs is not None else None
        if key is not None and key in specs:
            layer, arch = specs[key]
        else:
            layer = layer_from_dict(doc["layer"], name=layer_name)
            arch = arch_from_dict(doc["arch"])
            if key is not None:
                specs[key] = (layer, arch)
        fields = mapping_fields_from_list(doc["mapping"], arch)
    except SpecError as exc:
        raise SpecError(f"case {case_id}: {exc}") from None
    return case_id, layer, arch, fields, doc.get("timeloop")


def read_cases(path: str | Path) -> list[Case]:
    """Read a JSON-lines file of cases (one object per line; blank lines are skipped)."""
    p = Path(path)
    cases = []
    for lineno, line in enumerate(read_text(p, "cases", max_bytes=2 ** 31).splitlines(), start=1):
        if not line.strip():
            continue
        doc = parse_json(line, f"{p.name} line {lineno}")
        cases.append(case_from_dict(doc, index=lineno))
    return cases
