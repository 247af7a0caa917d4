"""Accelergy energy reference tables (ERT) as per-component, per-action energies.

Two layouts are read:

* version 0.2: ``tables: {PATH: {ACTION: [{arguments, energy}, ...]}}``;
* version 0.3 (and later): ``tables: [{name: PATH, actions: [{name: ACTION, arguments, energy}]}]``.

``PATH`` is the component's dotted path in the architecture tree (``system.PE[0..255].RegisterFile``);
like Timeloop, a table belongs to the component named by the path's last part, without its
``[a..b]`` instance range. An action listed with several argument combinations (Accelergy writes
one entry per ``address_delta``/``data_delta`` case) costs the **largest** of their energies.

Energies are pJ per action. Timeloop charges a storage action per vector access of
``block-size`` words (when ``width = word-bits x block-size``, i.e. a cluster of one block), which
is exactly this project's convention (``StorageLevel.read_energy_pJ`` and friends are pJ per
vector access), so ERT energies are taken over unchanged. The actions used, in the order Timeloop
looks them up:

=================  ==========================================
project field      ERT action (first one present)
=================  ==========================================
read_energy_pJ     ``random_read``, ``read``
fill_energy_pJ     ``random_fill``, ``fill``, ``write``
update_energy_pJ   ``random_update``, ``update``, ``write``
write_energy_pJ    ``write``, else the fill energy
mac.energy_pJ      ``mac_random``, ``random_compute``, ``compute``, ``mac``
=================  ==========================================
"""

from __future__ import annotations

import re
from typing import Any

from formulation.specs.types import SpecError

READ_ACTIONS = ("random_read", "read")
FILL_ACTIONS = ("random_fill", "write")
UPDATE_ACTIONS = ("random_update", "write")
MAC_ACTIONS = ("mac_random", "random_compute", "compute", "mac")

_RANGE = re.compile(r"\[\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*\]$")
_ANY_RANGE = re.compile(r"\[\s*-?\d+\s*\.\.\s*-?\d+\s*\]")


def base_name(name: str) -> str:
    """A component or container name without its ``[a..b]`` instance range."""
    return _RANGE.sub("", str(name)).strip()


def _energy(entry: Any, where: str) -> float:
    if not isinstance(entry, dict) or "energy" not in entry:
        raise SpecError(f"ERT {where} = {str(entry)[:40]!r}: each entry needs an energy")
    value = entry["energy"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SpecError(f"ERT {where}.energy = {value!r}: must be a non-negative number (pJ)")
    return float(value)


def parse_ert(doc: Any) -> dict[str, dict[str, float]]:
    """``{component name: {action: energy pJ}}`` from an ``ERT:`` document (see the module docstring)."""
    if not isinstance(doc, dict) or "tables" not in doc:
        raise SpecError(f"ERT = {str(doc)[:40]!r}: expected a mapping with 'tables'")
    tables = doc["tables"]
    out: dict[str, dict[str, float]] = {}

    def add(path: str, action: str, energy: float) -> None:
        actions = out.setdefault(_ANY_RANGE.sub("", str(path)).split(".")[-1].strip(), {})
        actions[action] = max(energy, actions.get(action, 0.0))

    if isinstance(tables, dict):  # version 0.2
        for path, actions in tables.items():
            if not isinstance(actions, dict):
                raise SpecError(f"ERT tables[{path}] = {str(actions)[:40]!r}: expected actions")
            for action, entries in actions.items():
                entries = entries if isinstance(entries, list) else [entries]
                for entry in entries:
                    add(path, str(action), _energy(entry, f"{path}.{action}"))
    elif isinstance(tables, list):  # version 0.3+
        for i, table in enumerate(tables):
            if not isinstance(table, dict) or "name" not in table:
                raise SpecError(f"ERT tables[{i}] = {str(table)[:40]!r}: needs a name and actions")
            for entry in table.get("actions") or []:
                if not isinstance(entry, dict) or "name" not in entry:
                    raise SpecError(f"ERT {table['name']}.actions = {str(entry)[:40]!r}: each action needs a name")
                add(table["name"], str(entry["name"]), _energy(entry, f"{table['name']}.{entry['name']}"))
    else:
        raise SpecError(f"ERT.tables = {str(tables)[:40]!r}: expected a mapping (v0.2) or a list (v0.3)")
    return out


def first_action(actions: dict[str, float], names: tuple[str, ...]) -> float | None:
    """The energy of the first of ``names`` present in ``actions``, or None."""
    for name in names:
        if name in actions:
            return actions[name]
    return None


def is_compute_table(actions: dict[str, float]) -> bool:
    """Whether a table describes a compute unit (it has a MAC action and no read)."""
    return first_action(actions, MAC_ACTIONS) is not None and first_action(actions, READ_ACTIONS) is None
