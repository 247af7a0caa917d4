"""The ``codesign`` command line.

Every user mistake ends in one line on stderr (``codesign: error: …``) and exit status 2, never
in a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from formulation.specs.types import SpecError
from codesign.cmd_optimize import (  # noqa: F401  (re-exported: the method registry and its default job)
    DEFAULT_AREA_BUDGET_MM2,
    DEFAULT_STARTS,
    DEFAULT_TIME_LIMIT_S,
    OPTIMIZE_METHODS,
    _codesign_run,
    cmd_optimize,
    cmd_run_default,
    register_method,
)
from codesign.cmd_solve import cmd_solve


def _load_layer(spec: str):
    """A layer from a YAML/JSON file, or ``NETWORK:LAYER`` naming a layer of a (built-in) network."""
    from formulation.specs.catalog import load_network
    from formulation.specs.loading import layer_from_dict, read_document

    path = Path(spec)
    if path.is_file():
        doc = read_document(path)
        if isinstance(doc, dict) and "layer" in doc:
            doc = doc["layer"]
        return layer_from_dict(doc, name=path.stem)
    if ":" not in spec:
        raise SpecError(f"--layer = {spec!r}: not a file; name a layer as NETWORK:LAYER (see 'codesign network NAME')")
    net_name, layer_name = spec.rsplit(":", 1)
    network = load_network(net_name)
    for entry in network.layers:
        if entry.layer.name == layer_name:
            return entry.layer
    names = ", ".join(e.layer.name for e in network.layers)
    raise SpecError(f"--layer = {spec!r}: network {network.name} has no layer {layer_name!r} (it has {names})")


def _load_mapping(spec: str, arch):
    from formulation.specs.loading import mapping_from_list, read_document

    return mapping_from_list(read_document(spec), arch)


def _evaluate_cases(args) -> int:
    from formulation.specs.loading import read_cases
    from formulation.model.exact import evaluate
    from formulation.model.report import compare_with_reference, evaluation_record

    failures = 0
    for case in read_cases(args.cases):
        record = evaluation_record(evaluate(case.layer, case.arch, case.mapping), case.arch)
        out = {"id": case.id, **record}
        if args.check and case.reference is not None:
            problems = compare_with_reference(record, case.reference)
            out["agrees_with_reference"] = not problems
            if problems:
                out["differences"] = problems
                failures += 1
        print(json.dumps(out))
    if args.check and failures:
        print(f"codesign: {failures} case(s) differ from their reference results", file=sys.stderr)
        return 1
    return 0


def cmd_evaluate(args) -> int:
    if args.cases:
        return _evaluate_cases(args)
    missing = [name for name in ("layer", "arch", "mapping") if getattr(args, name) is None]
    if missing:
        raise SpecError(f"--{missing[0]} = None: give --layer, --arch and --mapping, or --cases FILE.jsonl")
    from formulation.specs.catalog import load_arch
    from formulation.model.exact import evaluate
    from formulation.model.report import evaluation_record, format_table
    from formulation.model.validation import validate_mapping

    layer = _load_layer(args.layer)
    arch = load_arch(args.arch)
    mapping = _load_mapping(args.mapping, arch)
    validate_mapping(layer, arch, mapping)
    record = evaluation_record(evaluate(layer, arch, mapping), arch)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(format_table(record, title=f"{layer.name} on {arch.name}"))
    return 0


def cmd_network(args) -> int:
    from formulation.specs.catalog import load_network

    network = load_network(args.network)
    rows = [{"name": e.layer.name, "count": e.count,
             **{k: getattr(e.layer, k) for k in ("N", "C", "K", "P", "Q", "R", "S", "Wstride", "Hstride", "G")},
             "macs": e.layer.macs} for e in network.layers]
    if args.json:
        print(json.dumps({"name": network.name, "layers": rows, "total_macs": network.macs}, indent=2))
        return 0
    print(f"{network.name}: {len(rows)} distinct layers, {sum(r['count'] for r in rows)} in all")
    print(f"{'layer':<24}{'x':>3} {'N':>3}{'C':>6}{'K':>6}{'P':>5}{'Q':>5}{'R':>3}{'S':>3}{'str':>5}{'G':>6}{'MACs':>16}")
    for r in rows:
        print(f"{r['name']:<24}{r['count']:>3} {r['N']:>3}{r['C']:>6}{r['K']:>6}{r['P']:>5}{r['Q']:>5}{r['R']:>3}"
              f"{r['S']:>3}{str(r['Wstride']) + 'x' + str(r['Hstride']):>5}{r['G']:>6}{r['macs'] * r['count']:>16,}")
    print(f"total MACs {network.macs:,}")
    return 0


def cmd_export_timeloop(args) -> int:
    from formulation.specs.timeloop_export import export_timeloop

    if args.cases:
        from formulation.specs.loading import read_cases

        cases = read_cases(args.cases)
        chosen = [c for c in cases if args.id is None or c.id == args.id]
        if not chosen:
            raise SpecError(f"--id = {args.id!r}: no such case in {args.cases}")
        for case in chosen:
            out = Path(args.out) / case.id if len(chosen) > 1 else Path(args.out)
            export_timeloop(case.layer, case.arch, case.mapping, out)
            print(out)
        return 0
    from formulation.specs.catalog import load_arch
    from formulation.model.validation import validate_mapping

    layer = _load_layer(args.layer)
    arch = load_arch(args.arch)
    mapping = _load_mapping(args.mapping, arch)
    validate_mapping(layer, arch, mapping)
    for path in export_timeloop(layer, arch, mapping, Path(args.out)):
        print(path)
    return 0


TEMPLATE_HELP = ("built-in arch name or arch file (template: mesh sides /4..x4, bounded buffers /16..x16), or a "
                 "template YAML {arch, mesh_x: [lo, hi], mesh_y: [lo, hi], sizes: {LEVEL: [lo, hi]}}; default simple")


def _add_goal_options(p: argparse.ArgumentParser) -> None:
    """What to minimize and under which budget and caps (optimize and solve)."""
    p.add_argument("--area-budget", metavar="MM2", help="on-chip area budget in mm2 (default: none)")
    p.add_argument("--objective", default="edp", help="latency, energy, edp or power (default edp)")
    p.add_argument("--latency-cap", metavar="SECONDS", help="upper bound on network latency (s)")
    p.add_argument("--power-cap", metavar="MW", help="upper bound on average power (mW)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codesign", description="Analytical co-design of CNN accelerators and "
                                     "their dataflows (Timeloop-compatible model).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("evaluate", help="evaluate a mapping, or every case of a JSON-lines file")
    p.add_argument("--cases", help="JSON-lines file of cases (layer, arch, mapping per line); prints JSON lines")
    p.add_argument("--check", action="store_true", help="with --cases: compare with each case's 'timeloop' results")
    p.add_argument("--layer", help="layer file, or NETWORK:LAYER of a built-in or file network")
    p.add_argument("--arch", help="architecture file or built-in name")
    p.add_argument("--mapping", help="mapping file (list of levels, outermost first)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("network", help="list a network's layers, shapes and MACs")
    p.add_argument("network", help="built-in network name or a network YAML/JSON file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_network)

    p = sub.add_parser("export-timeloop", help="write Timeloop v0.3 YAML (arch, problem, mapping, ERT)")
    p.add_argument("--cases", help="JSON-lines case file (export every case, or --id)")
    p.add_argument("--id", help="with --cases: the case to export")
    p.add_argument("--layer")
    p.add_argument("--arch")
    p.add_argument("--mapping")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_export_timeloop)

    p = sub.add_parser("optimize", help="co-design the hardware and every layer's mapping of a network",
                       description="Co-design an accelerator (PE mesh, buffer sizes) and one mapping per layer "
                       "for a network; writes result.json, layers.jsonl (reference-format cases), timeloop/ and, "
                       "with --pareto, pareto.png to --out.")
    p.add_argument("--network", help="built-in network name or a network/layer YAML/JSON file (required)")
    p.add_argument("--arch-template", metavar="NAME_OR_FILE", help=TEMPLATE_HELP)
    p.add_argument("--arch", metavar="FILE_OR_NAME", help="an architecture (built-in, arch file or reference case); "
                   "with --fixed-hardware its hardware is kept and only the mappings are searched")
    p.add_argument("--fixed-hardware", action="store_true", help="keep --arch's mesh and buffer sizes")
    _add_goal_options(p)
    p.add_argument("--pareto", metavar="N", help="latency/power front from N latency caps (epsilon-constraint); "
                   "--time-limit is then split over the N+2 runs")
    p.add_argument("--method", default="codesign", help="search method (default codesign; available: "
                   + ", ".join(sorted(OPTIMIZE_METHODS)) + ")")
    p.add_argument("--time-limit", default="60", metavar="SECONDS", help="time budget of the whole run, shared by the starts (default 60)")
    p.add_argument("--jobs", default="2", help="parallel workers (default 2)")
    p.add_argument("--seed", default="0", help="random seed; the same seed gives the same design (default 0)")
    p.add_argument("--starts", default="4", help="number of starts (default 4)")
    p.add_argument("--backend", default="loky", help="loky (local processes, default) or dask")
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --backend dask: a running Dask scheduler")
    p.add_argument("--out", metavar="DIR", help="output directory (default out/NETWORK-OBJECTIVE)")
    p.add_argument("--force", action="store_true", help="overwrite an existing result in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--bound-time", default="30", metavar="SECONDS",
                   help="after the search, at most this many seconds of branch-and-bound for a proven lower "
                        "bound and gap (edp, energy, latency; 0: none; default 30)")
    p.add_argument("--bound-nodes", default="300", metavar="N",
                   help="node budget of the branch-and-bound (reproducible where --bound-time does not cut it; "
                        "default 300)")
    p.add_argument("--gap-tolerance", default="0.01", metavar="REL",
                   help="relative gap within which the status is 'optimal' (default 0.01)")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("solve", help="solve the continuous relaxation of network-wide co-design once",
                       description="Minimize a network's latency, energy, EDP or power over the continuous "
                       "relaxation (hardware and per-layer tiling in log form) with an NLP solver. Exit status: "
                       "0 solved (or stopped at a limit with a point), 1 infeasible or solver failure, 2 bad input.")
    p.add_argument("--network", required=True, metavar="NAME_OR_FILE", help="built-in network or network/layer file")
    p.add_argument("--arch-template", default="simple", metavar="NAME_OR_FILE", help=TEMPLATE_HELP)
    _add_goal_options(p)
    p.add_argument("--energy-cap", metavar="PJ", help="upper bound on network energy (pJ)")
    p.add_argument("--solver", default="cyipopt", help="solver backend (default cyipopt; see formulation.relaxed.solvers)")
    p.add_argument("--max-iter", metavar="N", help="solver iteration limit (default: the backend's)")
    p.add_argument("--time-limit", metavar="S", help="solver time limit per solve (s)")
    p.add_argument("--pareto", metavar="N", help="also an epsilon-constraint front of power vs latency with N points")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("run-default", help="the built-in default job (what 'make run' runs): co-design ResNet-18 "
                       f"on the simple template, EDP, area budget {DEFAULT_AREA_BUDGET_MM2:g} mm2 (the simple "
                       "architecture takes 0.81 mm2; the template reaches >10 mm2, so the budget binds), "
                       f"{DEFAULT_STARTS} starts on 2 workers within {DEFAULT_TIME_LIMIT_S:g} s in all (about a "
                       "minute), written to out/run-default/")
    p.set_defaults(func=cmd_run_default)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SpecError as exc:
        print(f"codesign: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codesign: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
