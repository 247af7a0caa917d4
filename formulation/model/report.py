"""Turning a :class:`~formulation.model.exact.BatchEvaluation` into records, tables and comparisons.

Records use the keys of the Timeloop reference cases (``levels[L].tensors[T].reads`` …) so that
results can be diffed against timeloop-model output directly.
"""

from __future__ import annotations

import math

from formulation.axes import TENSOR_NAMES, Tensor
from formulation.goals import power_mW, seconds
from formulation.model.exact import BatchEvaluation
from formulation.specs.types import Architecture
from formulation.technology import architecture_area_mm2

COUNT_FIELDS = ("reads", "updates", "fills")


def evaluation_record(ev: BatchEvaluation, arch: Architecture, index: int = 0) -> dict:
    """One mapping's result as a JSON-ready dict keyed like the reference cases."""
    return evaluation_records(ev, arch, [index])[0]


def evaluation_records(ev: BatchEvaluation, arch: Architecture, indices=None) -> list[dict]:
    """:func:`evaluation_record` for the mappings ``indices`` of a batch (all by default), converting
    each array once (latency and power by :mod:`formulation.goals`)."""
    rows = slice(None) if indices is None else list(indices)
    names = [TENSOR_NAMES[t] for t in Tensor]
    cols = {f: getattr(ev, f)[rows].tolist() for f in ("reads", "updates", "fills", "utilized_instances",
                                                        "utilized_capacity", "partition_size", "energy_pJ_by_tensor",
                                                        "level_cycles", "throttling", "capacity_used", "cycles",
                                                        "energy_pJ", "mac_energy_pJ", "fits")}
    by_level = ev.energy_pJ_by_tensor[rows].sum(axis=2).tolist()
    utilization = (ev.macs / (ev.cycles[rows] * ev.mac_instances)).tolist()
    area = architecture_area_mm2(arch)
    level_names = [lv.name for lv in arch.levels]
    mac_name, clock, macs = arch.mac.name, arch.clock_GHz, int(ev.macs)
    out = []
    for (r_k, u_k, f_k, inst_k, cap_k, part_k, e_k, lc_k, th_k, used_k, cycles, energy, mac_e, fits, bl_k,
         util) in zip(cols["reads"], cols["updates"], cols["fills"], cols["utilized_instances"],
                      cols["utilized_capacity"], cols["partition_size"], cols["energy_pJ_by_tensor"],
                      cols["level_cycles"], cols["throttling"], cols["capacity_used"], cols["cycles"],
                      cols["energy_pJ"], cols["mac_energy_pJ"], cols["fits"], by_level, utilization):
        levels = {}
        for name, r_l, u_l, f_l, inst, cap_l, part_l, e_l, lc, th, used, bl in zip(
                level_names, r_k, u_k, f_k, inst_k, cap_k, part_k, e_k, lc_k, th_k, used_k, bl_k):
            tensors = {}
            for tensor, r, u, f, capacity, part, e in zip(names, r_l, u_l, f_l, cap_l, part_l, e_l):
                if capacity == 0:
                    continue  # bypassed here
                tensors[tensor] = {"reads": r, "updates": u, "fills": f, "utilized_instances": inst,
                                   "utilized_capacity": capacity, "partition_size": part, "energy_pJ": e}
            levels[name] = {"cycles": lc, "bandwidth_throttling": th, "energy_pJ": bl, "capacity_used_words": used,
                            "tensors": tensors}
        latency = seconds(cycles, clock)
        breakdown = {mac_name: mac_e}
        breakdown.update(zip(level_names, bl_k))
        out.append({
            "macs": macs,
            "cycles": cycles,
            "utilization": util,
            "energy_pJ": energy,
            "energy_breakdown_pJ": breakdown,
            "power_mW": power_mW(energy, latency),
            "latency_s": latency,
            "area_mm2": area,
            "fits": fits,
            "levels": levels,
        })
    return out


def compare_with_reference(record: dict, reference: dict, energy_rtol: float = 0.005,
                           cycles_rtol: float = 0.005) -> list[str]:
    """Differences between a record and a Timeloop result: counts exact, energy/cycles within tolerance."""
    problems = []
    for level, ref_level in reference["levels"].items():
        mine = record["levels"].get(level, {}).get("tensors", {})
        for tensor, ref_t in ref_level["tensors"].items():
            got = mine.get(tensor)
            if got is None:
                problems.append(f"{level}.{tensor}: bypassed here but Timeloop keeps it")
                continue
            for key in COUNT_FIELDS:
                if got[key] != ref_t[key]:
                    problems.append(f"{level}.{tensor}.{key} = {got[key]}, Timeloop {ref_t[key]}")
        for tensor in mine:
            if tensor not in ref_level["tensors"]:
                problems.append(f"{level}.{tensor}: kept here but Timeloop bypasses it")
    for key, rtol in (("energy_pJ", energy_rtol), ("cycles", cycles_rtol)):
        if not math.isclose(record[key], reference[key], rel_tol=rtol):
            problems.append(f"{key} = {record[key]}, Timeloop {reference[key]}")
    return problems


def format_table(record: dict, title: str = "") -> str:
    """A readable per-level, per-tensor table of one evaluation."""
    head = f"{'level':<14}{'tensor':<9}{'reads':>14}{'fills':>14}{'updates':>14}{'tile':>9}{'inst':>6}{'energy pJ':>16}"
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for level, data in record["levels"].items():
        for tensor, t in data["tensors"].items():
            lines.append(f"{level:<14}{tensor:<9}{t['reads']:>14,}{t['fills']:>14,}{t['updates']:>14,}"
                         f"{t['utilized_capacity']:>9,}{t['utilized_instances']:>6}{t['energy_pJ']:>16,.1f}")
        throttle = "" if data["bandwidth_throttling"] >= 1 else f"  (bandwidth-throttled x{data['bandwidth_throttling']:.2f})"
        lines.append(f"{'':<14}{'cycles':<9}{data['cycles']:>14,}{throttle}")
    lines.append("-" * len(head))
    lines.append(f"MACs {record['macs']:,}   cycles {record['cycles']:,}   utilization {record['utilization']:.3f}")
    lines.append(f"energy {record['energy_pJ'] / 1e6:,.3f} uJ   power {record['power_mW']:,.1f} mW   "
                 f"latency {record['latency_s'] * 1e3:,.4f} ms   area {record['area_mm2']:.3f} mm2   fits {record['fits']}")
    return "\n".join(lines)
