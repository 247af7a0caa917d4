"""An adversarial corpus of malformed, extreme and edge inputs over every ``codesign`` command.

``python -m benchmarks.adversarial [LABEL]`` runs each entry of :mod:`benchmarks.adversarial.corpus` as a real
subprocess and classifies the outcome (see :mod:`benchmarks.adversarial.run`).
"""
