"""Architecture templates: a hierarchy whose PE mesh and buffer sizes are design variables.

A template is a base :class:`~formulation.specs.types.Architecture` (technologies, word widths, block
sizes, bandwidths, energies at the base sizes) plus ranges for the PE mesh and for the sizes of
the buffers that may change. The levels replicated per PE are those with as many instances as
MACs; every other level has one instance. Energies per access scale with size as the technology
model says (``e = e_base (size / size_base)^slope``, :mod:`formulation.technology`), and area is
the technology model's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from formulation.specs.numbers import MAX_MESH_SIDE, MAX_SIZE_WORDS, check_int, show
from formulation.specs.types import Architecture, SpecError
from formulation.technology import energy_size_slope


@dataclass(frozen=True)
class Hardware:
    """One point of a template's hardware space."""

    mesh_x: int
    mesh_y: int
    sizes_words: tuple[tuple[str, int], ...]  # (level name, size) for the variable levels

    def size_of(self, name: str) -> int:
        return dict(self.sizes_words)[name]


@dataclass(frozen=True)
class ArchTemplate:
    name: str
    base: Architecture
    mesh_x_range: tuple[int, int]
    mesh_y_range: tuple[int, int]
    size_ranges: tuple[tuple[str, int, int], ...]  # (level name, min words, max words)

    def __post_init__(self) -> None:
        per_pe = self.array_levels
        for index, level in enumerate(self.base.levels):
            if index not in per_pe and level.instances != 1:
                raise SpecError(f"template {self.name}: level {level.name}.instances = {level.instances}: "
                                f"a template level has one instance or one per MAC ({self.base.mac.instances})")
        if not per_pe:
            raise SpecError(f"template {self.name}: levels = {[lv.name for lv in self.base.levels]}: "
                            f"needs at least one per-PE level above the MACs")
        for lo, hi, what in ((*self.mesh_x_range, "mesh_x"), (*self.mesh_y_range, "mesh_y")):
            if not 1 <= lo <= hi:
                raise SpecError(f"template {self.name}: {what} = [{lo}, {hi}]: needs 1 <= min <= max")
            if hi > MAX_MESH_SIDE:
                raise SpecError(f"template {self.name}: {what} = [{lo}, {hi}]: a mesh side is at most "
                                f"{MAX_MESH_SIDE:,} PEs")
        names = {lv.name for lv in self.base.levels}
        for name, lo, hi in self.size_ranges:
            if name not in names:
                raise SpecError(f"template {self.name}: sizes.{name} = [{lo}, {hi}]: no such level")
            if not 1 <= lo <= hi:
                raise SpecError(f"template {self.name}: sizes.{name} = [{lo}, {hi}]: needs 1 <= min <= max")
            if hi > MAX_SIZE_WORDS:
                raise SpecError(f"template {self.name}: sizes.{name} = [{lo}, {hi}]: a buffer holds at most "
                                f"{MAX_SIZE_WORDS:,} (2^40) words")
            if self.base.levels[self.base.level_index(name)].size_words is None:
                raise SpecError(f"template {self.name}: sizes.{name} = [{lo}, {hi}]: {name} is unbounded (DRAM)")

    @property
    def array_levels(self) -> tuple[int, ...]:
        """Indices of the per-PE levels (as many instances as MACs)."""
        return tuple(i for i, lv in enumerate(self.base.levels) if lv.instances == self.base.mac.instances
                     and self.base.mac.instances > 1)

    @property
    def array_fanout_level(self) -> int:
        """The level whose spatial fanout feeds the PE array."""
        return self.array_levels[0] - 1

    @property
    def variable_levels(self) -> tuple[int, ...]:
        return tuple(self.base.level_index(name) for name, _, _ in self.size_ranges)

    def instantiate(self, hw: Hardware) -> Architecture:
        """The concrete architecture at ``hw``: mesh, sizes, and size-scaled energies."""
        pes = hw.mesh_x * hw.mesh_y
        levels = []
        sizes = dict(hw.sizes_words)
        for i, level in enumerate(self.base.levels):
            new = level
            if i in self.array_levels:
                new = replace(new, instances=pes, mesh_x=hw.mesh_x)
            if level.name in sizes:
                scale = (sizes[level.name] / level.size_words) ** energy_size_slope(level.technology.value)
                new = replace(new, size_words=int(sizes[level.name]),
                              read_energy_pJ=level.read_energy_pJ * scale, write_energy_pJ=level.write_energy_pJ * scale,
                              fill_energy_pJ=level.fill_energy_pJ * scale,
                              update_energy_pJ=level.update_energy_pJ * scale)
            levels.append(new)
        mac = replace(self.base.mac, instances=pes, mesh_x=hw.mesh_x)
        return replace(self.base, name=f"{self.name}-{hw.mesh_x}x{hw.mesh_y}", levels=tuple(levels), mac=mac)

    def base_hardware(self) -> Hardware:
        mac = self.base.mac
        return Hardware(mac.mesh_x, mac.mesh_y, tuple((name, self.base.levels[self.base.level_index(name)].size_words)
                                                      for name, _, _ in self.size_ranges))


