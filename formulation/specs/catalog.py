"""Built-in workloads and architectures, and loading either a built-in name or a spec file.

The built-ins are YAML files shipped as package data under ``formulation/specs/builtin/networks`` and
``formulation/specs/builtin/archs``; a built-in's name is its file name without ``.yaml``. They are read
with :mod:`importlib.resources`, on demand (nothing is read at import time).

``load_network`` / ``load_arch`` take either such a name or the path of a YAML/JSON file. A string
is taken as a path when it names an existing file or ends in ``.yaml``, ``.yml`` or ``.json``;
otherwise it must be a built-in name (matched case-insensitively). Accepted file contents:

* network: a network document (``name``, ``layers``), a single layer document (``N C K P Q ...``,
  giving a one-layer network named after the file), or a reference case (its ``layer``);
* network: also an ONNX model, any path ending in ``.onnx`` (:mod:`formulation.specs.onnx_import`);
* architecture: an ``arch`` document (``levels``, ``mac``), or a reference case (its ``arch``);
* a Timeloop file (:mod:`formulation.specs.timeloop_import`): its ``problem`` as a one-layer
  network, its ``architecture`` (energies from an ``ERT`` in the same file) as an architecture.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formulation.specs.loading import LAYER_KEYS, arch_from_dict, layer_from_dict, network_from_dict, read_document
from formulation.specs.numbers import check_name
from formulation.specs.safe_load import parse_yaml
from formulation.specs.types import Architecture, Network, NetworkLayer, SpecError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

FILE_SUFFIXES = (".yaml", ".yml", ".json")
_BUILTIN_SUFFIX = ".yaml"


def _builtin_dir(kind: str) -> Traversable:
    return resources.files("formulation.specs") / "builtin" / kind


def _builtin_names(kind: str) -> list[str]:
    folder = _builtin_dir(kind)
    if not folder.is_dir():
        return []
    return sorted(entry.name[: -len(_BUILTIN_SUFFIX)] for entry in folder.iterdir()
                  if entry.is_file() and entry.name.endswith(_BUILTIN_SUFFIX))


def network_names() -> list[str]:
    """Names of the built-in networks, sorted."""
    return _builtin_names("networks")


def arch_names() -> list[str]:
    """Names of the built-in architectures, sorted."""
    return _builtin_names("archs")


def _is_path(name_or_path: str | Path, what: str) -> bool:
    if isinstance(name_or_path, Path):
        return True
    if not isinstance(name_or_path, str):
        raise SpecError(f"{what} = {name_or_path!r}: expected a built-in name or a file path")
    return Path(name_or_path).is_file() or name_or_path.lower().endswith(FILE_SUFFIXES)


def _read_builtin(kind: str, what: str, name: str) -> tuple[str, Any]:
    """Parse built-in ``name`` of ``kind``; return its canonical name and document."""
    names = _builtin_names(kind)
    key = name.strip().lower()
    match = next((n for n in names if n.lower() == key), None)
    if match is None:
        raise SpecError(f"{what} = {name!r}: not a built-in {what} (available: {', '.join(names) or 'none'}) "
                        f"and not a {'/'.join(FILE_SUFFIXES)} file")
    text = (_builtin_dir(kind) / f"{match}{_BUILTIN_SUFFIX}").read_text(encoding="utf-8")
    return match, parse_yaml(text, f"built-in {what} {match}")


def _read_file(path: str | Path) -> tuple[str, Any]:
    return Path(path).stem, read_document(path)


def _network_from_doc(doc: Any, default_name: str) -> Network:
    if isinstance(doc, MappingABC) and "problem" in doc:  # a Timeloop problem: its layer
        from formulation.specs.timeloop_import import problem_from_timeloop

        return Network(name=default_name, layers=(NetworkLayer(problem_from_timeloop(doc["problem"],
                                                                                     default_name).layer),))
    if isinstance(doc, MappingABC) and "layers" not in doc:
        if "layer" in doc and "arch" in doc:  # a reference case: its layer
            name = check_name(doc.get("layer_name", default_name), "layer_name")
            return Network(name=name, layers=(NetworkLayer(layer_from_dict(doc["layer"], name=name)),))
        if any(key in doc for key in LAYER_KEYS):  # a single layer
            name = check_name(doc.get("name", default_name), "layer.name")
            return Network(name=name, layers=(NetworkLayer(layer_from_dict(doc, name=name)),))
    return network_from_dict(doc, default_name=default_name)


def load_network(name_or_path: str | Path) -> Network:
    """A built-in network by name (see :func:`network_names`), a network/layer/case file, or an ONNX model.

    A path ending in ``.onnx`` is read by :func:`formulation.specs.onnx_import.network_from_onnx`.
    """
    if isinstance(name_or_path, (str, Path)) and str(name_or_path).lower().endswith(".onnx"):
        from formulation.specs.onnx_import import network_from_onnx

        return network_from_onnx(name_or_path)
    if _is_path(name_or_path, "network"):
        default_name, doc = _read_file(name_or_path)
        try:
            return _network_from_doc(doc, default_name)
        except SpecError as exc:
            raise SpecError(f"{name_or_path}: {exc}") from None
    default_name, doc = _read_builtin("networks", "network", name_or_path)
    return network_from_dict(doc, default_name=default_name)


def load_arch(name_or_path: str | Path) -> Architecture:
    """A built-in architecture by name (see :func:`arch_names`), or an arch/case file."""
    if _is_path(name_or_path, "arch"):
        default_name, doc = _read_file(name_or_path)
        if isinstance(doc, MappingABC) and ("architecture" in doc or (
                isinstance(doc.get("arch"), MappingABC) and {"storage", "subtree", "local"} & set(doc["arch"]))):
            from formulation.specs.timeloop_import import arch_from_timeloop, parse_ert

            tree = doc.get("architecture", doc.get("arch"))
            ert = parse_ert(doc["ERT"]) if "ERT" in doc else {}
            try:
                return arch_from_timeloop(tree, ert, name=default_name)
            except SpecError as exc:
                raise SpecError(f"{name_or_path}: {exc}") from None
        if isinstance(doc, MappingABC) and "arch" in doc and "levels" not in doc:  # a reference case
            default_name, doc = str(doc.get("arch_name", default_name)), doc["arch"]
        if isinstance(doc, MappingABC) and "name" not in doc:
            doc = {"name": default_name, **doc}
        try:
            return arch_from_dict(doc)
        except SpecError as exc:
            raise SpecError(f"{name_or_path}: {exc}") from None
    _, doc = _read_builtin("archs", "arch", name_or_path)
    return arch_from_dict(doc)



def builtin_mapping_path(name: str):
    """The packaged mapping file ``builtin/mappings/NAME.yaml`` (a Traversable usable as a path)."""
    path = _builtin_dir("mappings") / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"mapping = {name!r}: not a built-in mapping (available: {', '.join(_builtin_names('mappings'))})")
    return path


def load_template(name_or_path: str | Path):
    """An :class:`~formulation.specs.template.ArchTemplate` from a built-in arch name, an arch file, or a template file.

    A template file is ``{arch, mesh_x: [lo, hi], mesh_y: [lo, hi], sizes: {LEVEL: [lo, hi]}}`` whose
    ``arch`` is a built-in name, a file (relative to the template's folder first) or an inline arch;
    anything else is an architecture, widened by :func:`~formulation.specs.template.default_template`.
    """
    from formulation.specs.template import default_template, template_from_dict

    path = Path(name_or_path)
    if _is_path(name_or_path, "template"):
        doc = read_document(path)
        if isinstance(doc, dict) and "levels" not in doc and ({"mesh_x", "mesh_y", "sizes"} & set(doc)):
            if "arch" not in doc:
                raise SpecError(f"template = {str(path)!r}: needs 'arch' (a built-in name, a file or an arch)")
            base = doc["arch"]
            if isinstance(base, dict):
                arch = arch_from_dict(base)
            else:
                near = path.parent / str(base)
                arch = load_arch(near if near.is_file() else str(base))
            return template_from_dict(doc, arch, check_name(doc.get("name", path.stem), "template.name"))
    return default_template(load_arch(name_or_path))
