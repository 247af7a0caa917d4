"""Other tools' mappers on every layer of a network, each mapping re-scored by this project's exact model.

For each distinct layer of ``--network`` on the fixed ``--arch``, **timeloop-mapper v3.0.3**
(:mod:`benchmarks.timeloop_mapper`; ``TIMELOOP_ROOT``, default ``/opt/timeloop-v3.0.3``) searches
for the minimum-EDP mapping in two modes:

* ``free``: Timeloop's default mapspace (only the architecture's bypasses constrained);
* ``guided``: the same with a ``utilization`` floor equal to the largest fraction of the PE array
  the layer's dimensions can fill (1.0, the whole 16x16 array of ``simple``, for every ResNet-18
  layer but the FC one), so only mappings using the array fully are searched.

Each run has one thread (``--threads``), ``--victory`` consecutive non-improving valid mappings
to stop, and a wall-clock cap of ``--time-limit`` s (SIGINT; Timeloop then writes its best).
The best mapping Timeloop wrote (``timeloop-mapper.map.yaml``) is read with the project's
Timeloop import and **re-scored with the exact model** (:func:`formulation.model.exact.evaluate`);
the row says whether the re-scored cycles equal Timeloop's and the energy is within Timeloop's
print rounding (0.005 pJ per summed ``Energy (total)`` line); for a grouped layer (``G > 1``) the
check is on one group (Timeloop's problem, as exported) and the stored numbers are the whole
layer's (the model runs the groups one after another, which is not exactly ``G`` times one group). Stored per layer and mode: the
mapping in the project's mapping format (:func:`search.results.mapping_list`, readable by
:func:`formulation.specs.loading.mapping_from_list`), Timeloop's own directives, the re-scored
EDP (pJ s), energy (pJ) and cycles, Timeloop's numbers, the wall time and how the search ended.

With ``--accelforge LAYER,...`` the FFM mapper of the ``accelforge`` package is tried on those
layers too (:mod:`benchmarks.accelforge_run`, run in its own interpreter ``--accelforge-python``
through :mod:`benchmarks.accelforge_worker`; accelforge is never a dependency of the project);
``--accelforge-axes X=K,Y=C`` restricts the dimensions each mesh axis may iterate, so that its
mappings put each dimension on one axis as Timeloop's do. ``--modes ''`` runs accelforge alone.

The load average is recorded before and after (the machine is shared). Results go to
``benchmarks/results/external.json`` (``--append`` adds a run). ``python -m benchmarks mapper
--report`` shows external / mapper ratios per layer from the stored results, without rerunning.

Run: ``python -m benchmarks external [--network resnet18] [--arch simple] [--time-limit 120]``.
"""

from __future__ import annotations

import benchmarks  # noqa: F401  (pins BLAS/OpenMP to one thread before NumPy is imported)

import argparse
import dataclasses
import math
import sys
import tempfile
from pathlib import Path

from benchmarks.common import _loadavg, add_output_arguments, output_error, run_header, write_runs
from benchmarks.accelforge_run import parse_axes
from benchmarks.external_table import latest_run, ratio_rows
from benchmarks.timeloop_mapper import (DEFAULT_ROOT, MODES, MapperSettings, max_spatial_utilization,
                                        read_mapper_output, run_mapper, write_inputs)
from formulation.goals import Objective, objective_value, seconds
from formulation.model.exact import evaluate
from formulation.specs.catalog import load_arch, load_network
from formulation.specs.types import SpecError
from search.results import mapping_list

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUTPUT = RESULTS / "external.json"


def spatial_utilization(arch, mapping) -> float:
    """The fraction of the PE array the mapping's spatial factors occupy (product over fanouts)."""
    used = 1.0
    for i, lm in enumerate(mapping.levels):
        fx, fy = arch.fanout(i)
        used *= math.prod(lm.spatial) / (fx * fy)
    return used


def rescore(layer, arch, mapping) -> dict:
    """The exact model's energy (pJ), cycles, EDP (pJ s), MAC and array utilization and fit of one mapping."""
    ev = evaluate(layer, arch, mapping)
    energy, cycles = float(ev.energy_pJ[0]), int(ev.cycles[0])
    return {"energy_pJ": energy, "cycles": cycles, "fits": bool(ev.fits[0]),
            "edp": objective_value(Objective.EDP, energy, seconds(cycles, arch.clock_GHz)),
            "utilization": ev.macs / (cycles * arch.mac.instances),
            "spatial_utilization": spatial_utilization(arch, mapping)}


