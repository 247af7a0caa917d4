"""``python -m benchmarks [NAME] [OPTIONS]``: run one benchmark by name, or all of them.

Add a benchmark by writing a module with a ``main(argv: list[str]) -> int`` function and listing
it in :data:`BENCHMARKS`. Options after ``NAME`` go to that benchmark (``python -m benchmarks
throughput --help``); without ``NAME`` every benchmark runs with its defaults, except those in
:data:`BY_NAME_ONLY` (``external`` needs a Timeloop build and runs for about an hour).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import benchmarks  # noqa: F401  (pins the thread pools before NumPy is imported)
from benchmarks import solve, throughput

BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    "throughput": throughput.main,
    "solve": solve.main,
    "compare": lambda argv: __import__("benchmarks.compare", fromlist=["main"]).main(argv),
    "optimize": lambda argv: __import__("benchmarks.optimize", fromlist=["main"]).main(argv),
    "bound": lambda argv: __import__("benchmarks.bound", fromlist=["main"]).main(argv),
    "adversarial": lambda argv: __import__("benchmarks.adversarial.run", fromlist=["main"]).main(argv),
    "mapper": lambda argv: __import__("benchmarks.mapper", fromlist=["main"]).main(argv),
    "external": lambda argv: __import__("benchmarks.external", fromlist=["main"]).main(argv),
}

#: Run only when named: they need tools outside the project (timeloop-mapper) and take long.
BY_NAME_ONLY = frozenset({"external"})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nbenchmarks: " + ", ".join(BENCHMARKS))
        return 0
    if not argv or argv[0].startswith("-"):
        if argv:
            print(f"benchmarks: error: options {argv} need a benchmark name "
                  f"(python -m benchmarks NAME {' '.join(argv)})", file=sys.stderr)
            return 2
        status = 0
        for name, run in BENCHMARKS.items():
            if name in BY_NAME_ONLY:
                print(f"== {name} == (skipped: run it by name, python -m benchmarks {name})", flush=True)
                continue
            print(f"== {name} ==", flush=True)
            status = max(status, run([]))
        return status
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"benchmarks: error: benchmark = {name!r}: unknown (available: {', '.join(BENCHMARKS)})",
              file=sys.stderr)
        return 2
    return BENCHMARKS[name](rest)


if __name__ == "__main__":
    sys.exit(main())
