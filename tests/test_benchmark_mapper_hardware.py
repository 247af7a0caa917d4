"""``python -m benchmarks mapper --hardware``: the mapper on a point of the template around ``--arch``."""

from __future__ import annotations

import pytest

from benchmarks.mapper import hardware_point
from formulation.specs.catalog import load_arch
from formulation.specs.template import Hardware, default_template
from formulation.specs.types import SpecError


def test_a_point_is_the_template_instantiated_there_with_unnamed_sizes_kept():
    arch = load_arch("simple")
    got = hardware_point(arch, "64x48,GlobalBuffer=98304")
    want = default_template(arch).instantiate(Hardware(64, 48, (("GlobalBuffer", 98304), ("RegisterFile", 256))))
    assert got == want
    assert got.mac.instances == 64 * 48
    assert got.levels[1].read_energy_pJ > arch.levels[1].read_energy_pJ  # a larger buffer costs more per access


@pytest.mark.parametrize("text, named", [("64x4a", "'64x4a'"), ("64x48,Foo=3", "Foo"), ("0x48", "'0x48'"),
                                         ("64x48,GlobalBuffer", "'64x48,GlobalBuffer'")])
def test_a_bad_point_names_the_value(text, named):
    with pytest.raises(SpecError, match="--hardware") as err:
        hardware_point(load_arch("simple"), text)
    assert named in str(err.value) and "\n" not in str(err.value)
