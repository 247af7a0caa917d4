"""Writing an optimization result to disk: ``result.json``, per-layer cases, Timeloop inputs, a plot.

An output directory ``DIR`` holds

``result.json``
    everything about the run (keys below); written last, so its presence marks a complete result;
``layers.jsonl``
    one reference-format case per distinct layer (``id``, ``layer_name``, ``arch_name``,
    ``layer``, ``arch``, ``mapping``: the format of the Timeloop reference cases), which
    ``codesign evaluate --cases DIR/layers.jsonl`` reads back to the same cycles and energy;
``timeloop/<layer>/``
    (the layer name made a safe folder name, :mod:`formulation.specs.filenames`; ``files.timeloop_folders``
    in ``result.json`` maps each layer to its folder) ``arch.yaml``, ``problem.yaml``, ``mapping.yaml``, ``ERT.yaml`` for ``timeloop-model``;
``pareto.png``
    the latency/power front, when one was computed.

``result.json`` keys: ``method`` (the CLI method), ``pipeline`` (what ran), ``status`` (``converged``,
``time_limit``, ``evaluation_limit``, ``interrupted`` or ``infeasible``; ``optimal`` only for a result
proven optimal, which no method does yet: :mod:`search.outcome`),
``network``, ``template`` (name and hardware ranges), ``goal`` (objective, area budget, caps),
``seed``, ``starts``, ``time_limit_s`` (the whole run), ``wall_s``, ``evaluations`` (exact-model evaluations),
``evaluations_per_s`` (``evaluations / wall_s``: the method's scoring rate over the whole run, all workers),
``hardware`` (mesh, PEs, every buffer's size in words, which sizes were free, area), ``totals``
(``latency_s``, ``energy_pJ``, ``power_mW``, ``area_mm2``, ``edp``, ``cycles``, ``feasible``),
``layers`` (per distinct layer: ``name``, ``count``, ``cycles``, ``energy_pJ``, ``utilization``,
``latency_s`` and ``case``, the layer's reference-format case, and with ``--method exact`` the
``certificate`` of :class:`search.mapper.result.Certificate`), ``polish`` (what ``--polish-time``
did, :class:`search.polish.PolishReport`, or null), ``start_results`` (one entry per
start), ``binding`` (why nothing was feasible, when so), ``pareto`` (when a front was computed) and
``files``. The design is ``hardware`` plus each layer's ``case.mapping``; nothing else in the file
is needed to reproduce the numbers.

Every file is written to a temporary name in the same directory and renamed into place.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formulation.axes import DIMS, TENSOR_NAMES, TENSORS
from formulation.jsonsafe import json_text
from formulation.model.encoding import decode
from formulation.model.exact import evaluate
from formulation.model.report import evaluation_record
from formulation.specs.filenames import inside, unique_components
from formulation.specs.loading import case_from_dict
from formulation.specs.timeloop_export import export_timeloop
from formulation.specs.types import Architecture, Layer, Mapping, Network
from formulation.technology import architecture_area_mm2
from search.outcome import STATUS_MEANING, OptimizeResult, OptimizeStatus

if TYPE_CHECKING:
    from formulation.specs.template import ArchTemplate
    from search.design import Evaluated, Goal

RESULT_FILE = "result.json"
LAYERS_FILE = "layers.jsonl"
TIMELOOP_DIR = "timeloop"
PARETO_PLOT = "pareto.png"

#: Keys every result.json has (``pareto`` only when a front was computed).
RESULT_KEYS = ("method", "pipeline", "status", "network", "template", "goal", "seed", "starts", "time_limit_s",
               "wall_s", "evaluations", "evaluations_per_s", "hardware", "totals", "layers", "start_results", "binding", "files")


# ---- the reference-case format ---------------------------------------------------------------------

def _number(value: float) -> int | float:
    """Integers stay integers in JSON (``read_bw: 8``, not ``8.0``); everything else as a float."""
    return int(value) if isinstance(value, int) else float(value)


def layer_document(layer: Layer) -> dict:
    """``layer``: ``N C K P Q R S Wstride Hstride``, plus ``Wdilation Hdilation G`` when not 1."""
    doc = {k: getattr(layer, k) for k in ("N", "C", "K", "P", "Q", "R", "S", "Wstride", "Hstride")}
    doc.update({k: getattr(layer, k) for k in ("Wdilation", "Hdilation", "G") if getattr(layer, k) != 1})
    return doc


def arch_document(arch: Architecture) -> dict:
    """``arch`` in the reference cases' format (``keeps`` only where a level cannot hold every tensor)."""
    levels = []
    for lv in arch.levels:
        doc: dict[str, Any] = {"name": lv.name, "technology": lv.technology.value}
        if lv.size_words is not None:
            doc["size"] = lv.size_words
        doc.update({"word_bits": lv.word_bits, "block_size": lv.block_size})
        if lv.size_words is not None or lv.instances != 1:
            doc["instances"] = lv.instances
        if lv.mesh_x != lv.instances or lv.instances > 1:
            doc["meshX"] = lv.mesh_x
        doc.update({"read_energy": float(lv.read_energy_pJ), "write_energy": float(lv.write_energy_pJ)})
        # fill/update energies default to the write energy; written only where they differ (as in the cases)
        for key, value in (("fill_energy", lv.fill_energy_pJ), ("update_energy", lv.update_energy_pJ)):
            if value != lv.write_energy_pJ:
                doc[key] = float(value)
        if lv.read_bw_words is not None:
            doc["read_bw"] = _number(lv.read_bw_words)
        if lv.write_bw_words is not None:
            doc["write_bw"] = _number(lv.write_bw_words)
        if lv.keeps != frozenset(TENSORS):
            doc["keeps"] = [TENSOR_NAMES[t] for t in TENSORS if t in lv.keeps]
        levels.append(doc)
    mac = arch.mac
    out = {"name": arch.name, "levels": levels,
           "mac": {"name": mac.name, "instances": mac.instances, "meshX": mac.mesh_x, "word_bits": mac.word_bits,
                   "energy": float(mac.energy_pJ)}}
    if arch.clock_GHz != 1.0:
        out["clock_GHz"] = float(arch.clock_GHz)
    return out


