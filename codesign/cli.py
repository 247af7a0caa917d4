"""The ``codesign`` command line.

Every user mistake ends in one line on stderr (``codesign: error: …``) and exit status 2, never
in a traceback; a bug ends in one line and exit status 3 (``--debug`` shows the traceback); the exit
statuses are listed in :mod:`codesign.errors`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from codesign.args import TEMPLATE_HELP, add_goal_options
from codesign.cmd_evaluate import evaluate_cases
from codesign.errors import EXIT_HELP, run_guarded
from codesign.cmd_optimize import (
    DEFAULT_AREA_BUDGET_MM2,
    DEFAULT_STARTS,
    DEFAULT_TIME_LIMIT_S,
    DEFAULT_TOTAL_S,
    add_optimize_arguments,
    cmd_optimize,
    cmd_run_default,
)
from codesign.args import add_solver_options
from codesign.cmd_solve import cmd_solve
from formulation.axes import TENSOR_NAMES
from formulation.model.exact import evaluate
from formulation.jsonsafe import json_text
from formulation.model.report import evaluation_record, format_table
from formulation.model.validation import validate_mapping
from formulation.specs.catalog import load_arch, load_network
from formulation.specs.filenames import inside, unique_components
from formulation.specs.loading import layer_from_dict, mapping_from_list, read_cases, read_document
from formulation.specs.timeloop_export import export_timeloop
from formulation.specs.timeloop_import import is_timeloop_file, read_timeloop
from formulation.specs.types import SpecError


def _load_layer(spec: str):
    """A layer from a YAML/JSON file, or ``NETWORK:LAYER`` naming a layer of a (built-in) network."""
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
    return mapping_from_list(read_document(spec), arch)


def _timeloop_triple(args):
    """(layer, arch, mapping, names) from --timeloop files, plus --layer/--arch/--mapping (Timeloop or ours)."""
    files = list(args.timeloop or [])
    layer = arch = ours = None
    for key in ("layer", "arch", "mapping"):
        value = getattr(args, key)
        if value is not None and is_timeloop_file(value):
            files.append(value)
        elif value is not None and key == "layer":
            layer = _load_layer(value)
        elif value is not None and key == "arch":
            arch = load_arch(value)
        elif value is not None:
            ours = value  # a mapping in this project's format, read against the architecture below
    spec = read_timeloop(files, layer=layer, arch=arch)
    if ours is not None and spec.arch is not None and spec.layer is not None:
        spec = replace(spec, mapping=_load_mapping(ours, spec.arch))
        validate_mapping(spec.layer, spec.arch, spec.mapping)
    for key, part in (("layer", spec.layer), ("arch", spec.arch), ("mapping", spec.mapping)):
        if part is None:
            raise SpecError(f"--{key} = None: the Timeloop files {', '.join(Path(f).name for f in files)} hold no "
                            f"{'problem' if key == 'layer' else 'architecture' if key == 'arch' else key}")
    names = {"dimensions": {n: (r if isinstance(r, str) else r.name) for n, r in spec.problem.dims},
             "data_spaces": {n: TENSOR_NAMES[t] for n, t in spec.problem.tensors}}
    return spec.layer, spec.arch, spec.mapping, names


def _uses_timeloop(args) -> bool:
    return bool(args.timeloop) or any(getattr(args, k) is not None and is_timeloop_file(getattr(args, k))
                                      for k in ("layer", "arch", "mapping"))


def cmd_evaluate(args) -> int:
    if args.cases:
        return evaluate_cases(args.cases, args.check)
    names = None
    if _uses_timeloop(args):
        layer, arch, mapping, names = _timeloop_triple(args)
    else:
        missing = [name for name in ("layer", "arch", "mapping") if getattr(args, name) is None]
        if missing:
            raise SpecError(f"--{missing[0]} = None: give --layer, --arch and --mapping, --timeloop FILE..., "
                            f"or --cases FILE.jsonl")
        layer = _load_layer(args.layer)
        arch = load_arch(args.arch)
        mapping = _load_mapping(args.mapping, arch)
        validate_mapping(layer, arch, mapping)
    record = evaluation_record(evaluate(layer, arch, mapping), arch)
    if names is not None:
        record["timeloop_names"] = names
    if args.json:
        print(json_text(record, indent=2))
    else:
        title = f"{layer.name} on {arch.name}"
        if names is not None:
            renamed = [f"{ours}={theirs}" for theirs, ours in {**names["data_spaces"], **names["dimensions"]}.items()
                       if theirs != ours and not (theirs == "M" and ours == "K")]
            title += f"  (Timeloop names: {', '.join(renamed)})" if renamed else ""
        print(format_table(record, title=title))
    return 0


def cmd_network(args) -> int:
    network = load_network(args.network)
    if args.graph:
        from formulation.specs.graph import write_graph

        out = Path(args.graph)
        if not out.parent.is_dir():
            raise SpecError(f"--graph = {args.graph!r}: directory {str(out.parent)!r} does not exist")
        write_graph(network, out)
        print(f"wrote {out} ({len(network.graph_nodes)} layer occurrences, "
              f"{sum(len(n.inputs) for n in network.graph_nodes)} edges)")
        if not args.json:
            return 0
    rows = [{"name": e.layer.name, "count": e.count,
             **{k: getattr(e.layer, k) for k in ("N", "C", "K", "P", "Q", "R", "S", "Wstride", "Hstride", "G")},
             "macs": e.layer.macs} for e in network.layers]
    if args.json:
        print(json_text({"name": network.name, "layers": rows, "total_macs": network.macs}, indent=2))
        return 0
    print(f"{network.name}: {len(rows)} distinct layers, {sum(r['count'] for r in rows)} in all")
    print(f"{'layer':<24}{'x':>3} {'N':>3}{'C':>6}{'K':>6}{'P':>5}{'Q':>5}{'R':>3}{'S':>3}{'str':>5}{'G':>6}{'MACs':>16}")
    for r in rows:
        print(f"{r['name']:<24}{r['count']:>3} {r['N']:>3}{r['C']:>6}{r['K']:>6}{r['P']:>5}{r['Q']:>5}{r['R']:>3}"
              f"{r['S']:>3}{str(r['Wstride']) + 'x' + str(r['Hstride']):>5}{r['G']:>6}{r['macs'] * r['count']:>16,}")
    print(f"total MACs {network.macs:,}")
    return 0


def cmd_export_timeloop(args) -> int:
    root = Path(args.out)
    if root.exists() and not root.is_dir():
        raise SpecError(f"--out = {args.out!r}: exists and is not a directory")
    if args.cases:
        cases = read_cases(args.cases)
        chosen = [c for c in cases if args.id is None or c.id == args.id]
        if not chosen:
            raise SpecError(f"--id = {args.id!r}: no such case in {args.cases}")
        # Case ids name folders only after sanitizing (formulation.specs.filenames): never a path.
        folders = unique_components([c.id for c in chosen]) if len(chosen) > 1 else [None]
        for case, folder in zip(chosen, folders):
            out = root if folder is None else inside(root, root / folder)
            export_timeloop(case.layer, case.arch, case.mapping, out)
            print(out)
        return 0

    layer = _load_layer(args.layer)
    arch = load_arch(args.arch)
    mapping = _load_mapping(args.mapping, arch)
    validate_mapping(layer, arch, mapping)
    for path in export_timeloop(layer, arch, mapping, Path(args.out)):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codesign", description="Analytical co-design of CNN accelerators and "
                                     "their dataflows (Timeloop-compatible model).", epilog=EXIT_HELP)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_parser = sub.add_parser

    def add_parser(name, **kwargs):
        return _add_parser(name, parents=[common], epilog=EXIT_HELP, **kwargs)

    sub.add_parser = add_parser

    p = sub.add_parser("evaluate", help="evaluate a mapping, or every case of a JSON-lines file")
    p.add_argument("--cases", help="JSON-lines file of cases (layer, arch, mapping per line); prints JSON lines")
    p.add_argument("--check", action="store_true", help="with --cases: compare with each case's 'timeloop' results")
    p.add_argument("--layer", help="layer file, or NETWORK:LAYER of a built-in or file network")
    p.add_argument("--arch", help="architecture file or built-in name")
    p.add_argument("--mapping", help="mapping file (list of levels, outermost first)")
    p.add_argument("--timeloop", nargs="+", metavar="FILE", help="Timeloop/Accelergy YAML files (architecture, "
                   "problem, mapping, ERT; v0.2/v0.3 trees, v0.4 nodes); --layer/--arch/--mapping also accept them")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("map", help="the proven best mapping of one layer on fixed hardware (exact mapper)",
                       description="Search the whole mapspace of one layer on an architecture by branch and bound "
                       "with proven pruning; write the best mapping (mapping.yaml) and its certificate "
                       "(certificate.json: optimal, lower bound, gap, mapspace, evaluated, pruned per rule) to --out.")
    p.add_argument("--layer", help="layer file, or NETWORK:LAYER of a built-in or file network")
    p.add_argument("--arch", help="architecture file or built-in name")
    p.add_argument("--objective", default="edp", help="energy, latency or edp (default edp)")
    p.add_argument("--time-limit", default="60", metavar="SECONDS", help="stop after this long with the best "
                   "mapping, a lower bound and the gap (default 60; 'none': run until the optimum is proven, which "
                   "for 3x3 convolutions can take very long)")
    p.add_argument("--seed", default="0", help="seed of the random first incumbent (default 0)")
    p.add_argument("--pareto", action="store_true", help="also prove the layer's energy-latency front (cuts only "
                   "dominated parts of the mapspace: slower); written to certificate.json under 'pareto'")
    p.add_argument("--out", metavar="DIR", help="output directory (default out/map-LAYER-ARCH-OBJECTIVE)")
    p.add_argument("--force", action="store_true", help="overwrite an existing certificate in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=lambda a: __import__("codesign.cmd_map", fromlist=["cmd_map"]).cmd_map(a))

    p = sub.add_parser("network", help="list a network's layers, shapes and MACs")
    p.add_argument("network", help="built-in network name or a network YAML/JSON file")
    p.add_argument("--json", action="store_true")
    p.add_argument("--graph", metavar="FILE", help="write the layer graph: .dot/.gv (Graphviz text) or "
                   ".png/.svg/.pdf (drawn with matplotlib)")
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
    add_optimize_arguments(p)
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("solve", help="solve the continuous relaxation of network-wide co-design once",
                       description="Minimize a network's latency, energy, EDP or power over the continuous "
                       "relaxation (hardware and per-layer tiling in log form) with an NLP solver. Exit status: "
                       "0 solved (or stopped at a limit with a point), 1 infeasible or solver failure, 2 bad input.")
    p.add_argument("--network", required=True, metavar="NAME_OR_FILE", help="built-in network or network/layer file")
    p.add_argument("--arch-template", default="simple", metavar="NAME_OR_FILE", help=TEMPLATE_HELP)
    add_goal_options(p)
    p.add_argument("--energy-cap", metavar="PJ", help="upper bound on network energy (pJ)")
    add_solver_options(p, "the solve and the epsilon-constraint front")
    p.add_argument("--max-iter", metavar="N", help="solver iteration limit (default: the backend's)")
    p.add_argument("--time-limit", metavar="S", help="solver time limit per solve (s)")
    p.add_argument("--pareto", metavar="N", help="also an epsilon-constraint front of power vs latency with N points")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("run-default", help="the built-in default job (what 'make run' runs): co-design ResNet-18 "
                       f"on the simple template, EDP, area budget {DEFAULT_AREA_BUDGET_MM2:g} mm2 (the simple "
                       "architecture takes 0.81 mm2; the template reaches >10 mm2, so the budget binds), "
                       f"{DEFAULT_STARTS} starts on 2 workers within {DEFAULT_TIME_LIMIT_S:g} s, then polishing by "
                       f"the exact mapper beside the lower bound, {DEFAULT_TOTAL_S:g} s in all, written to "
                       "out/run-default/")
    p.set_defaults(func=cmd_run_default)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status (:mod:`codesign.errors`). SIGTERM is handled like Ctrl-C."""
    import signal
    import threading

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return int(exc.code or 0)
    debug = bool(getattr(args, "debug", False))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return run_guarded(args.func, args, debug)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
