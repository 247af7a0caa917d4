"""The vocabulary of goals shared by the exact search, the NLP and the baselines.

What is minimized (:class:`Objective`), what is capped (:class:`Caps`), and the unit conversions
every part uses, so that ``1e-9`` (pJ/s to mW) or ``clock_GHz * 1e9`` (cycles to seconds) are
written once:

* energy in pJ, latency in s, power in mW, area in mm², EDP in pJ·s;
* ``power_mW = energy_pJ / latency_s * 1e-9`` (1 pJ/s = 1e-12 W = 1e-9 mW);
* ``latency_s = cycles / (clock_GHz * 1e9)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

#: 1 pJ/s in mW.
MW_PER_PJ_PER_S = 1e-9
#: Relative slack when a value is compared with a budget or a cap (values within it count as meeting it).
CAP_REL_TOL = 1e-9


class Objective(str, Enum):
    """What a search or a solve minimizes; ``value`` is the name used on the command line and in files."""

    LATENCY = "latency"
    ENERGY = "energy"
    EDP = "edp"
    POWER = "power"


@dataclass(frozen=True)
class Caps:
    """Upper limits on the network totals (``None``: no cap)."""

    latency_s: float | None = None
    energy_pJ: float | None = None
    power_mW: float | None = None


def clock_hz(clock_GHz: float) -> float:
    """Cycles per second of a clock given in GHz."""
    return clock_GHz * 1e9


def seconds(cycles, clock_GHz: float):
    """``cycles / (clock_GHz * 1e9)``: latency in s (works on arrays too)."""
    return cycles / clock_hz(clock_GHz)


def power_mW(energy_pJ, latency_s):
    """Average power in mW of ``energy_pJ`` spent over ``latency_s`` (works on arrays too)."""
    return energy_pJ / latency_s * MW_PER_PJ_PER_S


def objective_value(objective: Objective, energy_pJ: float, latency_s: float) -> float:
    """The value of ``objective`` for a design with these totals (EDP in pJ·s, power in mW)."""
    if objective is Objective.ENERGY:
        return energy_pJ
    if objective is Objective.LATENCY:
        return latency_s
    if objective is Objective.EDP:
        return energy_pJ * latency_s
    return power_mW(energy_pJ, latency_s)
