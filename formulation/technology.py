"""Technology model: how energy per access and area depend on a buffer's size (45 nm, 8/16-bit words).

Used wherever hardware sizes are variables (the NLP and the co-design search): a template's base
architecture gives the energies at its base sizes, and they scale with size by
:func:`energy_size_slope`. Sources:

* Energy: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
  45 nm: a 64-bit read costs 10 pJ from an 8 KB SRAM, 20 pJ from 32 KB and 100 pJ from 1 MB,
  i.e. ``e ~ sqrt(size)`` (the wordline/bitline length argument); DRAM energy per access does not
  depend on a size here.
* Area: the same paper's 45 nm figures, 8-bit multiplier 282 um^2 and 8-bit adder 36 um^2; the
  45 nm 6T SRAM cell of 0.346 um^2 (Mistry et al., IEDM 2007), doubled for periphery (sense
  amplifiers, decoders), and latch-based register files at three times the SRAM cell area.

Every function is smooth in the size; :func:`energy_size_slope` gives
``d ln(energy per access) / d ln(size)`` for the sensitivities.
"""

from __future__ import annotations

SRAM_SIZE_EXPONENT = 0.5              # 8 KB -> 32 KB doubles the energy (Horowitz 2014)
MAC_UM2_8BIT = 282.0 + 36.0           # 8-bit multiplier + adder (Horowitz 2014)
SRAM_CELL_UM2 = 0.346                 # 45 nm 6T cell (Mistry et al. 2007)
SRAM_PERIPHERY_FACTOR = 2.0
REGFILE_CELL_FACTOR = 3.0


def energy_size_slope(technology: str) -> float:
    """``d ln(energy per access) / d ln(size)``: 0.5 for on-chip storage, 0 for DRAM."""
    return 0.0 if technology == "DRAM" else SRAM_SIZE_EXPONENT


def storage_area_mm2(size_words: float, word_bits: int, technology: str) -> float:
    """Area of one instance of a storage level (DRAM is off chip: 0)."""
    if technology == "DRAM":
        return 0.0
    cell = SRAM_CELL_UM2 * SRAM_PERIPHERY_FACTOR
    if technology == "regfile":
        cell *= REGFILE_CELL_FACTOR
    return size_words * word_bits * cell * 1e-6


def mac_area_mm2(word_bits: int) -> float:
    return MAC_UM2_8BIT * (word_bits / 8) ** 2 * 1e-6


def architecture_area_mm2(arch) -> float:
    """Total on-chip area: every instance of every bounded level plus the MAC array."""
    total = arch.mac.instances * mac_area_mm2(arch.mac.word_bits)
    for level in arch.levels:
        if level.size_words is not None:
            total += level.instances * storage_area_mm2(level.size_words, level.word_bits, level.technology.value)
    return total

