"""Benchmarks of the accel-codesign model (run with ``python -m benchmarks [NAME]`` or ``make bench``).

The benchmarks measure single-core speed, so importing this package pins the BLAS/OpenMP thread
pools to one thread (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``). That only
takes effect if NumPy has not been imported yet in the process, which is the case under
``python -m benchmarks``; :data:`THREADS_PINNED_BEFORE_NUMPY` records whether it was.
"""

from __future__ import annotations

import os
import sys

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

THREADS_PINNED_BEFORE_NUMPY = "numpy" not in sys.modules
for _var in THREAD_ENV_VARS:
    os.environ[_var] = "1"
del _var
