# accel-codesign build/installation plumbing.
#
#   make install   system packages (apt, only if missing), .venv, editable
#                  install with the test extra, Pyomo pynumero ASL library
#   make run       codesign run-default
#   make test      pytest on 2 workers (pytest-xdist)
#   make bench     python -m benchmarks
#   make clean     remove .venv and build artifacts
#
# `make install` is idempotent: when everything is in place it only runs a
# couple of quick checks.

SHELL := /bin/bash

VENV  := .venv
PY    := .venv/bin/python
STAMP := $(VENV)/.installed

# Debian packages needed to build cyipopt (Ipopt, BLAS/LAPACK, pkg-config)
# and the pynumero ASL interface (AMPL solver library). cmake and g++ are
# needed by the pynumero build as well.
APT_PACKAGES := coinor-libipopt-dev libblas-dev liblapack-dev libamplsolver-dev pkg-config cmake g++

ASL_INCLUDE_DIR ?= /usr/include/ampl-netlib-solvers
ASL_LIBRARY     ?= /usr/lib/x86_64-linux-gnu/libamplsolver.so

# available() only checks that the file exists, so also load it with ctypes.
PYNUMERO_CHECK := import ctypes; from pyomo.contrib.pynumero.asl import AmplInterface; assert AmplInterface.available(); ctypes.CDLL(AmplInterface.libname)

# Reinstall when pyproject.toml changes, or when a top-level package appears
# (the editable install only maps packages that existed at install time).
PKG_INITS := $(wildcard */__init__.py */*/__init__.py)

.PHONY: install system-deps pynumero kernel-cache run test bench clean

install: system-deps $(STAMP) pynumero kernel-cache

# (a) Debian packages, installed only if one of them is missing.
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:$$missing"; \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	  else echo "error: not root and sudo is not available; install:$$missing" >&2; exit 1; fi; \
	  $$sudo apt-get update && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

# (b) virtualenv, created only if missing.
$(PY):
	python3 -m venv $(VENV)

# (c) editable install with the test and bo extras, only when pyproject.toml (or the
# set of top-level packages) is newer than the stamp.
$(STAMP): pyproject.toml $(PKG_INITS) | system-deps $(PY)
	$(PY) -m pip install -e '.[test,bo]'
	touch $@

# (d) pynumero ASL library (goes to Pyomo's config dir, $$PYOMO_CONFIG_DIR or
# ~/.pyomo/lib, i.e. outside the repo), built offline only if it is absent.
pynumero: $(STAMP)
	@if $(PY) -c "$(PYNUMERO_CHECK)" 2>/dev/null; then \
	  echo "pynumero ASL library: available"; \
	else \
	  echo "Building the pynumero ASL library..."; \
	  $(PY) -m pyomo.contrib.pynumero.build \
	    -DASL_INCLUDE_DIR=$(ASL_INCLUDE_DIR) \
	    -DASL_LIBRARY=$(ASL_LIBRARY) && \
	  $(PY) -c "$(PYNUMERO_CHECK)" && \
	  echo "pynumero ASL library: built and available"; \
	fi

# (e) compile the Numba kernels (the exact model's, the mapper's cheapest chains) once into
# their caches (a few seconds the first time; later a quick cache load), so the first codesign
# command does not compile, and no two processes (test workers, mapper workers) write the same
# cache at once: Numba's cache can break then (numba/numba#4807).
kernel-cache: $(STAMP)
	@$(PY) -c "from formulation.model.compiled import warm_up; print(f'exact-model kernel ready ({warm_up():.1f} s)')"
	@$(PY) -c "from search.mapper.chains import warm_up; print(f'mapper chain kernel ready ({warm_up():.1f} s)')"

run: install
	$(VENV)/bin/codesign run-default

test: install
	$(PY) -m pytest -n 2

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