def default_template(arch: Architecture, spread: int = 16) -> ArchTemplate:
    """A template around ``arch``: every bounded level from size/spread to size*spread, mesh sides /4..x4."""
    mac = arch.mac
    ranges = tuple((lv.name, max(1, lv.size_words // spread), max(lv.size_words, min(lv.size_words * spread,
                                                                                    MAX_SIZE_WORDS)))
                   for lv in arch.levels if lv.size_words is not None)
    return ArchTemplate(name=f"{arch.name}-template", base=arch,
                        mesh_x_range=(max(1, mac.mesh_x // 4), max(mac.mesh_x, min(mac.mesh_x * 4, MAX_MESH_SIDE))),
                        mesh_y_range=(max(1, mac.mesh_y // 4), max(mac.mesh_y, min(mac.mesh_y * 4, MAX_MESH_SIDE))),
                        size_ranges=ranges)


def template_from_dict(doc, base: Architecture, name: str) -> ArchTemplate:
    """``{mesh_x: [lo, hi], mesh_y: [lo, hi], sizes: {LEVEL: [lo, hi]}}`` around ``base``."""
    if not isinstance(doc, dict):
        raise SpecError(f"template {name} = {show(doc)}: expected a mapping")
    for key in doc:
        if key not in ("name", "arch", "mesh_x", "mesh_y", "sizes"):
            raise SpecError(f"template {name}.{key} = {show(doc[key])}: unknown key (allowed: arch, mesh_x, mesh_y, sizes)")
    default = default_template(base)

    def pair(value, what):
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise SpecError(f"template {name}.{what} = {show(value)}: expected [min, max] integers")
        lo, hi = (check_int(v, f"template {name}.{what}", 1, 2 ** 63 - 1) for v in value)
        return lo, hi

    sizes = doc.get("sizes")
    if sizes is not None and not isinstance(sizes, dict):
        raise SpecError(f"template {name}.sizes = {show(sizes)}: expected {{LEVEL: [min, max]}}")
    ranges = default.size_ranges if sizes is None else tuple(
        (str(level), *pair(rng, f"sizes.{level}")) for level, rng in sizes.items())
    return ArchTemplate(name=str(doc.get("name", name)), base=base,
                        mesh_x_range=pair(doc["mesh_x"], "mesh_x") if "mesh_x" in doc else default.mesh_x_range,
                        mesh_y_range=pair(doc["mesh_y"], "mesh_y") if "mesh_y" in doc else default.mesh_y_range,
                        size_ranges=ranges)


def log_bounds(template: ArchTemplate) -> dict[str, tuple[float, float]]:
    """Natural-log bounds of the hardware variables, keyed ``mesh_x``, ``mesh_y`` and level names."""
    out = {"mesh_x": tuple(math.log(v) for v in template.mesh_x_range),
           "mesh_y": tuple(math.log(v) for v in template.mesh_y_range)}
    for name, lo, hi in template.size_ranges:
        out[name] = (math.log(lo), math.log(hi))
    return out
