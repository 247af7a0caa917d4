"""Reading Timeloop/Accelergy YAML files and merging their top-level documents.

Timeloop concatenates every input file into one configuration; a user passes the files in any
order (``arch.yaml problem.yaml map.yaml ERT.yaml``, or one combined file). :func:`read_documents`
does the same: each file may hold several YAML documents, each a mapping of top-level keys, and
the union of those keys is the configuration. Newer front-ends (Timeloop v0.4) tag nodes with
``!Component`` / ``!Container`` and similar; such a tag is kept as the key ``"!"`` of the mapping it
labels, so the architecture reader can tell containers from components.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from formulation.specs.safe_load import MAX_DEPTH, Yaml12Loader, check_yaml_depth, count_nodes, read_text
from formulation.specs.types import SpecError

#: Top-level keys that carry what the model needs.
MODEL_KEYS = ("architecture", "arch", "problem", "mapping", "ERT")
#: Top-level keys of Timeloop/Accelergy inputs that steer only the mapper, the area estimate or
#: Accelergy's own energy estimation, and that do not change what timeloop-model computes for a
#: given mapping and energy table; they are read and ignored.
IGNORED_KEYS = ("mapper", "architecture_constraints", "mapspace_constraints", "mapspace", "constraints", "ART",
                "compound_components", "variables", "globals", "model", "components", "ERT_summary",
                "ART_summary", "version", "dumped_by_timeloop_front_end", "tlfe_version")
#: Top-level keys that ask for something the model does not do.
REJECTED_KEYS = {"sparse_optimizations": "sparse-tensor optimizations (the model is dense)"}


class _TaggedLoader(Yaml12Loader):
    """A safe loader (YAML 1.2 numbers, no repeated keys: :mod:`formulation.specs.safe_load`) that keeps
    unknown ``!Tags`` as the ``"!"`` entry of the tagged mapping."""


def _construct_tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
        value = dict(value)
        value["!"] = tag_suffix
        return value
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TaggedLoader.add_multi_constructor("!", _construct_tagged)


def read_documents(paths: list[str | Path]) -> dict[str, Any]:
    """The merged top-level keys of every YAML document in ``paths`` (a key given twice is an error)."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in paths:
        p = Path(path)
        docs = _load_all(p, read_text(p))
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise SpecError(f"{p.name} = {str(doc)[:40]!r}: expected top-level keys (architecture, problem, "
                                f"mapping, ERT)")
            for key, value in doc.items():
                if key in REJECTED_KEYS and value:
                    raise SpecError(f"{p.name}: {key} = {str(value)[:40]!r}: not supported: {REJECTED_KEYS[key]}")
                if key in IGNORED_KEYS or key in REJECTED_KEYS:
                    continue
                if key not in MODEL_KEYS:
                    raise SpecError(f"{p.name}: {key} = {str(value)[:40]!r}: unknown Timeloop top-level key "
                                    f"(read: {', '.join(MODEL_KEYS)}; ignored: {', '.join(IGNORED_KEYS)})")
                if key in merged:
                    raise SpecError(f"{p.name}: {key} = given twice (also in {origin[key]})")
                merged[key] = value
                origin[key] = p.name
    if "arch" in merged and "architecture" in merged:
        raise SpecError(f"{origin['arch']}: arch = given twice (also architecture in {origin['architecture']})")
    if "arch" in merged:
        merged["architecture"] = merged.pop("arch")
    return merged


def is_timeloop_document(doc: Any) -> bool:
    """Whether a parsed document is Timeloop input (one of its top-level keys) rather than our own format."""
    return isinstance(doc, dict) and any(k in doc for k in ("architecture", "problem", "ERT")) or (
        isinstance(doc, dict) and "mapping" in doc and isinstance(doc["mapping"], list)
        and any(isinstance(d, dict) and "type" in d for d in doc["mapping"])) or (
        isinstance(doc, dict) and "arch" in doc and isinstance(doc["arch"], dict)
        and ("storage" in doc["arch"] or "arithmetic" in doc["arch"] or "subtree" in doc["arch"]))


def is_timeloop_file(path: str | Path) -> bool:
    """Whether ``path`` is a YAML file whose first document looks like Timeloop input (False if unreadable)."""
    p = Path(path)
    if not p.is_file() or p.suffix.lower() not in (".yaml", ".yml"):
        return False
    try:
        docs = _load_all(p, read_text(p))
    except SpecError:
        return False
    return is_timeloop_document(docs[0] if docs else None)


def _load_all(p: Path, text: str) -> list[Any]:
    """Every YAML document of ``text`` (bounded nesting and expansion), or a one-line SpecError."""
    what = f"file = {str(p)[:200]!r}"
    try:
        check_yaml_depth(text, what, single_document=False, loader=_TaggedLoader)
        docs = list(yaml.load_all(text, Loader=_TaggedLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{what}: not valid YAML{where}") from None
    except RecursionError:
        raise SpecError(f"{what}: nested deeper than {MAX_DEPTH} levels") from None
    count_nodes(docs, what)
    return docs
