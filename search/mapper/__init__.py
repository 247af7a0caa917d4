"""The exact mapper: the proven best mapping of one layer on fixed hardware (see :mod:`search.mapper.mapper`)."""

from search.mapper.leaves import RULES, Rules
from search.mapper.mapper import map_layer
from search.mapper.result import Certificate, MapperResult, MapperStatus

__all__ = ["map_layer", "Rules", "RULES", "Certificate", "MapperResult", "MapperStatus"]
