"""The ``codesign`` command line: argument parsing and output only; the work is done by
:mod:`formulation` and :mod:`search`."""