def timeloop_row(layer, arch, mode: str, settings: MapperSettings, workdir: Path, root: Path) -> dict:
    """One timeloop-mapper run on ``layer`` in ``mode``, its best mapping re-scored by the exact model."""
    write_inputs(layer, arch, mode, settings, workdir)
    run = run_mapper(workdir, settings, root)
    row = {"mode": mode, "wall_s": run["wall_s"], "ended_by": run["ended_by"]}
    if mode == "guided":
        row["min_utilization"] = max_spatial_utilization(layer, arch)
    try:
        out = read_mapper_output(workdir, layer, arch)
    except SpecError as err:
        row.update({"ok": False, "error": str(err), "log_tail": run["log_tail"]})
        return row
    ours = rescore(layer, arch, out.mapping)
    # Timeloop's problem is one group of a grouped layer (export-timeloop): the check re-scores one
    # group; the stored EDP is the whole layer's, as the model runs the G groups one after another
    one = ours if layer.G == 1 else rescore(dataclasses.replace(layer, C=layer.C // layer.G, K=layer.K // layer.G,
                                                                G=1), arch, out.mapping)
    tolerance = 0.005 * out.energy_lines + 1e-12 * out.energy_pJ
    row.update({
        "ok": True,
        "mapping": mapping_list(arch, out.mapping),
        "timeloop_mapping": out.mapping_document,
        "timeloop": {"energy_pJ": out.energy_pJ, "cycles": out.cycles, "utilization": out.utilization,
                     "edp": objective_value(Objective.EDP, out.energy_pJ, seconds(out.cycles, arch.clock_GHz)),
                     "of_one_group": layer.G > 1},
        **ours,
        "energy_abs_diff_pJ": abs(one["energy_pJ"] - out.energy_pJ),
        "energy_tolerance_pJ": tolerance,
        "rescore_matches": one["cycles"] == out.cycles and abs(one["energy_pJ"] - out.energy_pJ) <= tolerance,
    })
    return row


def run(args) -> dict:
    from tqdm import tqdm

    network, arch = load_network(args.network), load_arch(args.arch)
    settings = MapperSettings(victory_condition=args.victory, timeout=args.timeout, threads=args.threads,
                              time_limit_s=args.time_limit)
    result = run_header("external", _loadavg())
    result.update({"network": network.name, "arch": arch.name, "objective": "edp", "tools": {},
                   "timeloop_mapper": {"root": str(args.timeloop_root), "version": "v3.0.3",
                                       "modes": list(args.modes), "settings": settings.__dict__},
                   "layers": []})
    entries = [e for e in network.layers if (not args.layers or e.layer.name in args.layers) and args.modes]
    unknown = sorted(set(args.layers) - {e.layer.name for e in network.layers})
    if unknown:
        raise SpecError(f"layers = {unknown[0]!r}: not a layer of {network.name}")
    bar = tqdm(total=len(entries) * len(args.modes), desc=f"timeloop-mapper {network.name}/{arch.name}",
               unit="run", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="external-") as tmp:
        base = Path(args.workdir) if args.workdir else Path(tmp)
        for entry in entries:
            layer = entry.layer
            row = {"layer": layer.name, "count": entry.count, "dims_NKCPQRS": list(layer.dims), "timeloop_mapper": {}}
            for mode in args.modes:
                bar.set_postfix_str(f"{layer.name} {mode}")
                tl = timeloop_row(layer, arch, mode, settings, base / arch.name / layer.name / mode,
                                  args.timeloop_root)
                row["timeloop_mapper"][mode] = tl
                bar.update(1)
                bar.write(_line(layer.name, tl))
            result["layers"].append(row)
    bar.close()
    if args.accelforge:
        from benchmarks.accelforge_run import run_accelforge

        result["accelforge"] = run_accelforge(network, arch, args.accelforge.split(","), args.accelforge_python,
                                              args.accelforge_time_limit, args.accelforge_axes)
    result["tools"] = {f"timeloop-mapper {m}": ["timeloop_mapper", m] for m in args.modes}
    result["load_average_1min"]["after"] = _loadavg()
    return result


