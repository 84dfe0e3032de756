# Set-up shared by the course repository's Makefile and the student edition's (which
# `python -m autograder bundle` writes with a copy of this file): one virtual environment with
# the CPU build of torch and the project's pins, the environment every command runs in, and
# `make lab`. The including Makefile sets EXTRAS (the pip extras to install, e.g. [dev]).

VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
EXTRAS ?=
# The CPU build of torch lies on this course's machines; elsewhere pip takes it from PyPI.
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)/torch-2.13.0*),--find-links $(WHEELS),)

# Nothing from a model hub; no OpenMP spin-waiting (two threads stall fresh processes);
# Jupyter, IPython and matplotlib keep their state under build/, not in $HOME.
# The first three are the kernel environment of the grader: in the course repository,
# tests/test_contract.py keeps them equal to autograder/contract.py's KERNEL_ENV.
export HF_HUB_OFFLINE := 1
export OMP_WAIT_POLICY := PASSIVE
export TOKENIZERS_PARALLELISM := false
export JUPYTER_CONFIG_DIR := $(CURDIR)/build/jupyter/config
export JUPYTER_DATA_DIR := $(CURDIR)/build/jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/build/jupyter/runtime
export IPYTHONDIR := $(CURDIR)/build/ipython
export MPLCONFIGDIR := $(CURDIR)/build/matplotlib

.PHONY: setup lab

setup: $(VENV)/.installed

# torch first and alone: installed as a dependency of something else, pip would pick a CUDA build
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(FIND_LINKS) torch==2.13.0
	$(PY) -m pip install --quiet $(FIND_LINKS) -e '.$(EXTRAS)'
	touch $@

# As root it adds --allow-root; without a display it prints the URL (scripts/lab.sh).
# LAB_ARGS passes more options to jupyter lab, e.g. LAB_ARGS="--port 8899".
LAB_ARGS ?=
lab: setup
	bash scripts/lab.sh $(VENV)/bin/jupyter notebooks $(LAB_ARGS)
