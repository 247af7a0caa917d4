"""Named axes of the problem: loop dimensions, tensors, and how tensors project onto dimensions.

Every array in the model is indexed with these enums (``x[..., Dim.K]``, ``counts[Tensor.W]``),
never with bare integers.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Dim(IntEnum):
    """The seven loops of a convolution (one group of it)."""

    N = 0  # batch
    K = 1  # output channels
    C = 2  # input channels
    P = 3  # output width
    Q = 4  # output height
    R = 5  # filter width (pairs with P)
    S = 6  # filter height (pairs with Q)


class Tensor(IntEnum):
    """The three operands, in Timeloop's order (Weights, Inputs, Outputs)."""

    W = 0  # Weights[K][C][S][R], read-only
    I = 1  # noqa: E741  Inputs[N][C][H][W], read-only
    O = 2  # Outputs[N][K][Q][P], read-write (partial sums)


DIMS: tuple[Dim, ...] = tuple(Dim)
TENSORS: tuple[Tensor, ...] = tuple(Tensor)
N_DIMS = len(DIMS)
N_TENSORS = len(TENSORS)

TENSOR_NAMES: dict[Tensor, str] = {Tensor.W: "Weights", Tensor.I: "Inputs", Tensor.O: "Outputs"}
TENSOR_BY_NAME: dict[str, Tensor] = {name: t for t, name in TENSOR_NAMES.items()}
REDUCTION_DIMS: tuple[Dim, ...] = (Dim.C, Dim.R, Dim.S)

# Relevance matrix: RELEVANCE[t, d] is True when dimension d indexes tensor t.
# A loop over an irrelevant dimension leaves the tensor's tile unchanged (stationarity), and a
# spatial factor over one multicasts the tensor.
#                        N  K  C  P  Q  R  S
RELEVANCE = np.array([[0, 1, 1, 0, 0, 1, 1],   # Weights: K C R S
                      [1, 0, 1, 1, 1, 1, 1],   # Inputs:  N C P Q R S (P,R via W; Q,S via H)
                      [1, 1, 0, 1, 1, 0, 0]],  # Outputs: N K P Q
                     dtype=bool)
RELEVANCE.setflags(write=False)

N_AXES = 4


def projection(w_stride: int, h_stride: int, w_dilation: int = 1, h_dilation: int = 1) -> np.ndarray:
    """Coefficients ``A[t, a, d]`` projecting a point of the loop space onto axis ``a`` of tensor ``t``.

    Each tensor is addressed by four axes, and each axis coordinate is a linear form in the loop
    indices, ``coord_a = sum_d A[t, a, d] * idx_d``:

    * Weights: (K, C, S, R), identity rows.
    * Inputs: (N, C, H, W) with ``W = Wstride*P + Wdilation*R`` and ``H = Hstride*Q + Hdilation*S``.
    * Outputs: (N, K, Q, P), identity rows.

    A tile that spans extents ``e_d`` in every loop dimension spans ``1 + sum_d A[t,a,d]*(e_d - 1)``
    along axis ``a``, which gives the input halo ``(p-1)*Wstride + (r-1)*Wdilation + 1``. With
    unit strides and no sliding windows the rows are the relevance matrix split per dimension.
    """
    a = np.zeros((N_TENSORS, N_AXES, N_DIMS), dtype=np.int64)
    for axis, dim in enumerate((Dim.K, Dim.C, Dim.S, Dim.R)):
        a[Tensor.W, axis, dim] = 1
    a[Tensor.I, 0, Dim.N] = 1
    a[Tensor.I, 1, Dim.C] = 1
    a[Tensor.I, 2, Dim.Q] = h_stride
    a[Tensor.I, 2, Dim.S] = h_dilation
    a[Tensor.I, 3, Dim.P] = w_stride
    a[Tensor.I, 3, Dim.R] = w_dilation
    for axis, dim in enumerate((Dim.N, Dim.K, Dim.Q, Dim.P)):
        a[Tensor.O, axis, dim] = 1
    return a