def mapping_list(arch: Architecture, mapping: Mapping) -> list[dict]:
    """``mapping``: one entry per level, outermost first; factors of 1 and empty fields are left out."""
    out = []
    for lm, level in zip(mapping.levels, arch.levels):
        doc: dict[str, Any] = {"target": level.name,
                               "temporal": {d.name: int(lm.temporal[d]) for d in DIMS if lm.temporal[d] > 1},
                               "permutation": "".join(d.name for d in lm.permutation)}
        x_dims = [d for d in lm.spatial_order if lm.spatial_x[d] > 1]
        y_dims = [d for d in lm.spatial_order if lm.spatial_y[d] > 1]
        if x_dims or y_dims:
            doc["spatial"] = {d.name: int(lm.spatial_x[d] * lm.spatial_y[d]) for d in x_dims + y_dims}
            doc["spatial_permutation"] = "".join(d.name for d in x_dims + y_dims)
            doc["split"] = len(x_dims)
        if lm.keep != frozenset(TENSORS):
            doc["keep"] = [TENSOR_NAMES[t] for t in TENSORS if t in lm.keep]
            doc["bypass"] = [TENSOR_NAMES[t] for t in TENSORS if t not in lm.keep]
        out.append(doc)
    return out


def layer_case(case_id: str, layer: Layer, arch: Architecture, mapping: Mapping) -> dict:
    """One reference-format case (readable by :func:`formulation.specs.loading.read_cases`)."""
    return {"id": case_id, "layer_name": layer.name, "arch_name": arch.name, "layer": layer_document(layer),
            "arch": arch_document(arch), "mapping": mapping_list(arch, mapping)}


# ---- result.json -----------------------------------------------------------------------------------

def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def template_document(template: ArchTemplate) -> dict:
    return {"name": template.name, "base_arch": template.base.name, "mesh_x": list(template.mesh_x_range),
            "mesh_y": list(template.mesh_y_range),
            "sizes": {name: [lo, hi] for name, lo, hi in template.size_ranges}}


def goal_document(goal: Goal) -> dict:
    caps = goal.caps
    return {"objective": goal.objective.value, "area_budget_mm2": goal.area_budget_mm2,
            "caps": {"latency_s": caps.latency_s, "energy_pJ": caps.energy_pJ, "power_mW": caps.power_mW}}


def hardware_document(template: ArchTemplate, best: Evaluated) -> dict:
    hw = best.design.hardware
    arch = template.instantiate(hw)
    return {"mesh_x": hw.mesh_x, "mesh_y": hw.mesh_y, "pes": hw.mesh_x * hw.mesh_y,
            "buffers_words": {lv.name: lv.size_words for lv in arch.levels if lv.size_words is not None},
            "variable_sizes": [name for name, _, _ in template.size_ranges],
            "area_mm2": architecture_area_mm2(arch), "clock_GHz": arch.clock_GHz, "arch_name": arch.name}


