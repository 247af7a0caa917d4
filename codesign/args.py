"""Argument helpers shared by the ``codesign`` subcommands."""

from __future__ import annotations

from formulation.specs.types import SpecError


def _number_arg(value, flag: str, kind=float, minimum: float = 0.0, strict: bool = True):
    """``value`` (a string from argparse, or None) as a number above ``minimum``, or a one-line SpecError."""
    import math

    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SpecError(f"{flag} = {value!r}: not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(number):
        raise SpecError(f"{flag} = {value!r}: must be finite")
    if number < minimum or (strict and number == minimum):
        raise SpecError(f"{flag} = {value!r}: must be {'>' if strict else '>='} {minimum:g}")
    return number
