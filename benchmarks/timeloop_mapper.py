"""timeloop-mapper (NVlabs/timeloop v3.0.3) on one layer: write its inputs, run it, read its best mapping back.

The inputs are the project's Timeloop export (:mod:`formulation.specs.timeloop_export`:
``arch.yaml``, ``problem.yaml``, ``ERT.yaml``) plus two files of the mapper's own:

``mapper.yaml`` -- ``optimization-metrics: [edp]``, ``algorithm: random-pruned`` (Timeloop's
    default), ``num-threads`` (1 by default), ``victory-condition`` (stop after that many
    consecutive valid mappings that do not improve the best) and ``timeout`` (stop after that
    many consecutive invalid ones). Timeloop's random-pruned search draws from a
    ``std::default_random_engine`` it never seeds, so with one thread a run that ends by victory or
    timeout is the same run every time; the wall-clock cap (SIGINT after ``time_limit_s``, which
    Timeloop answers by finishing the current evaluations and writing its best) is a safety net
    whose stopping point depends on the machine's speed.

``constraints.yaml`` -- ``mapspace_constraints``: a ``bypass`` directive for every level whose
    ``keeps`` exclude a tensor (the mapper would otherwise try to keep it there), and in **guided**
    mode a ``utilization`` constraint ``min`` = :func:`max_spatial_utilization` on the innermost
    storage level (where Timeloop requires it): only mappings whose spatial factors use as much of
    the PE array as the layer's dimensions allow (the whole 16x16 array of ``simple`` for every
    ResNet-18 layer but the FC one) are kept. **Free** mode has no utilization constraint.

Timeloop writes ``timeloop-mapper.map.yaml`` (the best mapping as ``mapping:`` directives, factors
in its compact ``C16`` form), ``timeloop-mapper.stats.txt`` and ``timeloop-mapper.map.txt``.
:func:`read_mapper_output` reads the mapping with the project's Timeloop import
(:mod:`formulation.specs.timeloop_import`) and Timeloop's own energy and cycles from the stats
(:func:`parse_stats`), so the caller can re-score the mapping with the exact model and compare.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from formulation.axes import TENSOR_NAMES, TENSORS
from formulation.factors import divisors
from formulation.specs.timeloop_export import arch_document, ert_document, problem_document, to_yaml
from formulation.specs.timeloop_import import problem_for_layer
from formulation.specs.timeloop_import.mapping import mapping_from_timeloop
from formulation.specs.types import Architecture, Layer, Mapping, SpecError

DEFAULT_ROOT = Path(os.environ.get("TIMELOOP_ROOT", "/opt/timeloop-v3.0.3"))
MODES = ("free", "guided")
INPUT_FILES = ("arch.yaml", "problem.yaml", "ERT.yaml", "mapper.yaml", "constraints.yaml")
MAP_YAML, STATS_TXT = "timeloop-mapper.map.yaml", "timeloop-mapper.stats.txt"
# every "... energy (total) : X pJ" line of timeloop-model's stats: per tensor and level, MACs, networks
_ENERGY_TOTAL = re.compile(r"^\s*[A-Za-z ]*[Ee]nergy \(total\)\s*:\s*([-+0-9.eE]+)\s*pJ\s*$", re.M)
_CYCLES = re.compile(r"^Cycles:\s*(\d+)\s*$", re.M)
_UTILIZATION = re.compile(r"^Utilization:\s*([0-9.]+)\s*$", re.M)


@dataclass(frozen=True)
class MapperSettings:
    """One timeloop-mapper configuration (see the module docstring)."""

    victory_condition: int = 1000
    timeout: int = 1_000_000
    threads: int = 1
    time_limit_s: float = 120.0
    algorithm: str = "random-pruned"


@dataclass(frozen=True)
class MapperOutput:
    """Timeloop's best mapping (as the project's :class:`Mapping`) and Timeloop's own numbers for it."""

    mapping: Mapping
    mapping_document: list           # the directives of timeloop-mapper.map.yaml, as Timeloop wrote them
    energy_pJ: float                 # sum of the stats' "(total)" energies (each printed with 2 decimals)
    energy_lines: int                # how many such lines were summed (the rounding error is at most 0.005 pJ each)
    cycles: int
    utilization: float