def score_document(best: Evaluated, counts: list[int]) -> dict:
    score = best.score
    cycles = sum(c * float(x) for c, x in zip(counts, best.layer_cycles))
    return {"latency_s": score.latency_s, "energy_pJ": score.energy_pJ, "power_mW": score.power_mW,
            "area_mm2": score.area_mm2, "edp": score.edp, "edp_unit": "pJ*s", "cycles": int(round(cycles)),
            "feasible": bool(score.feasible)}


def layer_entries(network: Network, template: ArchTemplate, best: Evaluated) -> list[dict]:
    """Per distinct layer: its case, and the cycles/energy of evaluating exactly that case.

    The case is built, then read back through the loader and evaluated, so what ``result.json``
    records is what ``codesign evaluate --cases`` reproduces; it is checked against the optimizer's
    own numbers.
    """
    arch = template.instantiate(best.design.hardware)
    entries = []
    for i, (entry, arrays) in enumerate(zip(network.layers, best.design.mappings)):
        case = layer_case(entry.layer.name, entry.layer, arch, decode(arrays, arch))
        back = case_from_dict(json.loads(json.dumps(case)))
        record = evaluation_record(evaluate(back.layer, back.arch, back.mapping), back.arch)
        for key, mine in (("cycles", best.layer_cycles[i]), ("energy_pJ", best.layer_energy_pJ[i])):
            if not math.isclose(record[key], float(mine), rel_tol=1e-9):
                raise RuntimeError(f"layer {entry.layer.name}: the written case gives {key} = {record[key]}, "
                                   f"the optimizer had {float(mine)}")
        entries.append({"name": entry.layer.name, "count": entry.count, "cycles": record["cycles"],
                        "energy_pJ": record["energy_pJ"], "utilization": record["utilization"],
                        "latency_s": record["latency_s"], "macs": record["macs"], "case": case})
    return entries


def start_documents(result: OptimizeResult, goal: Goal) -> list[dict]:
    out = []
    for r in result.starts:
        out.append({"start": r.start, "solver_status": r.solver_status, "relaxed_objective": r.relaxed_objective,
                    "objective": _finite(r.best.score.value(goal.objective)) if r.best is not None else None,
                    "feasible": bool(r.best is not None and r.best.score.feasible),
                    "evaluations": r.evaluations, "wall_s": r.wall_s, "message": r.message})
    return out


def design_summary(template: ArchTemplate, best: Evaluated) -> dict:
    """Hardware and score of one design (for Pareto points)."""
    hw = best.design.hardware
    s = best.score
    return {"latency_s": s.latency_s, "power_mW": s.power_mW, "energy_pJ": s.energy_pJ, "area_mm2": s.area_mm2,
            "edp": s.edp, "mesh_x": hw.mesh_x, "mesh_y": hw.mesh_y, "sizes_words": dict(hw.sizes_words)}


def result_document(result: OptimizeResult, network: Network, template: ArchTemplate, goal: Goal, *,
                    method: str, seed: int, starts: int, time_limit_s: float, front=None) -> dict:
    """The whole ``result.json`` document (``front``: a :class:`search.pareto.DesignFront` or None)."""
    best = result.best
    counts = [e.count for e in network.layers]
    doc: dict[str, Any] = {
        "method": method, "pipeline": result.method, "status": result.status.value, "network": network.name,
        "template": template_document(template), "goal": goal_document(goal), "seed": seed, "starts": starts,
        "time_limit_s": time_limit_s, "wall_s": result.wall_s, "evaluations": result.evaluations,
        "evaluations_per_s": result.evaluations / result.wall_s if result.wall_s > 0 else None,
        "hardware": None, "totals": None, "layers": [], "start_results": start_documents(result, goal),
        "binding": list(result.binding),
        "files": {"result": RESULT_FILE},
    }
    if best is not None:
        doc["hardware"] = hardware_document(template, best)
        doc["totals"] = score_document(best, counts)
        doc["layers"] = layer_entries(network, template, best)
        certificates = result.extra.get("certificates", {})
        for entry in doc["layers"]:
            if entry["name"] in certificates:
                entry["certificate"] = certificates[entry["name"]]
        doc["files"].update({"layers": LAYERS_FILE, "timeloop": TIMELOOP_DIR + "/"})
        names = [entry.layer.name for entry in network.layers]
        doc["files"]["timeloop_folders"] = dict(zip(names, unique_components(names)))
    if front is not None:
        doc["pareto"] = front.document(template)
        if front.points:
            doc["files"]["pareto_plot"] = PARETO_PLOT
    return doc


# ---- writing ---------------------------------------------------------------------------------------

