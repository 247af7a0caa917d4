"""JSON output that is always valid JSON: no NaN, no Infinity.

Value policy: a float that is not finite (NaN, ±Infinity: "not computed" or "unbounded") is written
as ``null``; NumPy scalars and arrays become plain numbers and lists; tuples become lists. The text is
then produced with ``allow_nan=False``, so a non-finite number that slipped through would raise
instead of writing something a strict JSON reader refuses.
"""

from __future__ import annotations

import json
import math
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None and NumPy values made plain (recursive)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    tolist = getattr(value, "tolist", None)  # NumPy scalars and arrays
    if tolist is not None:
        return json_safe(tolist())
    if isinstance(value, (int, float)):
        return json_safe(float(value))
    return value


def json_text(doc: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_safe` ``(doc)`` with ``allow_nan=False``."""
    return json.dumps(json_safe(doc), allow_nan=False, **kwargs)


def json_lines(docs: list) -> str:
    """:func:`json_text` of every doc, one per line, the same text policy (non-finite floats as
    ``null``, NumPy values plain), written by orjson, several times faster; a doc orjson cannot
    write (a non-string key, an integer beyond 64 bits) goes through :func:`json_text`."""
    import orjson

    opt = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    parts = []
    for doc in docs:
        try:
            parts.append(orjson.dumps(doc, option=opt).decode())
        except TypeError:
            parts.append(json_text(doc) + "\n")
    return "".join(parts)