def max_spatial_utilization(layer: Layer, arch: Architecture) -> float:
    """The largest fraction of the PE array (over every fanout) the layer's spatial factors can occupy.

    Timeloop's ``utilization`` constraint compares ``prod over fanouts of used / available``
    with its ``min``. A fanout from level ``i`` has ``fx x fy`` children; a mapping puts each
    dimension on at most one mesh axis per fanout with a factor dividing what the levels above
    left of it, the X factors multiplying to at most ``fx`` and the Y ones to at most ``fy``. This
    enumerates every such choice (seven dimensions, their divisors: small) and returns the best
    product, so the constraint ``min = max_spatial_utilization`` is satisfiable by construction.
    """
    fanouts = [arch.fanout(i) for i in range(len(arch.levels))]
    fanouts = [f for f in fanouts if f[0] * f[1] > 1]

    def best(k: int, remaining: tuple[int, ...]) -> float:
        if k == len(fanouts):
            return 1.0
        fx, fy = fanouts[k]
        top = 0.0
        for used_x, used_y, left in _axis_choices(remaining, 0, fx, fy):
            top = max(top, used_x * used_y / (fx * fy) * best(k + 1, left))
        return top

    return best(0, tuple(layer.dims))


def _axis_choices(remaining: tuple[int, ...], d: int, room_x: int, room_y: int):
    """Every (X product, Y product, dims left) from placing dimensions ``d..`` on X, Y or neither."""
    if d == len(remaining):
        yield 1, 1, remaining
        return
    for sub_x, sub_y, left in _axis_choices(remaining, d + 1, room_x, room_y):
        yield sub_x, sub_y, left
        for f in divisors(remaining[d])[1:]:
            rest = left[:d] + (left[d] // f,) + left[d + 1:]
            if sub_x * f <= room_x:
                yield sub_x * f, sub_y, rest
            if sub_y * f <= room_y:
                yield sub_x, sub_y * f, rest


def constraints_document(layer: Layer, arch: Architecture, mode: str) -> dict:
    """``mapspace_constraints``: the architecture's bypasses, and in guided mode the utilization floor."""
    if mode not in MODES:
        raise SpecError(f"mode = {mode!r}: expected one of {', '.join(MODES)}")
    out: list[dict] = []
    for level in arch.levels:
        if level.keeps != frozenset(TENSORS):
            out.append({"target": level.name, "type": "bypass",
                        "keep": [TENSOR_NAMES[t] for t in TENSORS if t in level.keeps],
                        "bypass": [TENSOR_NAMES[t] for t in TENSORS if t not in level.keeps]})
    if mode == "guided":
        out.append({"target": arch.levels[-1].name, "type": "utilization",
                    "min": max_spatial_utilization(layer, arch) - 1e-9})
    return {"mapspace_constraints": out}


def mapper_document(settings: MapperSettings) -> dict:
    return {"mapper": {"optimization-metrics": ["edp"], "algorithm": settings.algorithm,
                       "num-threads": settings.threads, "victory-condition": settings.victory_condition,
                       "timeout": settings.timeout, "max-permutations-per-if-visit": 16,
                       "live-status": False, "log-suboptimal": False}}


def write_inputs(layer: Layer, arch: Architecture, mode: str, settings: MapperSettings, workdir: Path) -> list[Path]:
    """Write the five input files into ``workdir`` (created) and return their paths."""
    workdir.mkdir(parents=True, exist_ok=True)
    docs = [arch_document(arch), problem_document(layer), ert_document(arch), mapper_document(settings),
            constraints_document(layer, arch, mode)]
    paths = []
    for name, doc in zip(INPUT_FILES, docs):
        (workdir / name).write_text(to_yaml(doc))
        paths.append(workdir / name)
    return paths


def run_mapper(workdir: Path, settings: MapperSettings, root: Path = DEFAULT_ROOT) -> dict:
    """Run timeloop-mapper in ``workdir`` (inputs already written); SIGINT at the time limit.

    Returns the wall time, the exit code, how the search ended (``victory``, ``timeout``,
    ``exhausted``, ``time_limit`` or ``unknown``) and the tail of Timeloop's output.
    """
    exe = root / "bin" / "timeloop-mapper"
    if not exe.exists():
        raise SpecError(f"timeloop-mapper = {str(exe)!r}: not found (set TIMELOOP_ROOT to a Timeloop v3.0.3 build)")
    env = dict(os.environ, LD_LIBRARY_PATH=f"{root / 'lib'}:{os.environ.get('LD_LIBRARY_PATH', '')}")
    t0 = time.perf_counter()
    with open(workdir / "timeloop-mapper.log", "w") as log:
        proc = subprocess.Popen([str(exe), *INPUT_FILES], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        interrupted = False
        try:
            proc.wait(timeout=settings.time_limit_s)
        except subprocess.TimeoutExpired:
            interrupted = True
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - t0
    text = (workdir / "timeloop-mapper.log").read_text(errors="replace")
    if interrupted:
        ended = "time_limit"
    elif "suboptimal mappings found since the last upgrade" in text:
        ended = "victory"
    elif "invalid mappings" in text and "terminating search" in text:
        ended = "timeout"
    elif "search algorithm is done" in text:
        ended = "exhausted"
    else:
        ended = "unknown"
    return {"wall_s": wall, "returncode": proc.returncode, "ended_by": ended, "log_tail": text[-600:]}


def parse_stats(text: str) -> tuple[float, int, int, float]:
    """(energy pJ, lines summed, cycles, utilization) from a timeloop-model/-mapper ``stats.txt``.

    The energy is the sum of every ``... Energy (total) : X pJ`` line (each data-space at each
    level with its temporal-reduction and address-generation parts, the MACs, every network's
    energy, link-transfer and spatial-reduction parts), which is Timeloop's total; the summary's
    ``Energy: N uJ`` line has only two decimals in uJ.
    """
    values = [float(v) for v in _ENERGY_TOTAL.findall(text)]
    cycles, util = _CYCLES.search(text), _UTILIZATION.search(text)
    if not values or cycles is None:
        raise SpecError("timeloop stats = (no energy or cycles): not a timeloop-model/-mapper stats.txt")
    return sum(values), len(values), int(cycles.group(1)), float(util.group(1)) if util else float("nan")


def read_mapper_output(workdir: Path, layer: Layer, arch: Architecture) -> MapperOutput:
    """The best mapping in ``workdir``'s ``timeloop-mapper.map.yaml`` and Timeloop's numbers for it.

    For a grouped layer (``G > 1``) Timeloop's numbers are those of one group, as exported.
    """
    map_path, stats_path = workdir / MAP_YAML, workdir / STATS_TXT
    if not map_path.exists() or not stats_path.exists():
        raise SpecError(f"timeloop-mapper output = {str(workdir)!r}: no {MAP_YAML} / {STATS_TXT} "
                        f"(the mapper found no valid mapping)")
    doc = yaml.safe_load(map_path.read_text())
    # the exported problem is one group of a grouped layer; a Mapping describes one group too
    one_group = dataclasses.replace(layer, C=layer.C // layer.G, K=layer.K // layer.G, G=1)
    problem, dims = problem_for_layer(one_group)
    mapping = mapping_from_timeloop(doc, arch, problem, dims)
    energy, lines, cycles, util = parse_stats(stats_path.read_text())
    return MapperOutput(mapping=mapping, mapping_document=doc["mapping"], energy_pJ=energy, energy_lines=lines,
                        cycles=cycles, utilization=util)


__all__ = ["MODES", "MapperOutput", "MapperSettings", "constraints_document", "max_spatial_utilization",
           "parse_stats", "read_mapper_output", "run_mapper", "write_inputs"]
