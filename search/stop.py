"""Graceful stops of long searches: a stop request that every running search sees between batches.

``codesign optimize`` turns the first SIGINT or SIGTERM into :func:`request_stop`: the flag is set in
this process and, when a stop file was given (:func:`use_stop_file`), the file is created so that
worker processes (joblib/loky, which run :func:`search.optimize.run_start`) see it too. Searches call
:func:`stop_requested` where they check their time budget and end with the best design they have,
so the running starts' bests are returned and written, not lost. Checking costs one ``stat`` call.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

#: How often :class:`stop_interrupts`' watcher looks for a stop request (s).
STOP_POLL_S = 0.2

_requested = False
_stop_file: str | None = None


def leave_signals_to_the_parent() -> None:
    """In a worker process (loky, the mapper's Manager), ignore SIGINT and SIGTERM: a Ctrl-C in a terminal
    and ``timeout`` or a batch scheduler's SIGTERM reach the whole process group, and a worker killed by
    them would end the run with an error instead of its best design. The parent turns the first signal
    into a stop request that the workers see through the stop file, and shuts them down itself (loky
    and the Manager end their processes with SIGKILL or by closing their pipes). No effect in the main
    process."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


#: Keyword arguments of every loky executor (``joblib.executor.get_memmapping_executor``, ``Parallel``).
LOKY_WORKER_KWARGS = {"initializer": leave_signals_to_the_parent}


def loky_parallel(n_jobs: int, **kwargs):
    """``joblib.Parallel`` on loky workers that run :func:`leave_signals_to_the_parent` when they start (an
    idle worker interrupted while it waits for a task would break the pool). Every loky pool of the
    package is made here or with :data:`LOKY_WORKER_KWARGS`, so they share joblib's reusable workers."""
    from joblib import Parallel

    return Parallel(n_jobs=n_jobs, backend="loky", **LOKY_WORKER_KWARGS, **kwargs)


def use_stop_file(path: str | None) -> None:
    """Share stop requests through ``path`` (created on a request; None: this process only)."""
    global _stop_file
    _stop_file = None if path is None else str(path)


def stop_file() -> str | None:
    return _stop_file


def request_stop() -> None:
    """Ask every search (here and in workers sharing the stop file) to end with its best design so far."""
    global _requested
    _requested = True
    if _stop_file is not None:
        try:
            with open(_stop_file, "w", encoding="utf-8") as handle:
                handle.write("stop\n")
        except OSError:
            pass


def stop_requested() -> bool:
    return _requested or (_stop_file is not None and os.path.exists(_stop_file))


def reset() -> None:
    """Forget a stop request (the next run starts afresh)."""
    global _requested, _stop_file
    _requested = False
    _stop_file = None


class stop_interrupts:
    """While active (main thread only), a stop request raises KeyboardInterrupt in the main thread: a watcher
    thread polls :func:`stop_requested` and sends this process ``SIGUSR1``, whose handler raises it; the
    exact mapper turns it into its ``interrupted`` status with the best mapping so far.

    Python runs the handler wherever the main thread is, also inside a callback whose exceptions it only
    reports and drops (a weakref callback of the import system's module locks, a ``__del__``): such a
    dropped interrupt is not reported (``sys.unraisablehook``) and the watcher sends the signal again."""

    def __enter__(self):
        self.done = threading.Event()
        self.active = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR1")
        if self.active:
            _dropped.clear()
            self.previous = signal.signal(signal.SIGUSR1, _raise_interrupt)
            self.previous_hook = sys.unraisablehook
            sys.unraisablehook = _drop_interrupts(self.previous_hook)
            self.thread = threading.Thread(target=self._watch, daemon=True)
            self.thread.start()
        return self

    def _watch(self) -> None:
        sent = False
        while not self.done.wait(STOP_POLL_S):
            if (not sent and stop_requested()) or _dropped.is_set():
                _dropped.clear()
                sent = True
                os.kill(os.getpid(), signal.SIGUSR1)

    def __exit__(self, *exc) -> None:
        if self.active:
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # a late signal is dropped
            self.done.set()
            self.thread.join()
            signal.signal(signal.SIGUSR1, self.previous)
            sys.unraisablehook = self.previous_hook


#: Set when an interrupt of :class:`stop_interrupts` was dropped in a callback (its watcher sends another).
_dropped = threading.Event()


def _drop_interrupts(previous):
    """An unraisable-exception hook that records a dropped KeyboardInterrupt instead of printing it."""
    def hook(unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            _dropped.set()
            return
        previous(unraisable)
    return hook


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