def _line(name: str, tl: dict) -> str:
    if not tl.get("ok"):
        return f"  {name:18s} {tl['mode']:6s} FAILED: {tl.get('error')}"
    return (f"  {name:18s} {tl['mode']:6s} {tl['wall_s']:6.1f} s ({tl['ended_by']})  EDP {tl['edp']:.5g} pJ s  "
            f"array {tl['spatial_utilization']:.3f}  re-score {'= Timeloop' if tl['rescore_matches'] else 'MISMATCH'} "
            f"(cycles {tl['cycles']}, Timeloop {tl['timeloop']['cycles']}"
            f"{' for one group' if tl['timeloop'].get('of_one_group') else ''}, "
            f"energy diff {tl['energy_abs_diff_pJ']:.3g} pJ)")


def summary(result: dict, mapper_file: Path) -> None:
    rows = [tl for r in result["layers"] for tl in r["timeloop_mapper"].values()]
    ok = [tl for tl in rows if tl.get("ok")]
    print(f"\n{len(ok)} of {len(rows)} timeloop-mapper runs gave a mapping; "
          f"{sum(tl['rescore_matches'] for tl in ok)} re-scored exactly as Timeloop reported")
    mapper = latest_run(mapper_file, result["network"], result["arch"]) if mapper_file.exists() else None
    if mapper is None:
        return
    print(f"against the mapper run of {mapper['date']} ({mapper['git_commit'][:8]}), external / mapper EDP:")
    for row in ratio_rows(mapper, result):
        cells = "  ".join(f"{tool} {'-' if v is None else f'{v:.3f}'}" for tool, v in row["ratios"].items())
        print(f"  {row['layer']:18s} {cells}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks external", description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="resnet18")
    parser.add_argument("--arch", default="simple")
    parser.add_argument("--layers", default=(), type=lambda s: tuple(s.split(",")), help="only these (comma-separated)")
    parser.add_argument("--modes", default="free,guided", type=lambda s: tuple(m for m in s.split(",") if m),
                        help="timeloop-mapper modes (default %(default)s; '' runs no Timeloop, e.g. accelforge only)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="wall cap per run, s (default %(default)s)")
    parser.add_argument("--victory", type=int, default=1000, help="victory-condition (default %(default)s)")
    parser.add_argument("--timeout", type=int, default=1_000_000, help="consecutive invalid mappings to stop")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeloop-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--workdir", help="keep Timeloop's files here (default: a temporary directory)")
    parser.add_argument("--accelforge", default="", help="comma-separated layer names to try accelforge on")
    parser.add_argument("--accelforge-python", default=sys.executable, help="interpreter with accelforge installed")
    parser.add_argument("--accelforge-axes", default="",
                        help="dimensions each mesh axis may iterate, e.g. X=K,Y=C (default: any)")
    parser.add_argument("--accelforge-time-limit", type=float, default=600.0, help="per layer, s")
    parser.add_argument("--mapper-results", type=Path, default=RESULTS / "mapper.json")
    add_output_arguments(parser, DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if (problem := output_error(args)) is not None:
        print(f"external: error: {problem}", file=sys.stderr)
        return 2
    bad = [m for m in args.modes if m not in MODES]
    if bad:
        print(f"external: error: modes = {bad[0]!r}: expected {', '.join(MODES)}", file=sys.stderr)
        return 2
    try:
        parse_axes(args.accelforge_axes)
        names = {e.layer.name for e in load_network(args.network).layers}
        unknown = [n for n in args.accelforge.split(",") if n and n not in names]
        if unknown:
            raise SpecError(f"accelforge layers = {unknown[0]!r}: not a layer of {args.network}")
    except SpecError as err:
        print(f"external: error: {err}", file=sys.stderr)
        return 2
    exe = args.timeloop_root / "bin" / "timeloop-mapper"
    if args.modes and not exe.exists():
        print(f"external: error: timeloop-mapper = {str(exe)!r}: not found (build NVlabs/timeloop tag v3.0.3 "
              f"and set TIMELOOP_ROOT or --timeloop-root)", file=sys.stderr)
        return 2
    try:
        result = run(args)
    except SpecError as err:
        print(f"external: error: {err}", file=sys.stderr)
        return 2
    summary(result, args.mapper_results)
    write_runs(result, args.output, args.append)
    return 0
