# The course's commands. Two of them are all a fresh machine needs:
#   make lab    set everything up, then open the course in JupyterLab (students)
#   make test   set everything up, then run the whole test suite (CI runs this)
# Instructors: make release | execute | grade SUBMISSIONS=folder | bench
# A CUDA machine: make setup-gpu, then scripts/gpu_check.sh --require-cuda

VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
# The CPU build of torch lies on this course's machines; elsewhere pip takes it from PyPI.
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)/torch-2.13.0*),--find-links $(WHEELS),)

# Nothing from a model hub; no OpenMP spin-waiting (two threads stall fresh processes);
# Jupyter, IPython and matplotlib keep their state under build/, not in $HOME.
export HF_HUB_OFFLINE := 1
export OMP_WAIT_POLICY := PASSIVE
export TOKENIZERS_PARALLELISM := false
export JUPYTER_CONFIG_DIR := $(CURDIR)/build/jupyter/config
export JUPYTER_DATA_DIR := $(CURDIR)/build/jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/build/jupyter/runtime
export IPYTHONDIR := $(CURDIR)/build/ipython
export MPLCONFIGDIR := $(CURDIR)/build/matplotlib

.PHONY: setup setup-gpu lab test release execute grade figs bench bench-grading browser clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(FIND_LINKS) torch==2.13.0
	$(PY) -m pip install --quiet $(FIND_LINKS) -e '.[dev]'
	touch $@

# The CUDA run's environment (issue 18), in the same $(VENV), on top of `make setup`:
#  1. torch 2.13.0's CUDA build. PyPI's Linux x86_64 torch is one (CUDA bundled as nvidia-*
#     wheels); TORCH_INDEX=<a PyTorch CUDA wheel index> picks another CUDA version. A CPU
#     build already there is replaced, and the target fails unless torch.version.cuda is set.
#  2. the kernels' build tools: mamba-ssm's and causal-conv1d's setup.py import torch, so they
#     are installed without pip's build isolation.
#  3. the `gpu` extra of pyproject.toml: mamba-ssm and causal-conv1d at their pinned versions,
#     then a check that both import. Build requirements and times: bench/README.md.
TORCH_INDEX ?=
GPU_BUILD_TOOLS := setuptools==84.2.1 wheel==0.48.0 packaging==26.4 ninja==1.13.2

setup-gpu: $(VENV)/.installed-gpu

$(VENV)/.installed-gpu: $(VENV)/.installed pyproject.toml
	$(PY) -c 'import sys, torch; sys.exit(torch.version.cuda is None)' || $(PY) -m pip uninstall --quiet --yes torch
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),) torch==2.13.0
	$(PY) -c 'import sys, torch; torch.version.cuda or sys.exit(f"setup-gpu: torch {torch.__version__} is a CPU build; set TORCH_INDEX to a PyTorch CUDA index")'
	$(PY) -m pip install --quiet $(GPU_BUILD_TOOLS)
	$(PY) -m pip install --no-build-isolation -e '.[dev,gpu]'
	$(PY) -c 'import torch, mamba_ssm, causal_conv1d; print("setup-gpu: torch", torch.__version__, "CUDA", torch.version.cuda, "| mamba-ssm", mamba_ssm.__version__, "| causal-conv1d", causal_conv1d.__version__)'
	touch $@

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

# The browser that tests/test_browser.py drives: Debian's Chromium from apt (never a
# browser download by Playwright).
browser:
	bash scripts/install_browser.sh

test: setup browser
	$(PY) -m pytest

release: setup
	$(PY) -m autograder release

execute: setup
	$(PY) -m autograder execute

SUBMISSIONS ?= submitted
WORKERS ?= 2
grade: setup
	$(PY) -m autograder grade $(SUBMISSIONS) --out build/grades.csv --workers $(WORKERS)

clean:
	rm -rf build

# Every figure a notebook shows is made by a script in figs/src/ (deterministic output).
figs: setup
	for f in figs/src/*.py; do $(PY) $$f || exit 1; done

# Benchmarks, one command each, write bench/results/<machine>.json and .md and
# bench/results/selective_scan-<machine>.json and .md; run them on a quiet machine.
bench: setup
	$(PY) bench/run.py
	$(PY) bench/selective_scan.py --prefill --repeat 3

bench-grading: setup
	$(PY) bench/grading.py
