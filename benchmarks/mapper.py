"""The exact mapper (:mod:`search.mapper`) on every layer of a network, against local search and random sampling.

For each distinct layer of ``--network`` on the fixed ``--arch``: :func:`search.mapper.map_layer`
for ``--objective`` (default EDP) with ``--time-limit`` seconds per layer (or, with
``--network-time S``, one budget of S seconds for the whole network shared by
:func:`search.mapper.schedule.map_layers` on ``--jobs`` workers: hardest first, a layer's search parked
and resumed on its worker until proven), recording the status
(proven optimal or not), the mapspace size, mappings evaluated, wall time, the best value, the
certified lower bound and the gap. Against it, re-scored by the same exact model:

* the local search of ``codesign optimize --fixed-hardware`` (:func:`search.optimize.optimize`
  with ``fixed_hardware=True``, its default settings: 4 starts on ``--jobs`` workers, seed 0,
  ``--ls-time-limit`` for the whole network), per layer (it minimizes the network objective, so a
  layer's value is its share; for energy and latency the network optimum is the per-layer one);
* the best of ``--samples`` random legal mappings (:func:`search.sampling.sample_mappings`),
  seed 0.

With ``--ls-start`` each layer's mapper starts from the local search's mapping (what
``optimize --method exact`` does), so its best is never worse than the local search's; without it
the mapper starts from random mappings improved by descent (:mod:`search.mapper.seed`).

Ratios are other / mapper (above 1: the mapper is better). The machine is shared: the load
average is recorded before and after. Results go to ``benchmarks/results/mapper.json``.

Other tools' mappers (timeloop-mapper free and guided, accelforge) are run by
:mod:`benchmarks.external`, whose stored results (``--external``, default
``benchmarks/results/external.json``; per tool and layer the latest run that has it) add a column
per tool, external / mapper, to each run's rows; ``--report`` prints that table for the last
stored mapper run of ``--network`` on ``--arch`` without running anything (:mod:`benchmarks.external_table`).

Run: ``python -m benchmarks mapper [--network resnet18] [--arch simple] [--time-limit 10]``;
``python -m benchmarks mapper --report [--network resnet18] [--arch simple]``.
"""

from __future__ import annotations

import benchmarks  # noqa: F401  (pins BLAS/OpenMP to one thread before NumPy is imported)

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import _loadavg, add_output_arguments, output_error, run_header, write_runs
from benchmarks.external_table import external_runs, format_table, latest_run, ratio_rows
from formulation.goals import Objective
from formulation.model.exact import evaluate_batch
from formulation.specs.catalog import load_arch, load_network
from formulation.specs.template import Hardware, default_template
from formulation.specs.types import SpecError
from search.design import Goal
from search.mapper import map_layer
from search.mapper.schedule import map_layers
from search.mapper.bounds import objective_of
from search.optimize import fixed_template, optimize
from search.sampling import sample_mappings

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "mapper.json"
DEFAULT_EXTERNAL = Path(__file__).resolve().parent / "results" / "external.json"
RANDOM_CHUNK = 20_000


