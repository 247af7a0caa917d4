"""``codesign map``: the proven best mapping of one layer on fixed hardware (the exact mapper)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from codesign.args import _number_arg
from formulation.goals import seconds
from formulation.jsonsafe import json_text
from formulation.specs.types import SpecError

MAPPING_FILE = "mapping.yaml"
CERTIFICATE_FILE = "certificate.json"


def _objective(value: str):
    from formulation.goals import Objective

    allowed = ("energy", "latency", "edp")
    if str(value).lower() not in allowed:
        raise SpecError(f"--objective = {value!r}: the exact mapper minimizes one of {', '.join(allowed)}")
    return Objective(str(value).lower())


def summary(layer, arch, result) -> str:
    """A readable summary of a :class:`search.mapper.MapperResult`."""
    cert = result.certificate
    unit = {"energy": "pJ", "latency": "s", "edp": "pJ*s"}[cert.objective.value]
    lines = [f"{layer.name} on {arch.name}: {cert.objective.value} "
             + ("PROVEN OPTIMAL" if cert.optimal else f"not proven ({result.status.value}), gap {cert.gap:.2%}")]
    if result.mapping is not None:
        lines.append(f"  best          {cert.best:.6g} {unit}  (energy {result.energy_pJ:.6g} pJ, {result.cycles:,} cycles)")
    lines.append(f"  lower bound   {cert.lower_bound:.6g} {unit}")
    lines.append(f"  mapspace      {cert.mapspace:.4g} mappings; evaluated {cert.evaluated:,} "
                 f"(+{cert.seed_evaluations:,} to seed); remaining {cert.remaining:.4g}")
    for rule, count in cert.pruned.items():
        lines.append(f"  cut by {rule:<26s} {count:.4g}")
    if result.pareto:
        lines.append(f"  front         {len(result.pareto)} non-dominated (energy, cycles) points"
                     + (" (proven)" if cert.optimal else " (among the mappings scored)"))
    lines.append(f"  wall          {cert.wall_s:.1f} s")
    return "\n".join(lines)


def cmd_map(args) -> int:
    from tqdm import tqdm

    from codesign.cli import _load_layer
    from formulation.specs.catalog import load_arch
    from search.mapper import MapperStatus, map_layer
    from search.results import atomic_write_text, mapping_list

    if args.layer is None or args.arch is None:
        raise SpecError("--layer/--arch = None: give both (--layer NETWORK:LAYER or a file, --arch NAME or a file)")
    objective = _objective(args.objective)
    limit = math.inf if str(args.time_limit).lower() == "none" else _number_arg(args.time_limit, "--time-limit")
    seed = _number_arg(args.seed, "--seed", int, 0, strict=False)
    layer = _load_layer(args.layer)
    arch = load_arch(args.arch)
    out = Path(args.out) if args.out else Path("out") / f"map-{layer.name}-{arch.name}-{objective.value}"
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out = {str(out)!r}: exists and is not a directory")
    if (out / CERTIFICATE_FILE).exists() and not args.force:
        raise SpecError(f"--out = {str(out)!r}: already holds {CERTIFICATE_FILE} (use --force to overwrite)")
    bar = tqdm(total=1000, desc=f"{layer.name} on {arch.name}", unit="‰ of mapspace", file=sys.stderr,
               disable=args.quiet or not sys.stderr.isatty(), leave=False)

    def tick(covered: float) -> None:
        bar.update(max(0, int(covered * 1000) - bar.n))

    try:
        result = map_layer(layer, arch, objective, time_limit_s=limit, seed=seed, progress=tick, front=args.pareto)
    finally:
        bar.close()
    out.mkdir(parents=True, exist_ok=True)
    if result.mapping is not None:
        import yaml

        atomic_write_text(out / MAPPING_FILE, yaml.safe_dump(mapping_list(arch, result.mapping), sort_keys=False))
    doc = {"layer": layer.name, "arch": arch.name, "status": result.status.value,
           "energy_pJ": result.energy_pJ if result.mapping is not None else None,
           "cycles": result.cycles if result.mapping is not None else None,
           "certificate": result.certificate.to_json()}
    if args.pareto:
        doc["pareto"] = {"proven": result.certificate.optimal,
                         "points": [{"energy_pJ": e, "cycles": c, "latency_s": seconds(c, arch.clock_GHz)}
                                    for e, c in result.pareto]}
    atomic_write_text(out / CERTIFICATE_FILE, json_text(doc, indent=2) + "\n")
    print(summary(layer, arch, result))
    print(f"wrote {out / CERTIFICATE_FILE}" + (f" and {out / MAPPING_FILE}" if result.mapping is not None else ""))
    if result.status is MapperStatus.INTERRUPTED:
        print("codesign: interrupted; wrote the best mapping found so far", file=sys.stderr)
        return 130
    if result.status is MapperStatus.INFEASIBLE:
        print("codesign: no legal mapping: every keep choice overflows a buffer", file=sys.stderr)
        return 1
    return 0
