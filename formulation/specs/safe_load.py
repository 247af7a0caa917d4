"""Parsing spec files safely: YAML 1.2 numbers, strict JSON, and bounded size, nesting and expansion.

Every problem becomes one :class:`~formulation.specs.types.SpecError` line naming the file:

* a file ending in ``.json`` is read by the JSON parser; anything else by a YAML parser with the
  **YAML 1.2 core schema** (PyYAML implements YAML 1.1): ``5.12e2`` and ``1e3`` are floats, ``0100``
  is the integer 100 (not octal 64), ``0o17`` octal, ``0x1F`` hexadecimal; ``yes``/``no``/``on``/``off``
  are strings (only ``true``/``false`` are booleans); ``1:04`` (sexagesimal), ``6_4`` and timestamps
  are strings; the merge key ``<<`` has no meaning. ``NaN``/``Infinity`` in JSON are refused (they
  are not JSON); YAML's ``.inf``/``.nan`` parse as floats and are refused by the spec checks;
* a key given twice in one mapping is refused (YAML and JSON alike) instead of keeping the last;
* bytes that are not UTF-8 (a leading BOM is allowed), files larger than :data:`MAX_FILE_BYTES`,
  anything that is not a regular file, nesting deeper than :data:`MAX_DEPTH` and documents whose
  aliases expand to more than :data:`MAX_NODES` values ("billion laughs") are refused;
* only plain data is built (``!!python/...`` tags are refused, as by ``yaml.safe_load``); a file
  with several YAML documents is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from formulation.specs.types import SpecError

#: Largest spec file read (bytes). The largest built-in network file is a few kB; a case file of
#: 100,000 reference cases is about 300 MB, so JSON-lines case files are streamed line by line instead.
MAX_FILE_BYTES = 64 * 2 ** 20
#: Deepest nesting of lists and mappings (the spec formats need at most 5).
MAX_DEPTH = 64
#: Most values a document may hold once its YAML aliases are expanded.
MAX_NODES = 1_000_000

_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                       r"|\.(?:nan|NaN|NAN))$")
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's implicit types and no duplicate keys."""

    yaml_implicit_resolvers: dict = {}


for _tag, _regexp, _first in (("tag:yaml.org,2002:bool", _BOOL_RE, "tTfF"),
                              ("tag:yaml.org,2002:null", _NULL_RE, ["~", "n", "N", ""]),
                              ("tag:yaml.org,2002:int", _INT_RE, "-+0123456789"),
                              ("tag:yaml.org,2002:float", _FLOAT_RE, "-+0123456789.")):
    Yaml12Loader.add_implicit_resolver(_tag, _regexp, list(_first))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    try:
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text)
    except ValueError:
        raise yaml.constructor.ConstructorError(None, None, f"integer {text[:20]!r}... has too many digits",
                                                node.start_mark) from None


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in out
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, f"a key of type {type(key).__name__} is not allowed",
                                                    key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"key {str(key)[:40]!r} is given twice",
                                                    key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
Yaml12Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def check_yaml_depth(text: str, what: str, single_document: bool = True, loader=None) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` from the event stream (no recursion, before building),
    and (``single_document``) more than one YAML document."""
    depth = 0
    documents = 0
    for event in yaml.parse(text, Loader=loader or Yaml12Loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(f"{what}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent) and single_document:
            documents += 1
            if documents > 1:
                raise SpecError(f"{what}: holds more than one YAML document (one is expected)")


def count_nodes(doc: Any, what: str) -> None:
    """Refuse documents whose expanded size exceeds :data:`MAX_NODES` (shared subtrees counted once each use)."""
    sizes: dict[int, int] = {}

    def size(value: Any, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise SpecError(f"{what}: nested deeper than {MAX_DEPTH} levels")
        if not isinstance(value, (list, dict)):
            return 1
        known = sizes.get(id(value))
        if known is not None:
            return known
        children = value.values() if isinstance(value, dict) else value
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_NODES:
                raise SpecError(f"{what}: expands to more than {MAX_NODES:,} values (YAML aliases?)")
        sizes[id(value)] = total
        return total

    size(doc, 0)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)  # built in C; only a repeated key makes it shorter, then the loop names the key
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key {key[:40]!r} is given twice")
            seen.add(key)
    return out


def parse_json(text: str, what: str) -> Any:
    """Strict JSON (no NaN/Infinity, no repeated keys, bounded nesting) or a one-line SpecError."""
    try:
        doc = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{what}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:
        raise SpecError(f"{what}: not valid JSON ({str(exc).splitlines()[0][:120]})") from None
    except RecursionError:
        raise SpecError(f"{what}: nested deeper than {MAX_DEPTH} levels") from None
    if len(text) > MAX_NODES or text.count("{") + text.count("[") > MAX_DEPTH:
        count_nodes(doc, what)
    # else it cannot fail: every JSON value takes at least one character (so there are at most
    # len(text) values), and every level of nesting its own opening bracket
    return doc


def parse_yaml(text: str, what: str) -> Any:
    """YAML 1.2 (core schema) of one document, bounded as the module says, or a one-line SpecError."""
    try:
        check_yaml_depth(text, what)
        doc = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or ""
        raise SpecError(f"{what}: not valid YAML/JSON{where}" + (f" ({problem})" if problem else "")) from None
    except RecursionError:
        raise SpecError(f"{what}: nested deeper than {MAX_DEPTH} levels") from None
    count_nodes(doc, what)
    return doc


def read_text(path: str | Path, what: str = "file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes, or a one-line SpecError."""
    p = Path(path)
    label = f"{what} = {str(path)[:200]!r}"
    try:
        if not p.exists():
            raise SpecError(f"{label}: no such file")
        if not p.is_file():
            raise SpecError(f"{label}: not a regular file")
        with p.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SpecError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise SpecError(f"{label}: larger than {max_bytes // 2 ** 20} MiB; spec files are small")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{label}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None


def parse_document(text: str, what: str, json_only: bool = False) -> Any:
    """``text`` parsed as JSON (``json_only``) or YAML 1.2 (a superset of JSON)."""
    return parse_json(text, what) if json_only else parse_yaml(text, what)


def load_file(path: str | Path) -> Any:
    """Read and parse a spec file: JSON when its name ends in ``.json``, YAML 1.2 otherwise."""
    label = f"file = {str(path)[:200]!r}"
    text = read_text(path)
    return parse_document(text, label, json_only=str(path).lower().endswith(".json"))
