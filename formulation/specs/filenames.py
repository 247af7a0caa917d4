"""Names never become paths: turning layer names, ONNX node names and case ids into safe file names.

:func:`safe_component` maps any string to one path component that cannot leave its folder: only
ASCII letters, digits, ``.``, ``_`` and ``-`` are kept (every other character, ``/``, ``\\``, NUL and
non-ASCII letters included, becomes ``_``); leading dots are replaced (no ``.``, ``..`` or hidden
files); an empty result becomes ``_``; names Windows reserves (``CON``, ``NUL``, ...) get a ``_``
suffix; a long name is cut to :data:`MAX_COMPONENT_CHARS`. When anything was changed, a short hash
of the original is appended, so two different names rarely map to the same component;
:func:`unique_components` then guarantees distinct components (compared case-insensitively, for
case-insensitive file systems) by numbering repeats. :func:`inside` checks that a path stays under
a folder (a last line of defence after sanitizing).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from formulation.specs.types import SpecError

MAX_COMPONENT_CHARS = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def safe_component(name: object) -> str:
    """One safe path component for ``name`` (module docstring); unchanged when already safe and short."""
    text = str(name)
    safe = _UNSAFE.sub("_", text)
    safe = re.sub(r"^\.+", lambda m: "_" * len(m.group()), safe)
    if not safe:
        safe = "_"
    if safe.split(".")[0].upper() in _RESERVED:
        safe = safe + "_"
    if safe != text or len(safe) > MAX_COMPONENT_CHARS:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = f"{safe[:MAX_COMPONENT_CHARS - 9]}-{digest}"
    return safe


def unique_components(names: list[object]) -> list[str]:
    """:func:`safe_component` of each name, numbered (``-2``, ``-3``, ...) where two would coincide."""
    seen: set[str] = set()
    out = []
    for name in names:
        base = safe_component(name)
        candidate, k = base, 1
        while candidate.lower() in seen:
            k += 1
            candidate = f"{base}-{k}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def inside(folder: str | Path, path: str | Path) -> Path:
    """``path`` if it resolves inside ``folder``; otherwise a SpecError (nothing is written outside)."""
    root = Path(folder).resolve()
    target = Path(path).resolve()
    if target != root and root not in target.parents:
        raise SpecError(f"output path = {str(path)[:200]!r}: would leave the output folder {str(folder)[:200]!r}")
    return Path(path)
