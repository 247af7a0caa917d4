"""Exit statuses of ``codesign`` and the guard that turns every failure into one line and its status.

====  ==========================================================================================
0     success (``optimize``: a design was found; ``evaluate --check``: every case agrees)
1     an answer that is not a success: infeasible, no design within the budget and caps, a solver
      failure, or cases that differ from their reference results
2     bad input: a user mistake in a flag or a file (one line naming the field and the value)
3     internal error: a bug in codesign (one line; rerun with ``--debug`` for the traceback)
130   interrupted (Ctrl-C or SIGTERM); ``optimize`` writes the best design found so far first
====  ==========================================================================================
"""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_NO_DESIGN = 1
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

EXIT_HELP = ("exit status: 0 success; 1 infeasible, no design or solver failure; 2 bad input (one line naming "
             "the field and the value); 3 internal error (a bug: rerun with --debug for the traceback); "
             "130 interrupted (optimize writes the best design so far)")

#: Longest message printed (longer ones are cut, so a message stays one readable line).
MAX_MESSAGE_CHARS = 500


def one_line(message: object) -> str:
    """``message`` on one line of at most :data:`MAX_MESSAGE_CHARS` characters (control characters escaped)."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(message))
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 3] + "..."


def report(kind: str, message: object) -> None:
    """Print ``codesign: KIND: MESSAGE`` as one line on stderr."""
    print(f"codesign: {kind}: {one_line(message)}", file=sys.stderr)


def run_guarded(func, args, debug: bool) -> int:
    """Run a command and map what it raises to one line and an exit status (module table).

    A :class:`~formulation.specs.types.SpecError` is a user mistake (2); an ``OSError`` about a file
    the user named (permission denied, not a directory, disk full) is also reported as bad input (2);
    a KeyboardInterrupt is 130; anything else is a bug (3), re-raised with ``debug`` for the traceback.
    """
    from formulation.specs.types import SpecError

    try:
        return func(args)
    except SpecError as exc:
        report("error", exc)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("codesign: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (``| head``): stay quiet
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        report("error", f"{where}{exc.strerror or exc}")
        return EXIT_USER_ERROR
    except Exception as exc:  # noqa: BLE001 (the top of the program: every bug becomes one line and exit 3)
        if debug:
            raise
        report("internal error", f"{type(exc).__name__}: {exc} (a bug in codesign; rerun with --debug for the "
                                 f"traceback)")
        return EXIT_INTERNAL
