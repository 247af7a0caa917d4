"""Hardware steps scored with polished mappings: the search's hardware choice, revisited once mappings are better.

The co-design's local search compares hardware points by the mappings its own descent finds there
(repaired from the current design and improved for three rounds), which at large arrays are far
from the exact mapper's (ResNet-18 at 2 mm², 64x48 PEs: 7.60e6 pJ·s against 6.93e6 polished), and
it steps buffers only by factors of two. So a point that looks worse to the search can be better
once polished: measured on ResNet-18 at 2 mm², the search's 64x48 PEs with a 128 Ki-word global
buffer polish to 6.93e6 pJ·s in 15 s, the same array with 96 Ki words (a step the search does not
take) to 6.78e6.

:func:`polish_with_hardware_steps` first polishes the search's design for a short screen budget
(:func:`screen_seconds`), then tries the neighbours of the best point so far
(:func:`hardware_steps`: each mesh side to the next and previous 2-3-7-smooth value, each variable
buffer size times 3/4, 3/2, 1/2 and 2, within the template and the area budget), each started from
the best design's mappings repaired to it (:func:`search.local_search.repaired_design`) and polished
for the same screen budget with every design seen so far transferred
(:mod:`search.polish_layers`); it moves to the first neighbour that is better and starts over from
there (steps that did not pay from an earlier point, the same variable by the same factor, are tried
last), until :data:`SCREEN_SHARE` of the time is used or no neighbour is better; the rest of the time
polishes the best point again from its mappings. Every design kept was scored by the exact model,
so the result is never worse than the search's design. With less than :data:`MIN_STEPS_S` seconds,
or on a template with a single hardware point (``--fixed-hardware``), it is plain polishing
(:func:`search.polish.polish`).

**The bound's point.** When the branch-and-bound runs beside polishing (``--total-time``), it hands
over the box where its bound is least (:class:`BoundHint`; when polishing runs first, the caller
offers the whole template's box, where the least box starts), and before each neighbour the screen
takes that box's optimistic hardware (its largest mesh and smallest buffers, where the relaxation
is evaluated) if it is new, fits the area budget and is not within :data:`NEAR_RATIO` of a point
already screened (at most :data:`MAX_BOUND_POINTS` per run, none after one that did not pay); from
there it steps on like from any better point. Where the relaxation is most optimistic is a hint,
not a proof, but it is where the neighbour steps from the search's design do not go: on ResNet-18
at 2 mm² for energy the search ends at 64x56 PEs with 64 Ki words, the bound's least box is 64x64
PEs with 4 Ki words, and the steps from there reach 18-word register files, where every layer is
proven optimal for energy: 3.354e9 pJ against 3.529e9 without it. A point that does not pay (EDP
and latency, so far) costs one screen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from formulation.specs.template import ArchTemplate, Hardware
from formulation.specs.types import Network, SpecError
from formulation.technology import architecture_area_mm2
from search.design import Evaluated, Goal, evaluate_design
from search.local_search import repaired_design
from search.polish import PolishReport, polish
from search.polish_layers import mapping_key
from search.rounding import fits_template
from search.stop import stop_requested
from search.tiling import smooth_numbers

#: Hardware steps run only with at least this much polishing time (s).
MIN_STEPS_S = 60.0
#: Share of the polishing time that screening hardware points may use; the rest polishes the best.
SCREEN_SHARE = 0.75
#: Size factors of a variable buffer tried per step.
SIZE_FACTORS = (0.75, 1.5, 0.5, 2.0)
#: At most this many of the bound's points are screened per run (:class:`BoundHint`).
MAX_BOUND_POINTS = 3
#: A bound's point with the same mesh as a screened point and every size within this ratio of it is not screened.
NEAR_RATIO = 1.1


class BoundHint:
    """The least box of a branch-and-bound running in another thread, as a hardware point to screen.

    :meth:`offer` is the branch-and-bound's ``on_least`` callback; :meth:`hardware` gives polishing the
    latest box's optimistic hardware (largest mesh, smallest buffers) when it fits the template and
    the area budget, else None. A box is handed over by one attribute write, so no lock is needed.
    """

    def __init__(self, template: ArchTemplate, area_budget_mm2: float | None) -> None:
        self.template, self.area_budget_mm2 = template, area_budget_mm2
        self._box = None
        self._point: tuple = (None, None)  # (box, its hardware or None), computed once per box

    def offer(self, box) -> None:
        self._box = box

    def hardware(self) -> Hardware | None:
        box = self._box
        if box is None:
            return None
        if self._point[0] is not box:
            hw = box.optimistic_hardware()
            self._point = (box, hw if _allowed(self.template, hw, self.area_budget_mm2) else None)
        return self._point[1]


def _allowed(template: ArchTemplate, hw: Hardware, area_budget_mm2: float | None) -> bool:
    """``hw`` is in the template and within the area budget (None: no budget)."""
    return fits_template(template, hw) and (
        area_budget_mm2 is None or architecture_area_mm2(template.instantiate(hw)) <= area_budget_mm2)


def _near(a: Hardware, b: Hardware) -> bool:
    """Same mesh and every size within :data:`NEAR_RATIO`."""
    return (a.mesh_x, a.mesh_y) == (b.mesh_x, b.mesh_y) and all(
        max(x, y) <= NEAR_RATIO * min(x, y) for (_, x), (_, y) in zip(a.sizes_words, b.sizes_words))


def screen_seconds(time_limit_s: float) -> float:
    """The polishing time of one screened point: a twelfth of the time, between 8 and 20 s (on ResNet-18
    15 s of polishing reach within 0.2% of 260 s)."""
    return min(20.0, max(8.0, time_limit_s / 12))


def hardware_steps(template: ArchTemplate, hw: Hardware, area_budget_mm2: float | None) -> list[Hardware]:
    """The neighbours of ``hw`` tried by :func:`polish_with_hardware_steps` (module docstring), sizes first."""
    out = []
    sizes = dict(hw.sizes_words)
    for name in sizes:
        for factor in SIZE_FACTORS:
            new = dict(sizes)
            new[name] = int(round(sizes[name] * factor))
            out.append(replace(hw, sizes_words=tuple(new.items())))
    for side, (lo, hi) in (("mesh_x", template.mesh_x_range), ("mesh_y", template.mesh_y_range)):
        value = getattr(hw, side)
        smooth = smooth_numbers(lo, hi)
        for step in ([m for m in smooth if m > value][:1] + [m for m in smooth if m < value][-1:]):
            out.append(replace(hw, **{side: step}))
    seen, kept = {hw}, []
    for h in out:
        if h not in seen and _allowed(template, h, area_budget_mm2):
            kept.append(h)
        seen.add(h)
    return kept


def polish_with_hardware_steps(network: Network, template: ArchTemplate, goal: Goal, best: Evaluated, *,
                               time_limit_s: float, seed: int = 0, jobs: int = 1, others: tuple[Evaluated, ...] = (),
                               on_layer_done=None,
                               hint: Callable[[], Hardware | None] | None = None) -> tuple[Evaluated, PolishReport]:
    """The best design after hardware steps and polishing (module docstring), and the report (``before``: the
    search's design; ``hardware_tried``: every screened point and its polished value, ``source``
    ``"bound"`` for the bound's points). ``hint``: the bound's point (:meth:`BoundHint.hardware`)."""
    t0 = time.monotonic()
    steps = hardware_steps(template, best.design.hardware, goal.area_budget_mm2)
    if time_limit_s < MIN_STEPS_S or not steps:
        return polish(network, template, goal, best, time_limit_s=time_limit_s, seed=seed, jobs=jobs, others=others,
                      on_layer_done=on_layer_done)
    screen = screen_seconds(time_limit_s)
    screen_end = t0 + SCREEN_SHARE * time_limit_s
    seen = list(others)
    current, report = polish(network, template, goal, best, time_limit_s=screen, seed=seed, jobs=jobs,
                             others=tuple(seen), on_layer_done=on_layer_done)
    value = current.score.value(goal.objective)
    tried = [_tried(current, value)]
    visited = {best.design.hardware}
    failed: set[tuple[str, float]] = set()  # steps that did not pay: tried last from the next point
    bound_points, bound_failed = 0, False
    moved = True
    while moved and not stop_requested():
        moved = False
        steps = hardware_steps(template, current.design.hardware, goal.area_budget_mm2)
        steps.sort(key=lambda h: _step(current.design.hardware, h) in failed)  # stable: sizes first otherwise
        for hw, source in _with_bound_points(steps, hint, visited,
                                             lambda: bound_points < MAX_BOUND_POINTS and not bound_failed):
            if hw in visited:
                continue
            if time.monotonic() + screen > screen_end or stop_requested():
                break
            visited.add(hw)
            bound_points += source == "bound"
            try:
                start = evaluate_design(network, template, repaired_design(network, template, current.design, hw), goal)
            except SpecError:  # a layer does not fit this hardware at all
                continue
            found, _ = polish(network, template, goal, start, time_limit_s=screen, seed=seed, jobs=jobs,
                              others=tuple(seen + [current]), on_layer_done=on_layer_done)
            v = found.score.value(goal.objective)
            tried.append(_tried(found, v, source))
            seen.append(found)
            if v < value:
                current, value, moved = found, v, True
                break
            if source == "step":
                failed.add(_step(current.design.hardware, hw))
            else:
                bound_failed = True
    left = t0 + time_limit_s - time.monotonic()
    if left > 1.0 and not stop_requested():
        again, final = polish(network, template, goal, current, time_limit_s=left, seed=seed + 1, jobs=jobs,
                              others=tuple(seen), on_layer_done=on_layer_done)
        if again.score.value(goal.objective) < value:
            current, value = again, again.score.value(goal.objective)
        proven = final.proven
    else:
        proven = report.proven
    before = best.score.value(goal.objective)
    if not value < before:
        current, value = best, before
    same_hw = current.design.hardware == best.design.hardware
    changed = tuple(e.layer.name for e, a, b in zip(network.layers, current.design.mappings, best.design.mappings)
                    if not same_hw or mapping_key(a) != mapping_key(b))
    return current, PolishReport(goal.objective, before, value, changed, proven, time.monotonic() - t0,
                                 transferred=report.transferred, rounds=report.rounds, hardware_tried=tuple(tried))


def _step(hw: Hardware, to: Hardware) -> tuple[str, float]:
    """The variable a neighbour changes and by what factor (rounded), e.g. ``("GlobalBuffer", 0.75)``."""
    pairs = [("mesh_x", hw.mesh_x, to.mesh_x), ("mesh_y", hw.mesh_y, to.mesh_y)] + \
        [(name, a, b) for (name, a), (_, b) in zip(hw.sizes_words, to.sizes_words)]
    name, a, b = next((p for p in pairs if p[1] != p[2]), ("", 1, 1))
    return name, round(b / a, 2)


def _with_bound_points(steps: list[Hardware], hint, visited: set, allowed: Callable[[], bool]):
    """``(hardware, source)`` pairs: the neighbours (``"step"``), each preceded by the bound's point
    (``"bound"``) when ``hint`` has one that is new and not near a visited point (module docstring)."""
    for hw in steps:
        point = hint() if hint is not None and allowed() else None
        if point is not None and point not in visited and not any(_near(point, v) for v in visited):
            yield point, "bound"
        yield hw, "step"


def _tried(design: Evaluated, value: float, source: str = "search") -> dict:
    hw = design.design.hardware
    return {"mesh_x": hw.mesh_x, "mesh_y": hw.mesh_y, **dict(hw.sizes_words),
            "value": value if math.isfinite(value) else None, "source": source}


__all__ = ["BoundHint", "hardware_steps", "polish_with_hardware_steps", "screen_seconds", "MIN_STEPS_S"]
