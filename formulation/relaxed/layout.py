"""Named blocks of the relaxation's variable vector and constraint rows.

The solvers see flat vectors ``x`` (variables) and ``g`` (constraint rows); everything else reads
them through these blocks, so no index arithmetic appears outside this module:

* :class:`VariableLayout`: ``mesh_x``, ``mesh_y`` (columns), ``size["GlobalBuffer"]`` (column of a
  sized level, also by level index in ``size_at``), ``xt[layer, level, dim]`` and
  ``xs[layer, level, dim]`` (arrays of columns, ``Dim`` members index the last axis) and
  ``lc[layer]``; with names, bounds and the starting point of every column.
* :class:`RowLayout`: ``product[layer, dim]``, ``mesh_x[layer]``, ``mesh_y[layer]``,
  ``capacity[layer, level]`` (-1 where a level has no capacity), ``compute[layer]``,
  ``bandwidth[layer, port]`` (``ports`` lists the ``(level, read|write)`` pairs), ``area`` and
  ``cap["latency_s"]``; with names and bounds ``cl <= g <= cu``.

Which blocks exist, their bounds and their order are stated by :mod:`formulation.relaxed.formulation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class Columns:
    """Accumulates named entries (a name, a lower and an upper bound) and hands out their indices."""

    def __init__(self):
        self.names: list[str] = []
        self.lower: list[float] = []
        self.upper: list[float] = []

    def add(self, name: str, lower: float, upper: float) -> int:
        self.names.append(name)
        self.lower.append(float(lower))
        self.upper.append(float(upper))
        return len(self.names) - 1


@dataclass(frozen=True, eq=False)
class VariableLayout:
    """Columns of ``x`` by block (see the module docstring)."""

    mesh_x: int
    mesh_y: int
    size: dict[str, int]          # level name -> column, for the levels whose size is a variable
    size_at: dict[int, int]       # level index -> column (same entries)
    xt: np.ndarray                # [layers, levels, N_DIMS] columns
    xs: np.ndarray                # [layers, levels, N_DIMS] columns
    lc: np.ndarray                # [layers] columns
    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    start: np.ndarray             # the default starting point

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def hardware(self) -> np.ndarray:
        """Columns of the hardware variables: the mesh sides, then the sized levels."""
        return np.array([self.mesh_x, self.mesh_y, *self.size_at.values()], dtype=np.int64)

    def layer_columns(self, i: int) -> np.ndarray:
        """Layer ``i``'s own columns: its ``xt``, ``xs`` (flattened level-major) and ``lc``."""
        return np.concatenate([self.xt[i].ravel(), self.xs[i].ravel(), [self.lc[i]]])

    def temporal(self, x: np.ndarray, i: int) -> np.ndarray:
        """``xt`` of layer ``i`` at ``x`` as a ``[levels, N_DIMS]`` array."""
        return np.asarray(x)[self.xt[i]]

    def spatial(self, x: np.ndarray, i: int) -> np.ndarray:
        return np.asarray(x)[self.xs[i]]


@dataclass(frozen=True, eq=False)
class RowLayout:
    """Rows of ``g`` by block (see the module docstring)."""

    product: np.ndarray           # [layers, N_DIMS]
    mesh_x: np.ndarray            # [layers]
    mesh_y: np.ndarray            # [layers]
    capacity: np.ndarray          # [layers, levels], -1 where the level is unbounded
    compute: np.ndarray           # [layers]
    bandwidth: np.ndarray         # [layers, ports]
    ports: tuple[tuple[str, str], ...]
    area: int | None
    cap: dict[str, int]
    per_layer: int                # rows per layer; layer i's rows are i * per_layer + 0..per_layer-1
    names: tuple[str, ...]
    cl: np.ndarray
    cu: np.ndarray

    @property
    def m(self) -> int:
        return len(self.names)

    def layer_rows(self, i: int) -> np.ndarray:
        return np.arange(i * self.per_layer, (i + 1) * self.per_layer)

    def epigraph(self, i: int) -> np.ndarray:
        """Layer ``i``'s rows bounding its cycle variable: compute, then every bandwidth port."""
        return np.concatenate([[self.compute[i]], self.bandwidth[i]])

    def row(self, name: str) -> int:
        """The index of a row by its name (``"area"``, ``"cap[latency_s]"``, ``"compute[conv1]"``...)."""
        return self.names.index(name)
