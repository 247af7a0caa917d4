"""``codesign evaluate --cases FILE``: score a JSON-lines file of cases in batches, streaming.

The file is read in chunks of :data:`CHUNK_LINES` lines. Within a chunk the cases are grouped by
(layer, architecture) (textually identical ``layer``/``arch`` objects and ``layer_name``), every
group's mappings are checked for legality at once
(:func:`formulation.model.validation.mapping_violations`) and scored as one batch by the compiled
model (:func:`formulation.model.exact.evaluate_batch`); the chunk's results are then printed in
input order, one JSON object per non-blank line. A line that cannot be scored (not JSON, a bad
field, an illegal mapping) prints ``{"line": N, "id": ..., "error": "..."}`` with the one-line
message naming the field and value; the other lines are unaffected, and the exit status is 2 at
the end when any line failed (1 when ``--check`` found differences only).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import IO

from formulation.jsonsafe import json_lines
from formulation.specs.safe_load import parse_json
from formulation.specs.types import SpecError

CHUNK_LINES = 8192


def _parse(lineno: int, text: str, specs: dict):
    """A case as ``(id, layer, arch, mapping fields, reference)``
    (:func:`formulation.specs.loading.case_parts_from_dict`), or an error object naming the line and the field."""
    from formulation.specs.loading import case_parts_from_dict

    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            return {"line": lineno, "error": f"line {lineno}: not UTF-8 text (byte {exc.start}: "
                                             f"{text[exc.start:exc.start + 1]!r})"}
    text = text.strip()
    try:
        doc = parse_json(text, f"line {lineno} = {text[:40]!r}")  # strict: no NaN, bounded nesting
    except SpecError as exc:
        return {"line": lineno, "error": str(exc)}
    try:
        return case_parts_from_dict(doc, lineno, specs)
    except SpecError as exc:
        case_id = doc.get("id") if isinstance(doc, dict) else None
        return {"line": lineno, **({"id": case_id} if case_id is not None else {}), "error": str(exc)}


def _score_group(cases: list, check: bool) -> list[dict]:
    """Records (or error objects) for cases ``(lineno, parts)`` sharing one layer and architecture, in their order."""
    from formulation.model.encoding import encode_fields
    from formulation.model.exact import evaluate_batch
    from formulation.model.report import compare_with_reference, evaluation_records
    from formulation.model.validation import mapping_violations, validate_mapping
    from formulation.specs.loading import mapping_from_fields

    layer, arch = cases[0][1][1], cases[0][1][2]
    arrays = encode_fields([parts[3] for _, parts in cases])
    bad = mapping_violations(layer, arch, arrays)
    out: list[dict] = [{} for _ in cases]
    for i in bad.nonzero()[0]:
        lineno, (case_id, _, _, fields, _) = cases[i]
        try:
            validate_mapping(layer, arch, mapping_from_fields(fields, arch))
            message = "mapping: not legal"  # mapping_violations is a subset of validate_mapping's rules
        except SpecError as exc:
            message = str(exc)
        out[i] = {"line": lineno, "id": case_id, "error": f"case {case_id}: {message}"}
    good = (~bad).nonzero()[0]
    if len(good):
        ev = evaluate_batch(layer, arch, arrays.take(good))
        for i, scored in zip(good, evaluation_records(ev, arch)):
            case_id, reference = cases[i][1][0], cases[i][1][4]
            record = {"id": case_id, **scored}
            if check and reference is not None:
                problems = compare_with_reference(record, reference)
                record["agrees_with_reference"] = not problems
                if problems:
                    record["differences"] = problems
            out[i] = record
    return out


def _chunk_results(lines: list[tuple[int, str]], check: bool, specs: dict) -> list[dict]:
    results: list[dict | None] = [None] * len(lines)
    groups: dict[tuple[int, int], list[tuple[int, object]]] = {}  # by identity of the cached specs
    for pos, (lineno, text) in enumerate(lines):
        got = _parse(lineno, text, specs)
        if isinstance(got, dict):
            results[pos] = got
        else:
            groups.setdefault((id(got[1]), id(got[2])), []).append((pos, (lineno, got)))
    for members in groups.values():
        for (pos, _), record in zip(members, _score_group([m for _, m in members], check)):
            results[pos] = record
    return results  # type: ignore[return-value]


def evaluate_cases(path: str | Path, check: bool, out: IO[str] | None = None) -> int:
    """Score every line of ``path``, print one JSON object per line; the exit status (see module docstring).

    Python's cyclic garbage collector is paused meanwhile: a chunk builds hundreds of thousands of
    small acyclic objects (parsed lines, records), and the collections they trigger, each walking
    every live object, cost more than the parsing itself (measured: ``benchmarks/README.md``).
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"cases = {str(path)!r}: no such file")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _evaluate_cases(p, check, sys.stdout if out is None else out)
    finally:
        if was_enabled:
            gc.enable()


def _evaluate_cases(p: Path, check: bool, out: IO[str]) -> int:
    errors = differ = 0
    specs: dict = {}
    with p.open("rb") as fh:  # bytes: a line that is not UTF-8 is that line's error, not the file's
        chunk: list[tuple[int, str]] = []
        for lineno, text in enumerate(fh, start=1):
            if text.strip():
                chunk.append((lineno, text))
            if len(chunk) >= CHUNK_LINES:
                errors, differ = _flush(chunk, check, specs, out, errors, differ)
                chunk = []
        errors, differ = _flush(chunk, check, specs, out, errors, differ)
    if errors:
        print(f"codesign: error: {errors} line(s) of {p.name} could not be evaluated (see their 'error' objects)",
              file=sys.stderr)
        return 2
    if check and differ:
        print(f"codesign: {differ} case(s) differ from their reference results", file=sys.stderr)
        return 1
    return 0


def _flush(chunk, check, specs, out, errors, differ):
    if not chunk:
        return errors, differ
    if len(specs) > 1024:
        specs.clear()
    results = _chunk_results(chunk, check, specs)
    out.write(json_lines(results))
    out.flush()
    errors += sum("error" in r for r in results)
    differ += sum(r.get("agrees_with_reference") is False for r in results)
    return errors, differ
