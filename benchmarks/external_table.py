"""External mappers against the project's mapper, per layer, from stored results (nothing is rerun).

``benchmarks/results/external.json`` (:mod:`benchmarks.external`) holds, per layer, the EDP of
each external tool's best mapping re-scored by the exact model; ``benchmarks/results/mapper.json``
(:mod:`benchmarks.mapper`) holds the mapper's best EDP per layer (``certificate.best``). A ratio
is external / mapper: above 1 the mapper's mapping is better, below 1 the external tool found a
better one (a layer where the target "no layer worse than any other tool" is missed).
"""

from __future__ import annotations

import json
from pathlib import Path


def load_runs(path: Path) -> list[dict]:
    runs = json.loads(Path(path).read_text())
    return runs if isinstance(runs, list) else [runs]


def latest_run(path: Path, network: str, arch: str, objective: str = "edp") -> dict | None:
    """The last run in a results file for ``network`` on ``arch`` with ``objective`` (None if there is none)."""
    runs = [r for r in load_runs(path) if r.get("network") == network and r.get("arch") == arch
            and r.get("objective", objective) == objective]
    return runs[-1] if runs else None


def external_runs(path: Path, network: str, arch: str) -> list[dict]:
    """Every run in an external results file for ``network`` on ``arch``, oldest first."""
    return [r for r in load_runs(path) if r.get("network") == network and r.get("arch") == arch]


def tool_values(external: dict | list[dict]) -> dict[str, dict[str, float | None]]:
    """Per tool, per layer: the re-scored EDP (pJ s) of the tool's mapping, None where it found none.

    Tools are ``timeloop-mapper MODE`` for every mode run, and ``accelforge`` (its best mapping
    that could be expressed and re-scored; None where none could), ``accelforge X=..,Y=..`` when
    its mesh axes were restricted (``--accelforge-axes``). Given several runs (oldest
    first), a later run's value for a (tool, layer) replaces an earlier one's.
    """
    out: dict[str, dict[str, float | None]] = {}
    for run in external if isinstance(external, list) else [external]:
        for row in run.get("layers", []):
            for mode, tl in row.get("timeloop_mapper", {}).items():
                out.setdefault(f"timeloop-mapper {mode}", {})[row["layer"]] = tl["edp"] if tl.get("ok") else None
        accel = run.get("accelforge") or {}
        name = f"accelforge {accel['axes']}" if accel.get("axes") else "accelforge"
        for row in accel.get("layers", []):
            out.setdefault(name, {})[row["layer"]] = row.get("edp")
    return out


def ratio_rows(mapper: dict, external: dict | list[dict]) -> list[dict]:
    """One row per layer of the mapper run: the mapper's EDP and external / mapper for every tool
    (``external``: one run or several, see :func:`tool_values`).

    A tool that did not run on a layer, or found no mapping for it, has ratio None there.
    """
    if mapper.get("objective", "edp") != "edp":
        raise ValueError(f"mapper run objective = {mapper.get('objective')!r}: the external tools minimized edp")
    tools = tool_values(external)
    rows = []
    for row in mapper["layers"]:
        best = row["certificate"]["best"]
        ratios = {}
        for tool, values in tools.items():
            value = values.get(row["layer"])
            ratios[tool] = None if value is None or not best else value / best
        rows.append({"layer": row["layer"], "mapper_edp": best, "optimal": row["certificate"]["optimal"],
                     "ratios": ratios})
    return rows


def format_table(rows: list[dict]) -> str:
    """A Markdown table: layer, mapper EDP, whether it is proven optimal, then a ``TOOL / mapper`` column per tool."""
    tools = list(rows[0]["ratios"]) if rows else []
    head = "| layer | mapper EDP (pJ s) | proven optimal | " + " | ".join(f"{t} / mapper" for t in tools) + " |"
    lines = [head, "|" + "---|" * (3 + len(tools))]
    for r in rows:
        cells = ["-" if r["ratios"][t] is None else f"{r['ratios'][t]:.3f}" for t in tools]
        lines.append(f"| {r['layer']} | {r['mapper_edp']:.5g} | {'yes' if r['optimal'] else 'no'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)