def random_best(layer, arch, objective: Objective, samples: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    best, done, t0 = math.inf, 0, time.perf_counter()
    while done < samples:
        n = min(RANDOM_CHUNK, samples - done)
        ev = evaluate_batch(layer, arch, sample_mappings(layer, arch, n, rng))
        best = min(best, float(np.min(objective_of(objective, ev.energy_pJ, ev.cycles, arch.clock_GHz))))
        done += n
    return {"samples": samples, "best": best, "wall_s": time.perf_counter() - t0}


def local_search_layers(network, arch, objective: Objective, time_limit_s: float, jobs: int) -> dict:
    t0 = time.perf_counter()
    res = optimize(network, fixed_template(arch), Goal(objective), fixed_hardware=True, jobs=jobs,
                   time_limit_s=time_limit_s)
    out = {"status": res.status.value, "wall_s": time.perf_counter() - t0, "layers": {}, "mappings": {}}
    if res.best is not None:
        for entry, e, c, m in zip(network.layers, res.best.layer_energy_pJ, res.best.layer_cycles,
                                  res.best.design.mappings):
            out["layers"][entry.layer.name] = float(objective_of(objective, e, c, arch.clock_GHz))
            out["mappings"][entry.layer.name] = m
    return out


def hardware_point(arch, text: str):
    """``arch``'s template (:func:`formulation.specs.template.default_template`) at the point ``text`` =
    ``MXxMY[,LEVEL=WORDS...]`` (mesh sides, then the sizes of variable levels; the others keep ``arch``'s)."""
    template = default_template(arch)
    mesh, *sizes = text.split(",")
    try:
        mx, my = (int(v) for v in mesh.lower().split("x"))
        given = dict((k.strip(), int(v)) for k, v in (item.split("=") for item in sizes))
    except ValueError:
        raise SpecError(f"--hardware = {text!r}: expected MXxMY[,LEVEL=WORDS...], e.g. 64x48,GlobalBuffer=98304") from None
    if min([mx, my, *given.values()]) < 1:
        raise SpecError(f"--hardware = {text!r}: mesh sides and sizes must be positive")
    names = [name for name, _, _ in template.size_ranges]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise SpecError(f"--hardware = {text!r}: {unknown[0]} is not a variable level (levels: {', '.join(names)})")
    words = tuple((name, given.get(name, arch.levels[arch.level_index(name)].size_words)) for name in names)
    return template.instantiate(Hardware(mx, my, words))


def run(args) -> dict:
    network, arch = load_network(args.network), load_arch(args.arch)
    arch_name = arch.name
    if args.hardware:
        arch, arch_name = hardware_point(arch, args.hardware), f"{arch.name}@{args.hardware}"
    objective = Objective(args.objective)
    result = run_header("mapper", _loadavg())
    result.update({"network": network.name, "arch": arch_name, "objective": objective.value,
                   "mapper_started_from_local_search": bool(args.ls_start and args.ls_time_limit > 0),
                   "time_limit_per_layer_s": None if args.network_time else args.time_limit,
                   "network_time_limit_s": args.network_time or None, "samples": args.samples,
                   "jobs": args.jobs, "layers": []})
    ls = None
    if args.ls_time_limit > 0:
        print(f"local search (optimize --fixed-hardware, {args.ls_time_limit:.0f} s)", flush=True)
        ls = local_search_layers(network, arch, objective, args.ls_time_limit, args.jobs)
        result["local_search"] = {k: v for k, v in ls.items() if k not in ("layers", "mappings")}
    layers = [entry.layer for entry in network.layers]
    starts = [ls["mappings"].get(layer.name) if (ls is not None and args.ls_start) else None for layer in layers]
    if args.network_time:
        t0 = time.monotonic()
        results = map_layers(layers, arch, objective, time_limit_s=args.network_time, starts=starts, jobs=args.jobs,
                             on_layer_done=lambda i, r: print(f"  ... {time.monotonic() - t0:6.1f} s "
                                                              f"{layers[i].name}: {r.status.value}", flush=True))
        result["network_wall_s"] = time.monotonic() - t0
    else:
        results = [map_layer(layer, arch, objective, time_limit_s=args.time_limit, start=start)
                   for layer, start in zip(layers, starts)]
    total = 0.0
    for entry, r in zip(network.layers, results):
        layer = entry.layer
        cert = r.certificate.to_json()
        total += cert["wall_s"]
        row = {"layer": layer.name, "count": entry.count, "dims_NKCPQRS": list(layer.dims), "certificate": cert}
        if args.samples:
            row["random"] = random_best(layer, arch, objective, args.samples)
            row["random_over_mapper"] = row["random"]["best"] / cert["best"]
        if ls is not None and layer.name in ls["layers"]:
            row["local_search"] = ls["layers"][layer.name]
            row["local_search_over_mapper"] = ls["layers"][layer.name] / cert["best"]
        result["layers"].append(row)
        gap = "-" if cert["gap"] is None else f"{cert['gap']:.1%}"
        print(f"  {layer.name:18s} {'optimal' if cert['optimal'] else 'open':8s} {cert['wall_s']:7.1f} s  "
              f"best {cert['best']:.4g}  bound {cert['lower_bound']:.4g}  gap {gap}  mapspace {cert['mapspace']:.3g}  "
              f"evaluated {cert['evaluated']:,}"
              + (f"  LS/mapper {row['local_search_over_mapper']:.3f}" if "local_search_over_mapper" in row else "")
              + (f"  random/mapper {row['random_over_mapper']:.3f}" if "random_over_mapper" in row else ""),
              flush=True)
    result["mapper_wall_s_total"] = total
    add_external(result, args.external)
    result["proven_optimal"] = sum(r["certificate"]["optimal"] for r in result["layers"])
    result["load_average_1min"]["after"] = _loadavg()
    return result


def add_external(result: dict, external_file: Path) -> None:
    """Each row's ``external_over_mapper`` (tool -> ratio) from the stored external runs, if any."""
    runs = external_runs(external_file, result["network"], result["arch"]) if external_file.exists() else []
    if not runs or result["objective"] != "edp":
        return
    result["external_runs"] = [{"date": r["date"], "git_commit": r["git_commit"]} for r in runs]
    for row, ratios in zip(result["layers"], ratio_rows(result, runs)):
        row["external_over_mapper"] = ratios["ratios"]


def report(args) -> int:
    """Print the external / mapper table from the stored results; nothing is run."""
    mapper = latest_run(args.output, args.network, args.arch) if args.output.exists() else None
    runs = external_runs(args.external, args.network, args.arch) if args.external.exists() else []
    missing = ("--output", args.output) if mapper is None else ("--external", args.external) if not runs else None
    if missing:
        print(f"mapper: error: {missing[0]} = {str(missing[1])!r}: no edp run for {args.network} on {args.arch}",
              file=sys.stderr)
        return 2
    print(f"{args.network} on {args.arch}: mapper run {mapper['date']} ({str(mapper['git_commit'])[:8]}), "
          f"external runs {', '.join(r['date'] for r in runs)}; ratios external / mapper EDP\n")
    print(format_table(ratio_rows(mapper, runs)))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks mapper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="resnet18")
    parser.add_argument("--arch", default="simple")
    parser.add_argument("--hardware", default=None, metavar="MXxMY[,LEVEL=WORDS...]",
                        help="map on --arch's template (mesh sides /4..x4, sizes /16..x16) at this point, "
                             "e.g. 64x48,GlobalBuffer=98304,RegisterFile=16 (the co-design's large arrays)")
    parser.add_argument("--objective", default="edp", choices=["energy", "latency", "edp"])
    parser.add_argument("--time-limit", type=float, default=10.0, help="per layer, s (default %(default)s)")
    parser.add_argument("--network-time", type=float, default=0.0,
                        help="one budget for the whole network, s, shared by search.mapper.schedule.map_layers "
                             "(replaces --time-limit; default 0: off)")
    parser.add_argument("--samples", type=int, default=200_000, help="random mappings per layer (0: skip)")
    parser.add_argument("--ls-time-limit", type=float, default=60.0, help="local search budget, s (0: skip)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="workers of the local search and of --network-time's layers (default %(default)s)")
    parser.add_argument("--ls-start", action="store_true",
                        help="start each layer's mapper from the local search's mapping (as optimize --method exact)")
    add_output_arguments(parser, DEFAULT_OUTPUT)
    parser.add_argument("--external", type=Path, default=DEFAULT_EXTERNAL,
                        help="stored results of benchmarks external (a column per tool)")
    parser.add_argument("--report", action="store_true",
                        help="print external / mapper per layer from --output and --external; run nothing")
    args = parser.parse_args(argv)
    if args.report:
        return report(args)
    if (problem := output_error(args)) is not None:
        parser.error(problem)
    try:
        result = run(args)
    except SpecError as err:
        parser.error(str(err))
    wall = (f"network wall time {result['network_wall_s']:.1f} s, the layers' search times summed "
            if "network_wall_s" in result else "the layers' wall times summed ")
    print(f"mapper: {result['proven_optimal']} of {len(result['layers'])} layers proven optimal; "
          f"{wall}{result['mapper_wall_s_total']:.1f} s")
    write_runs(result, args.output, args.append)
    return 0
