"""Run accelforge's FFM mapper on one spec file and print its Pareto mappings' loop trees as JSON.

Run in an interpreter that has ``accelforge`` (it needs Python >= 3.12, the project's venv has
3.11): ``python3.12 benchmarks/accelforge_worker.py SPEC.yaml > out.json``. It imports nothing from
this project. Output: ``{"wall_s", "accelforge", "mappings": [{"energy_J", "latency_s",
"nodes": [...]}]}`` with the loop tree outermost first: ``storage`` (component, tensors),
``temporal`` (rank, tile_shape), ``spatial`` (rank, tile_shape, axis, component), ``compute``.
The mapper minimizes energy and latency jointly (``Metrics.ENERGY | Metrics.LATENCY``), one job.
"""

from __future__ import annotations

import json
import sys
import time


def nodes_of(mapping) -> list[dict]:
    from accelforge.frontend.mapping.mapping import Compute, Reservation, Spatial, Storage, Temporal

    out = []
    for n in mapping.nodes:
        if isinstance(n, Spatial):
            out.append({"type": "spatial", "rank": str(n.rank_variable), "tile_shape": int(n.tile_shape),
                        "axis": str(n.name), "component": n.component})
        elif isinstance(n, Temporal):
            out.append({"type": "temporal", "rank": str(n.rank_variable), "tile_shape": int(n.tile_shape)})
        elif isinstance(n, Storage):
            out.append({"type": "storage", "component": n.component, "tensors": [str(t) for t in n.tensors]})
        elif isinstance(n, Compute):
            out.append({"type": "compute", "component": n.component})
        elif not isinstance(n, Reservation):
            out.append({"type": type(n).__name__, "str": str(n)})
    return out


def main(path: str) -> None:
    import accelforge as af
    from accelforge.mapper.FFM.main import map_workload_to_arch

    t0 = time.time()
    spec = af.Spec.from_yaml(path)
    spec.mapper.metrics = af.Metrics.ENERGY | af.Metrics.LATENCY
    af.set_n_parallel_jobs(1)
    # eval_in_detail=False: the detailed pass renders each mapping with graphviz's `dot`
    found = map_workload_to_arch(spec, print_progress=False, eval_in_detail=False)
    rows = []
    for i in range(len(found.data)):
        row = found.data.iloc[i]
        rows.append({"energy_J": float(row["Total<SEP>energy"]), "latency_s": float(row["Total<SEP>latency"]),
                     "nodes": nodes_of(row["Total<SEP>mapping"]())})
    from importlib.metadata import version

    json.dump({"wall_s": time.time() - t0, "accelforge": version("accelforge"), "mappings": rows}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
