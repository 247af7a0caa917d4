"""search.stop.stop_interrupts: a stop request interrupts the main thread, also when Python drops the first
interrupt inside a callback (a module lock's weakref callback during an import, a ``__del__``)."""

from __future__ import annotations

import time
import types

import pytest

from search import stop


@pytest.fixture(autouse=True)
def _fresh():
    stop.reset()
    yield
    stop.reset()


def test_a_dropped_interrupt_is_not_printed_and_is_sent_again():
    seen = []
    hook = stop._drop_interrupts(seen.append)
    hook(types.SimpleNamespace(exc_type=ValueError))
    assert len(seen) == 1 and not stop._dropped.is_set()  # other errors still reach the previous hook
    with pytest.raises(KeyboardInterrupt):
        with stop.stop_interrupts():
            stop.request_stop()
            try:
                time.sleep(5)
            except KeyboardInterrupt:  # the first one, as if Python had dropped it in a callback
                hook(types.SimpleNamespace(exc_type=KeyboardInterrupt))
                assert len(seen) == 1
            time.sleep(5)  # the watcher sends another within a poll
    assert stop._dropped.is_set() is False


def test_the_unraisable_hook_is_restored():
    import sys

    before = sys.unraisablehook
    with stop.stop_interrupts():
        assert sys.unraisablehook is not before
    assert sys.unraisablehook is before
