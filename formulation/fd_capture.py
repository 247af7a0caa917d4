"""One lock between solves that capture the process's output and the starting of child processes.

Pyomo's ``cyipopt`` interface runs every solve inside ``capture_output(..., capture_fd=True)``: file
descriptors 1 and 2 point into a pipe while the solve lasts, and a reader thread drains the pipe
until every write end is closed. A child process started in that window (the mapper's
``multiprocessing.Manager`` server, loky workers) inherits descriptors 1 and 2, so the pipe keeps a
writer for as long as the child lives: the reader never ends and Pyomo gives up after 100 s with
"TeeStream: deadlock observed joining reader threads". That happened in ``optimize --total-time``,
where polishing starts its worker pools from a thread while the branch-and-bound solves its nodes
in the main thread. Holding :data:`FD_CAPTURE_LOCK` around both keeps them apart.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

#: Held around a solve that captures descriptors 1 and 2, and around starting child processes.
FD_CAPTURE_LOCK = threading.RLock()


@contextmanager
def captured_solve():
    """Hold :data:`FD_CAPTURE_LOCK` around a solve whose output Pyomo captures, and give back a Ctrl-C
    that landed while the capture closed: Pyomo calls every exit handler of the capture and reports
    their errors together as one ``RuntimeError`` ("KeyboardInterrupt: ... (4: <TeeStream ...>)"), which
    would otherwise read as a bug instead of the stop it is."""
    with FD_CAPTURE_LOCK:
        try:
            yield
        except RuntimeError as exc:
            if "KeyboardInterrupt" in str(exc):
                raise KeyboardInterrupt(str(exc)) from exc
            raise


__all__ = ["FD_CAPTURE_LOCK", "captured_solve"]