def atomic_replace(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (flushed to disk) to a temporary file next to ``path``, then rename it over ``path``."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    atomic_replace(path, write)


def write_timeloop(out_dir: Path, network: Network, template: ArchTemplate, best: Evaluated) -> Path:
    """``out_dir/timeloop/<layer>/`` for every layer, built in a temporary folder and renamed into place."""
    arch = template.instantiate(best.design.hardware)
    target = out_dir / TIMELOOP_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{TIMELOOP_DIR}.", dir=out_dir))
    try:
        folders = unique_components([entry.layer.name for entry in network.layers])
        for entry, arrays, folder in zip(network.layers, best.design.mappings, folders):
            export_timeloop(entry.layer, arch, decode(arrays, arch), inside(tmp, tmp / folder))
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{TIMELOOP_DIR}.old.", dir=out_dir))
            os.replace(target, old / TIMELOOP_DIR)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def plot_front(path: Path, front, title: str) -> None:
    """Latency against power for every evaluated point, the front highlighted (PNG, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    try:
        others = [p for p in front.candidates if p not in front.points]
        if others:
            ax.scatter([p.latency_s * 1e3 for p in others], [p.power_mW for p in others], c="0.65", s=18,
                       label="dominated / other runs")
        pts = sorted(front.points, key=lambda p: p.latency_s)
        ax.plot([p.latency_s * 1e3 for p in pts], [p.power_mW for p in pts], "o-", c="C0", label="Pareto front")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("power (mW)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        atomic_replace(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def write_results(out_dir: str | Path, doc: dict, network: Network, template: ArchTemplate,
                  best: Evaluated | None, front=None) -> Path:
    """Write ``layers.jsonl``, ``timeloop/``, ``pareto.png`` and finally ``result.json``; return the latter."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if best is not None:
        atomic_write_text(out / LAYERS_FILE, "".join(json_text(e["case"]) + "\n" for e in doc["layers"]))
        write_timeloop(out, network, template, best)
    if front is not None and front.points:
        plot_front(out / PARETO_PLOT, front, f"{network.name}: latency vs power ({template.name})")
    path = out / RESULT_FILE
    atomic_write_text(path, json_text(doc, indent=2) + "\n")
    return path


# ---- the printed summary ---------------------------------------------------------------------------

def summary_table(doc: dict) -> str:
    """Hardware, network totals and per-layer cycles/energy/utilization, as printed by ``codesign optimize``."""
    lines = [f"{doc['network']} on {doc['template']['name']}: {doc['method']} ({doc['pipeline']}), "
             f"objective {doc['goal']['objective']}, status {doc['status']}, "
             f"{doc['wall_s']:.1f} s, {doc['evaluations']:,} model evaluations",
             f"status    {STATUS_MEANING[OptimizeStatus(doc['status'])]}"]
    hw, totals = doc["hardware"], doc["totals"]
    if hw is None:
        lines.append("no feasible design" + (f" ({doc['binding'][0]})" if doc["binding"] else ""))
        return "\n".join(lines)
    budget = doc["goal"]["area_budget_mm2"]
    buffers = ", ".join(f"{name} {size:,} words" for name, size in hw["buffers_words"].items())
    lines.append(f"hardware  {hw['mesh_x']}x{hw['mesh_y']} PEs; {buffers}")
    lines.append(f"area      {hw['area_mm2']:.3f} mm2" + (f" (budget {budget:g} mm2)" if budget is not None else ""))
    lines.append(f"totals    latency {totals['latency_s'] * 1e3:,.4f} ms   energy {totals['energy_pJ'] / 1e6:,.3f} uJ   "
                 f"power {totals['power_mW']:,.1f} mW   EDP {totals['edp']:,.4g} pJ*s   "
                 f"cycles {totals['cycles']:,}")
    head = f"{'layer':<22}{'x':>3}{'cycles':>14}{'energy uJ':>13}{'util':>7}"
    lines += [head, "-" * len(head)]
    for e in doc["layers"]:
        lines.append(f"{e['name']:<22}{e['count']:>3}{e['cycles']:>14,}{e['energy_pJ'] / 1e6:>13,.3f}"
                     f"{e['utilization']:>7.3f}")
    if "pareto" in doc:
        lines.append(f"Pareto front (latency vs power), {len(doc['pareto']['points'])} points:")
        for p in doc["pareto"]["points"]:
            lines.append(f"  latency {p['latency_s'] * 1e3:,.4f} ms   power {p['power_mW']:,.1f} mW   "
                         f"{p['mesh_x']}x{p['mesh_y']} PEs   area {p['area_mm2']:.3f} mm2")
    return "\n".join(lines)
